package mkv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// This file is the EBML layer of the reader: it reads element headers (ID
// and size vints) in document order from an io.Reader through a bounded
// buffer, keeps the stack of open masters, ends unknown-size masters at the
// first element they cannot contain (the schema in schema.go), checks that
// sized elements fit their parents, and reads or skips leaf payloads. It
// knows nothing of segments, tracks, clusters or blocks: reader.go builds
// the Matroska events on top of it.

// Element is one element header, as Reader.Next returns it.
type Element struct {
	ID        uint32
	Size      int64 // payload size, or UnknownSize for an unknown-size master
	Offset    int64 // absolute byte offset of the ID in the stream
	HeaderLen int   // bytes of ID and size field
}

// DataOffset is the absolute offset of the element's payload.
func (e Element) DataOffset() int64 { return e.Offset + int64(e.HeaderLen) }

const (
	// maxDepth bounds the open masters; Matroska needs 6 for what the
	// reader descends into.
	maxDepth = 16
	// readChunk is the size of the read buffer (and of one read).
	readChunk = 64 << 10
)

// SyntaxError reports bytes that are not valid Matroska (or exceed a limit).
// With ReaderOptions.Resync, NextEvent skips past them instead.
type SyntaxError struct {
	Offset int64  // where the problem was found
	ID     uint32 // the element concerned, 0 if none
	Msg    string // what is wrong, including the offset
	Err    error  // ErrInvalidVint, ErrTooLarge, ErrLacing or nil
}

func (e *SyntaxError) Error() string { return "mkv: " + e.Msg }

// Unwrap returns the sentinel behind the error, if any.
func (e *SyntaxError) Unwrap() error { return e.Err }

func syntaxErr(off int64, id uint32, sentinel error, format string, args ...any) error {
	return &SyntaxError{Offset: off, ID: id, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// truncated turns an end of input inside an element into an error naming it.
func truncated(err error, what string, off int64) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("mkv: %s at offset %d: %w", what, off, err)
}

type open struct {
	id  uint32
	end int64 // absolute end offset, or -1 for an unknown size
}

// headCapture records the bytes consumed while it is on, for the event
// layer's SegmentHeader.Raw. It lives in the element layer because every
// consumed byte passes through consume; it is bounded by limit
// (ReaderOptions.MaxHeaderSize).
type headCapture struct {
	on    bool
	start int64 // stream offset of the segment head
	buf   []byte
	limit int64
}

// tooLarge reports a capture that has grown past its limit. It is checked
// for every chunk skipped: the test inlines, the error does not.
func (c *headCapture) tooLarge() error {
	if c.on && int64(len(c.buf)) > c.limit {
		return c.overflow()
	}
	return nil
}

func (c *headCapture) overflow() error {
	return syntaxErr(c.start, 0, ErrTooLarge, "segment head at offset %d exceeds %d bytes before its first Cluster", c.start, c.limit)
}

// elementReader is the EBML layer of a Reader. It never holds more than one
// element (bounded by maxElement) plus one read chunk, and the capture.
type elementReader struct {
	src        io.Reader
	maxElement int64 // ReaderOptions.MaxElementSize

	buf    []byte // unread bytes are buf[pos:]
	pos    int
	off    int64 // stream offset of buf[pos]
	srcErr error
	empty  int // consecutive empty reads

	stack   []open
	pending int64   // unread payload of the last leaf Next returned
	leaf    Element // that leaf
	hdrRaw  [12]byte
	hdrLen  int // bytes of the last element header, as read

	capture headCapture
}

func newElementReader(src io.Reader, maxElement, maxCapture int64) elementReader {
	return elementReader{src: src, maxElement: maxElement, buf: make([]byte, 0, readChunk), capture: headCapture{limit: maxCapture}}
}

// Offset is the stream offset of the next unread byte.
func (r *elementReader) Offset() int64 { return r.off }

// Depth is the number of open masters.
func (r *elementReader) Depth() int { return len(r.stack) }

// fill makes n unread bytes available. It returns io.EOF when the input ends
// cleanly before the first of them, io.ErrUnexpectedEOF when it ends inside,
// or the source's error.
func (r *elementReader) fill(n int) error {
	for len(r.buf)-r.pos < n {
		if r.srcErr != nil {
			if r.srcErr == io.EOF {
				if len(r.buf) == r.pos {
					return io.EOF
				}
				return io.ErrUnexpectedEOF
			}
			return r.srcErr
		}
		avail := len(r.buf) - r.pos
		if r.pos > 0 && (cap(r.buf)-len(r.buf) < n-avail || r.pos >= cap(r.buf)/2) {
			r.buf = append(r.buf[:0], r.buf[r.pos:]...)
			r.pos = 0
		}
		if need := r.pos + n; cap(r.buf) < need {
			c := 2 * cap(r.buf)
			if c < need {
				c = need
			}
			if c > need+readChunk {
				c = need + readChunk // big elements: no doubling beyond them
			}
			nb := make([]byte, len(r.buf), c)
			copy(nb, r.buf)
			r.buf = nb
		}
		m, err := r.src.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+m]
		switch {
		case err != nil:
			r.srcErr = err
		case m > 0:
			r.empty = 0
		default:
			if r.empty++; r.empty >= 100 {
				r.srcErr = io.ErrNoProgress
			}
		}
	}
	return nil
}

// consume advances n filled bytes and returns them (valid until the next
// fill).
func (r *elementReader) consume(n int) []byte {
	b := r.buf[r.pos : r.pos+n]
	if r.capture.on {
		r.capture.buf = append(r.capture.buf, b...)
	}
	r.pos += n
	r.off += int64(n)
	return b
}

// discard skips n bytes without holding them.
func (r *elementReader) discard(n int64) error {
	for n > 0 {
		chunk := int(min(n, readChunk))
		if err := r.fill(chunk); err != nil {
			return err
		}
		r.consume(chunk)
		n -= int64(chunk)
		if err := r.capture.tooLarge(); err != nil {
			return err
		}
	}
	return nil
}

// Next returns the next element header in document order. Masters are
// descended into (their children follow); a leaf's payload is skipped by the
// next call unless ReadData reads it first. It returns io.EOF at the end of
// the input, io.ErrUnexpectedEOF (wrapped) if the input ends inside an
// element, and a *SyntaxError for invalid bytes.
func (r *elementReader) Next() (Element, error) {
	if r.pending > 0 {
		if err := r.discard(r.pending); err != nil {
			var se *SyntaxError
			if errors.As(err, &se) {
				return Element{}, err
			}
			return Element{}, truncated(err, ElementName(r.leaf.ID)+" payload", r.leaf.Offset)
		}
	}
	r.pending = 0
	for len(r.stack) > 0 {
		if top := r.stack[len(r.stack)-1]; top.end >= 0 && r.off >= top.end {
			r.stack = r.stack[:len(r.stack)-1]
			continue
		}
		break
	}
	e, err := r.readHeader()
	if err != nil {
		return e, err
	}
	return e, r.enter(e)
}

// readHeader reads one element ID and size.
func (r *elementReader) readHeader() (Element, error) {
	e := Element{Offset: r.off}
	if err := r.fill(1); err != nil {
		if err == io.EOF {
			return e, io.EOF
		}
		return e, truncated(err, "element header", e.Offset)
	}
	n := VintLen(r.buf[r.pos])
	if n == 0 || n > 4 || (n == 1 && r.buf[r.pos] == 0xFF) {
		return e, syntaxErr(e.Offset, 0, ErrInvalidVint, "invalid element ID byte 0x%02X at offset %d", r.buf[r.pos], e.Offset)
	}
	if err := r.fill(n + 1); err != nil {
		return e, truncated(err, "element header", e.Offset)
	}
	id, _, _ := ReadID(r.buf[r.pos : r.pos+n])
	sn := VintLen(r.buf[r.pos+n])
	if sn == 0 {
		return e, syntaxErr(e.Offset, id, ErrInvalidVint, "invalid element size at offset %d (%s)", e.Offset+int64(n), ElementName(id))
	}
	if err := r.fill(n + sn); err != nil {
		return e, truncated(err, ElementName(id)+" header", e.Offset)
	}
	size, _, err := ReadSize(r.buf[r.pos+n : r.pos+n+sn])
	if err != nil {
		return e, syntaxErr(e.Offset, id, err, "invalid element size at offset %d (%s)", e.Offset+int64(n), ElementName(id))
	}
	r.hdrLen = copy(r.hdrRaw[:], r.consume(n+sn))
	e.ID, e.Size, e.HeaderLen = id, size, n+sn
	return e, nil
}

// lastHeader is the ID and size of the last element header read, as they
// were in the stream.
func (r *elementReader) lastHeader() []byte { return r.hdrRaw[:r.hdrLen] }

// canContain reports whether an open master may contain an element with id.
func (r *elementReader) canContain(i int, id uint32) bool {
	parent := r.stack[i].id
	if l := children[parent]; l != nil {
		return l[id]
	}
	if topLevel[id] {
		return false
	}
	if id == IDSimpleTag && parent == IDSimpleTag {
		return true // SimpleTags nest
	}
	for _, o := range r.stack[:i+1] {
		if o.id == id {
			return false // a sibling or an ancestor's sibling, not a child
		}
	}
	return true
}

// enter places e in the element tree: it closes the unknown-size masters e
// cannot belong to, checks it fits its parent, and opens it if it is a
// master.
func (r *elementReader) enter(e Element) error {
	for len(r.stack) > 0 {
		i := len(r.stack) - 1
		if r.stack[i].end < 0 && !r.canContain(i, e.ID) {
			r.stack = r.stack[:i]
			continue
		}
		if end := r.stack[i].end; end >= 0 && (e.Size < 0 && !isMaster(e.ID) || e.Size >= 0 && e.DataOffset()+e.Size > end) {
			return syntaxErr(e.Offset, e.ID, nil, "%s at offset %d (%d bytes) overruns its parent %s ending at %d",
				ElementName(e.ID), e.Offset, e.Size, ElementName(r.stack[i].id), end)
		}
		break
	}
	if isMaster(e.ID) {
		if len(r.stack) >= maxDepth {
			return syntaxErr(e.Offset, e.ID, nil, "%s at offset %d nests deeper than %d levels", ElementName(e.ID), e.Offset, maxDepth)
		}
		end := int64(-1)
		if e.Size >= 0 {
			end = e.DataOffset() + e.Size
		}
		r.stack = append(r.stack, open{e.ID, end})
		return nil
	}
	if e.Size < 0 {
		return syntaxErr(e.Offset, e.ID, nil, "%s at offset %d has an unknown size but is not a master", ElementName(e.ID), e.Offset)
	}
	r.pending, r.leaf = e.Size, e
	return nil
}

// enclosing is the ID of the master open n levels out from the innermost
// one (0: the innermost), or 0.
func (r *elementReader) enclosing(n int) uint32 {
	if i := len(r.stack) - 1 - n; i >= 0 && n >= 0 {
		return r.stack[i].id
	}
	return 0
}

// ReadData returns the payload of the leaf element Next just returned. The
// slice is valid until the next call on the Reader. A payload larger than
// MaxElementSize is an error naming the element, and is not read.
func (r *elementReader) ReadData() ([]byte, error) {
	n := r.pending
	if n > r.maxElement {
		return nil, syntaxErr(r.leaf.Offset, r.leaf.ID, ErrTooLarge, "%s at offset %d is %d bytes, over the %d-byte limit",
			ElementName(r.leaf.ID), r.leaf.Offset, n, r.maxElement)
	}
	if err := r.fill(int(n)); err != nil {
		return nil, truncated(err, ElementName(r.leaf.ID), r.leaf.Offset)
	}
	r.pending = 0
	return r.consume(int(n)), nil
}

// readWhole reads the payload of master e, already opened by Next, as one
// slice (for Tags and BlockGroup) and closes it.
func (r *elementReader) readWhole(e Element) ([]byte, error) {
	if e.Size < 0 {
		return nil, syntaxErr(e.Offset, e.ID, nil, "%s at offset %d has an unknown size", ElementName(e.ID), e.Offset)
	}
	if e.Size > r.maxElement {
		return nil, syntaxErr(e.Offset, e.ID, ErrTooLarge, "%s at offset %d is %d bytes, over the %d-byte limit",
			ElementName(e.ID), e.Offset, e.Size, r.maxElement)
	}
	if n := len(r.stack); n > 0 && r.stack[n-1].id == e.ID {
		r.stack = r.stack[:n-1]
	}
	if err := r.fill(int(e.Size)); err != nil {
		return nil, truncated(err, ElementName(e.ID), e.Offset)
	}
	return r.consume(int(e.Size)), nil
}

// skipByte steps over one byte. At the end of the input it returns io.EOF
// or the source's error.
func (r *elementReader) skipByte() error {
	if err := r.fill(1); err != nil {
		return r.skipRest(err)
	}
	r.consume(1)
	return nil
}

// scanTo skips bytes up to the next occurrence of one of the 4-byte IDs
// ids, which it leaves unread and returns. Where the input ends first, it
// consumes what is left and returns io.EOF (or the source's error).
func (r *elementReader) scanTo(ids ...uint32) (uint32, error) {
	for {
		if err := r.fill(4); err != nil {
			return 0, r.skipRest(err)
		}
		id := binary.BigEndian.Uint32(r.buf[r.pos:])
		for _, want := range ids {
			if id == want {
				return id, nil
			}
		}
		r.consume(1)
	}
}

// skipRest ends a scan that reached the end of the input: the few bytes
// that could not make an ID are consumed, and the end is a clean io.EOF.
func (r *elementReader) skipRest(err error) error {
	if err == io.ErrUnexpectedEOF {
		r.consume(len(r.buf) - r.pos)
		err = io.EOF
	}
	return err
}

// closeAll forgets every open master (the input starts over).
func (r *elementReader) closeAll() { r.stack = r.stack[:0] }

// closeInside closes the masters open inside the outermost open id, which
// stays open; with no id open, it closes all.
func (r *elementReader) closeInside(id uint32) {
	keep := 0
	for i, o := range r.stack {
		if o.id == id {
			keep = i + 1
			break
		}
	}
	r.stack = r.stack[:keep]
}
