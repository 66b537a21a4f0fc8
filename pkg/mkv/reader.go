package mkv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// This file is the streaming reader: Next/ReadData walk element headers in
// document order (the low level), NextEvent turns them into segment starts,
// tags, cluster starts and blocks (the high level). It reads incrementally
// from an io.Reader with a bounded buffer, understands unknown-size masters
// the way Matroska demuxers do, and reads concatenated segments (the GetMedia
// layout) as one stream.

// Element is one element header, as Reader.Next returns it.
type Element struct {
	ID        uint32
	Size      int64 // payload size, or UnknownSize for an unknown-size master
	Offset    int64 // absolute byte offset of the ID in the stream
	HeaderLen int   // bytes of ID and size field
}

// DataOffset is the absolute offset of the element's payload.
func (e Element) DataOffset() int64 { return e.Offset + int64(e.HeaderLen) }

// Limits of a Reader.
const (
	// DefaultMaxElementSize bounds the payload of one leaf element that is
	// read into memory (a frame, a Tags or BlockGroup element): 64 MiB.
	DefaultMaxElementSize = 64 << 20
	// DefaultMaxHeaderSize bounds the segment head kept as
	// SegmentHeader.Raw (EBML header up to the first Cluster) and, apart,
	// the Tags read inside that head: 8 MiB each, far above the few hundred
	// bytes producers write, below anything that would hurt.
	DefaultMaxHeaderSize = 8 << 20
	// maxDepth bounds the open masters; Matroska needs 6 for what the
	// reader descends into.
	maxDepth = 16
	// readChunk is the size of the read buffer (and of one read).
	readChunk = 64 << 10
)

// ReaderOptions configure a Reader. The zero value is the default.
type ReaderOptions struct {
	// MaxElementSize bounds one element read into memory; default
	// DefaultMaxElementSize. Larger elements fail with an error naming the
	// element (wrapping ErrTooLarge) instead of allocating.
	MaxElementSize int64
	// MaxHeaderSize bounds SegmentHeader.Raw, and the Tags inside one
	// segment head; default DefaultMaxHeaderSize.
	MaxHeaderSize int64
	// Resync makes NextEvent skip damaged bytes to the next Cluster, Tags or
	// EBML header ID instead of failing on a *SyntaxError, as Matroska
	// demuxers do. Read errors and truncation still fail.
	Resync bool
	// Skipped, if set, is called for each range Resync skipped.
	Skipped func(offset, length int64, cause error)
}

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

// ErrLacing is returned (inside a *SyntaxError) for laced blocks, which
// Kinesis Video Streams never produces.
var ErrLacing = errors.New("mkv: laced blocks are not supported")

// elementNames names the elements error messages mention.
var elementNames = map[uint32]string{
	IDEBML: "EBML", IDSegment: "Segment", IDSeekHead: "SeekHead", IDInfo: "Info", IDTracks: "Tracks",
	IDTrackEntry: "TrackEntry", IDVideo: "Video", IDAudio: "Audio", IDCluster: "Cluster", IDTimecode: "Timecode",
	IDSimpleBlock: "SimpleBlock", IDBlockGroup: "BlockGroup", IDBlock: "Block", IDCues: "Cues", IDTags: "Tags",
	IDTag: "Tag", IDSimpleTag: "SimpleTag", IDTargets: "Targets", IDTagName: "TagName", IDTagString: "TagString",
	IDCodecPrivate: "CodecPrivate", IDCodecID: "CodecID", IDVoid: "Void", IDTimecodeScale: "TimecodeScale",
	IDSegmentUID: "SegmentUID", IDTrackNumber: "TrackNumber", IDSamplingFreq: "SamplingFrequency",
}

// ElementName returns the element's Matroska name, or its ID in hex.
func ElementName(id uint32) string {
	if n, ok := elementNames[id]; ok {
		return fmt.Sprintf("%s (0x%X)", n, id)
	}
	return fmt.Sprintf("element 0x%X", id)
}

// children lists, for the masters the reader descends into, the IDs they may
// contain. An unknown-size master ends at the first element that is not in
// its list. A nil list means "any ID that is not a top-level (level 0/1) ID
// and not already open", which is right for the masters producers never
// write with an unknown size.
var children = map[uint32]map[uint32]bool{
	IDEBML: {IDEBMLVersion: true, IDEBMLReadVersion: true, IDEBMLMaxIDLength: true, IDEBMLMaxSizeLength: true,
		IDDocType: true, IDDocTypeVersion: true, IDDocTypeReadVersion: true, 0x4281: true, IDVoid: true, IDCRC32: true},
	IDSegment: {IDSeekHead: true, IDInfo: true, IDTracks: true, IDCluster: true, IDCues: true, IDTags: true,
		0x1043A770 /* Chapters */ : true, 0x1941A469 /* Attachments */ : true, IDVoid: true, IDCRC32: true},
	IDCluster: {IDTimecode: true, IDPosition: true, IDPrevSize: true, IDSimpleBlock: true, IDBlockGroup: true,
		0x5854 /* SilentTracks */ : true, 0xAF /* EncryptedBlock */ : true, IDVoid: true, IDCRC32: true},
	IDTags:       {IDTag: true, IDVoid: true, IDCRC32: true},
	IDTag:        {IDTargets: true, IDSimpleTag: true, IDVoid: true, IDCRC32: true},
	IDInfo:       nil,
	IDTracks:     {IDTrackEntry: true, IDVoid: true, IDCRC32: true},
	IDTrackEntry: nil, IDVideo: nil, IDAudio: nil, IDSimpleTag: nil, IDTargets: nil,
	IDBlockGroup: nil, IDSeekHead: nil, IDCues: nil,
}

// topLevel are the IDs of level 0 and 1: they never sit deeper.
var topLevel = map[uint32]bool{IDEBML: true, IDSegment: true, IDSeekHead: true, IDInfo: true, IDTracks: true,
	IDCluster: true, IDCues: true, IDTags: true, 0x1043A770: true, 0x1941A469: true}

func isMaster(id uint32) bool { _, ok := children[id]; return ok }

type open struct {
	id  uint32
	end int64 // absolute end offset, or -1 for an unknown size
}

// Reader reads Matroska incrementally from an io.Reader. It never holds more
// than one element (bounded by MaxElementSize) plus one read chunk, and the
// segment head (bounded by MaxHeaderSize).
//
// Use either the low level (Next, ReadData) or the high level (NextEvent)
// on one Reader, not both.
type Reader struct {
	src  io.Reader
	opts ReaderOptions

	buf    []byte // unread bytes are buf[pos:]
	pos    int
	off    int64 // stream offset of buf[pos]
	srcErr error
	empty  int   // consecutive empty reads
	err    error // sticky error of NextEvent

	stack   []open
	pending int64   // unread payload of the last leaf Next returned
	leaf    Element // that leaf
	hdrRaw  [12]byte
	hdrLen  int // bytes of the last element header, as read

	// segment-head capture
	capOn    bool
	capStart int64
	capture  []byte
	capGap   int64 // bytes of the head left out of capture (its Tags)

	// high level
	held       *Element // an element read but not yet handled
	hdr        *SegmentHeader
	ebmlOpen   bool // an EBML header was read, its Segment not yet
	pendHdr    bool // inside a segment head, SegmentStart not yet returned
	haveTC     bool // the open Cluster's Timecode was read
	clusterOff int64
	tagsRaw    []byte
	queue      []Event // Tags read inside a segment head, returned after it
	queueBytes int64
	skipped    int64
	lastResync int64
}

// NewReader reads from r with default options.
func NewReader(r io.Reader) *Reader { return NewReaderOptions(r, ReaderOptions{}) }

// NewReaderOptions reads from r with options o.
func NewReaderOptions(r io.Reader, o ReaderOptions) *Reader {
	if o.MaxElementSize <= 0 {
		o.MaxElementSize = DefaultMaxElementSize
	}
	if o.MaxHeaderSize <= 0 {
		o.MaxHeaderSize = DefaultMaxHeaderSize
	}
	return &Reader{src: r, opts: o, buf: make([]byte, 0, readChunk), lastResync: -1}
}

// Offset is the stream offset of the next unread byte.
func (r *Reader) Offset() int64 { return r.off }

// Depth is the number of open masters.
func (r *Reader) Depth() int { return len(r.stack) }

// SkippedBytes is the number of bytes Resync has skipped so far.
func (r *Reader) SkippedBytes() int64 { return r.skipped }

// fill makes n unread bytes available. It returns io.EOF when the input ends
// cleanly before the first of them, io.ErrUnexpectedEOF when it ends inside,
// or the source's error.
func (r *Reader) fill(n int) error {
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
func (r *Reader) consume(n int) []byte {
	b := r.buf[r.pos : r.pos+n]
	if r.capOn {
		r.capture = append(r.capture, b...)
	}
	r.pos += n
	r.off += int64(n)
	return b
}

// discard skips n bytes without holding them.
func (r *Reader) discard(n int64) error {
	for n > 0 {
		chunk := int(min(n, readChunk))
		if err := r.fill(chunk); err != nil {
			return err
		}
		r.consume(chunk)
		n -= int64(chunk)
		if r.capOn && int64(len(r.capture)) > r.opts.MaxHeaderSize {
			return syntaxErr(r.capStart, 0, ErrTooLarge, "segment head at offset %d exceeds %d bytes before its first Cluster", r.capStart, r.opts.MaxHeaderSize)
		}
	}
	return nil
}

// truncated turns an end of input inside an element into an error naming it.
func truncated(err error, what string, off int64) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("mkv: %s at offset %d: %w", what, off, err)
}

// Next returns the next element header in document order. Masters are
// descended into (their children follow); a leaf's payload is skipped by the
// next call unless ReadData reads it first. It returns io.EOF at the end of
// the input, io.ErrUnexpectedEOF (wrapped) if the input ends inside an
// element, and a *SyntaxError for invalid bytes.
func (r *Reader) Next() (Element, error) {
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
func (r *Reader) readHeader() (Element, error) {
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

// canContain reports whether an open master may contain an element with id.
func (r *Reader) canContain(i int, id uint32) bool {
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
func (r *Reader) enter(e Element) error {
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

// ReadData returns the payload of the leaf element Next just returned. The
// slice is valid until the next call on the Reader. A payload larger than
// MaxElementSize is an error naming the element, and is not read.
func (r *Reader) ReadData() ([]byte, error) {
	n := r.pending
	if n > r.opts.MaxElementSize {
		return nil, syntaxErr(r.leaf.Offset, r.leaf.ID, ErrTooLarge, "%s at offset %d is %d bytes, over the %d-byte limit",
			ElementName(r.leaf.ID), r.leaf.Offset, n, r.opts.MaxElementSize)
	}
	if err := r.fill(int(n)); err != nil {
		return nil, truncated(err, ElementName(r.leaf.ID), r.leaf.Offset)
	}
	r.pending = 0
	return r.consume(int(n)), nil
}

// readWhole reads the payload of master e, already opened by Next, as one
// slice (for Tags and BlockGroup) and closes it.
func (r *Reader) readWhole(e Element) ([]byte, error) {
	if e.Size < 0 {
		return nil, syntaxErr(e.Offset, e.ID, nil, "%s at offset %d has an unknown size", ElementName(e.ID), e.Offset)
	}
	if e.Size > r.opts.MaxElementSize {
		return nil, syntaxErr(e.Offset, e.ID, ErrTooLarge, "%s at offset %d is %d bytes, over the %d-byte limit",
			ElementName(e.ID), e.Offset, e.Size, r.opts.MaxElementSize)
	}
	if n := len(r.stack); n > 0 && r.stack[n-1].id == e.ID {
		r.stack = r.stack[:n-1]
	}
	if err := r.fill(int(e.Size)); err != nil {
		return nil, truncated(err, ElementName(e.ID), e.Offset)
	}
	return r.consume(int(e.Size)), nil
}

// ---- high level ----

// EventKind tells what an Event carries.
type EventKind int

// Event kinds.
const (
	EventSegmentStart EventKind = iota // a new segment head; Header is set
	EventTags                          // a Tags element; Tags and TagsRaw are set
	EventClusterStart                  // a Cluster; Timecode is set, Offset is the Cluster's
	EventBlock                         // a SimpleBlock, or the Block of a BlockGroup
)

func (k EventKind) String() string {
	switch k {
	case EventSegmentStart:
		return "SegmentStart"
	case EventTags:
		return "Tags"
	case EventClusterStart:
		return "ClusterStart"
	case EventBlock:
		return "Block"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// SegmentHeader is what a segment declares before its first Cluster: its
// Info and Tracks, in whatever order they come. Tracks uses the writer's
// Track type, so a header that was read can be written again; it may be
// empty (a segment that declares no track), which callers must refuse.
type SegmentHeader struct {
	TimecodeScale uint64 // nanoseconds per timecode unit (default 1,000,000)
	SegmentUID    []byte
	Title         string
	MuxingApp     string
	WritingApp    string
	Tracks        []Track
	// Raw is the bytes from the start of the EBML header (or of the Segment,
	// if it had none) up to, excluding, the first Cluster, as received,
	// except the Tags elements found in between: those are left out of Raw
	// and returned as EventTags right after the EventSegmentStart. It is
	// the caller's to keep.
	Raw []byte
}

// Block is one frame.
type Block struct {
	Track       uint64
	RelTimecode int16 // relative to the Cluster's Timecode
	Flags       byte  // as in the (Simple)Block header
	Keyframe    bool  // SimpleBlock key flag, or a BlockGroup without ReferenceBlock
	Data        []byte
}

// Event is one step of NextEvent. Slices in it (Block.Data, TagsRaw) are
// valid until the next call on the Reader; Header is the caller's to keep.
type Event struct {
	Kind     EventKind
	Offset   int64 // of the EBML header, Tags, Cluster or (Simple)Block/BlockGroup
	Header   *SegmentHeader
	Tags     []SimpleTag
	TagsRaw  []byte // the whole Tags element as received
	Timecode uint64 // the Cluster's Timecode
	Block    Block
}

// NextEvent returns the next segment start, tags, cluster start or block,
// and io.EOF at the end of the input. The top-level elements of a segment
// may come in any order: the segment head (Info, Tracks, SeekHead, Cues,
// Chapters, Attachments, Void) ends at the first Cluster, the next EBML
// header or Segment, or the end of the input; Tags found inside it are
// returned right after its EventSegmentStart, in their order. Info or
// Tracks after the first Cluster of a segment are skipped. Errors are *SyntaxError for invalid
// bytes (skipped instead with Resync), or wrap io.ErrUnexpectedEOF or the
// source's error; after an error every call returns it again.
func (r *Reader) NextEvent() (Event, error) {
	if len(r.queue) > 0 {
		ev := r.queue[0]
		r.queue = r.queue[1:]
		if len(r.queue) == 0 {
			r.queue, r.queueBytes = r.queue[:0], 0
		}
		return ev, nil
	}
	if r.err != nil {
		return Event{}, r.err
	}
	for {
		ev, ok, err := r.step()
		if err == nil {
			if ok {
				return ev, nil
			}
			continue
		}
		if err == io.EOF {
			if r.pendHdr {
				return r.segmentStart(r.off), nil
			}
			r.err = io.EOF
			return Event{}, io.EOF
		}
		var se *SyntaxError
		if r.opts.Resync && errors.As(err, &se) {
			if rerr := r.resync(err); rerr != nil {
				r.err = rerr
				return Event{}, rerr
			}
			continue
		}
		r.err = err
		return Event{}, err
	}
}

// segmentStart completes the pending segment head, whose bytes end at end.
func (r *Reader) segmentStart(end int64) Event {
	h := r.hdr
	n := end - r.capStart - r.capGap
	if n > int64(len(r.capture)) || n < 0 {
		n = int64(len(r.capture))
	}
	h.Raw = append([]byte(nil), r.capture[:n]...)
	r.capOn, r.capture, r.pendHdr = false, r.capture[:0], false
	if cap(r.capture) > readChunk {
		r.capture = nil
	}
	return Event{Kind: EventSegmentStart, Offset: r.capStart, Header: h}
}

// startCapture begins a segment head with the element header just read.
func (r *Reader) startCapture(e Element) {
	r.hdr = &SegmentHeader{TimecodeScale: DefaultTimecodeScale}
	r.capOn, r.capStart, r.capGap = true, e.Offset, 0
	r.capture = append(r.capture[:0], r.hdrRaw[:r.hdrLen]...)
}

// resync scans forward from the damage to the next Cluster, Tags or EBML
// header ID, and continues there.
func (r *Reader) resync(cause error) error {
	if r.off == r.lastResync {
		// The same place failed again: step over it.
		if err := r.fill(1); err != nil {
			return r.resyncEnd(r.off, cause, err)
		}
		r.consume(1)
	}
	start := r.off
	r.pending, r.held = 0, nil
	r.queue, r.queueBytes = nil, 0
	r.capOn, r.pendHdr, r.hdr, r.ebmlOpen, r.haveTC = false, false, nil, false, false
	for {
		if err := r.fill(4); err != nil {
			return r.resyncEnd(start, cause, err)
		}
		switch binary.BigEndian.Uint32(r.buf[r.pos:]) {
		case IDCluster, IDTags, IDEBML:
			r.report(start, cause)
			r.lastResync = r.off
			// Keep the Segment open for a Cluster or Tags; an EBML header
			// starts over.
			keep := 0
			if binary.BigEndian.Uint32(r.buf[r.pos:]) != IDEBML {
				for i, o := range r.stack {
					if o.id == IDSegment {
						keep = i + 1
						break
					}
				}
			}
			r.stack = r.stack[:keep]
			return nil
		}
		r.consume(1)
	}
}

// resyncEnd finishes a resync that reached the end of the input.
func (r *Reader) resyncEnd(start int64, cause, err error) error {
	if err == io.ErrUnexpectedEOF {
		r.consume(len(r.buf) - r.pos)
		err = io.EOF
	}
	r.report(start, cause)
	return err
}

func (r *Reader) report(start int64, cause error) {
	if n := r.off - start; n > 0 {
		r.skipped += n
		if r.opts.Skipped != nil {
			r.opts.Skipped(start, n, cause)
		}
	}
}

// parent is the ID of the innermost open master, or 0.
func (r *Reader) parent() uint32 {
	if len(r.stack) == 0 {
		return 0
	}
	return r.stack[len(r.stack)-1].id
}

// step handles one element; ok reports an event.
func (r *Reader) step() (Event, bool, error) {
	var e Element
	if r.held != nil {
		e, r.held = *r.held, nil
	} else {
		var err error
		if e, err = r.Next(); err != nil {
			return Event{}, false, err
		}
		if r.pendHdr {
			switch e.ID {
			case IDCluster, IDEBML, IDSegment:
				// The segment head is complete: report it, then handle e.
				r.held = &e
				return r.segmentStart(e.Offset), true, nil
			case IDTags:
				// Tags inside the head (the service may send them before
				// Info and Tracks): kept out of Raw, returned after the
				// head.
				return Event{}, false, r.queueTags(e)
			}
			if r.capOn && int64(len(r.capture)) > r.opts.MaxHeaderSize {
				return Event{}, false, syntaxErr(r.capStart, 0, ErrTooLarge, "segment head at offset %d exceeds %d bytes before its first Cluster", r.capStart, r.opts.MaxHeaderSize)
			}
		}
	}
	switch e.ID {
	case IDEBML:
		r.startCapture(e)
		r.ebmlOpen = true
		return Event{}, false, nil
	case IDSegment:
		if !r.ebmlOpen {
			r.startCapture(e)
		}
		r.ebmlOpen, r.pendHdr, r.haveTC = false, true, false
		return Event{}, false, nil
	case IDTags:
		return r.readTags(e)
	case IDCluster:
		r.haveTC, r.clusterOff = false, e.Offset
		return Event{}, false, nil
	case IDBlockGroup:
		return r.readBlockGroup(e)
	}
	if isMaster(e.ID) {
		if e.ID == IDTrackEntry && r.pendHdr {
			r.hdr.Tracks = append(r.hdr.Tracks, Track{})
		}
		return Event{}, false, nil
	}
	switch parent := r.parent(); {
	case parent == IDCluster && e.ID == IDTimecode:
		v, err := r.uint(e)
		if err != nil {
			return Event{}, false, err
		}
		if r.haveTC {
			return Event{}, false, syntaxErr(e.Offset, e.ID, nil, "second Timecode in the Cluster at offset %d", r.clusterOff)
		}
		r.haveTC = true
		return Event{Kind: EventClusterStart, Offset: r.clusterOff, Timecode: v}, true, nil
	case parent == IDCluster && e.ID == IDSimpleBlock:
		if !r.haveTC {
			return Event{}, false, syntaxErr(e.Offset, e.ID, nil, "SimpleBlock at offset %d before its Cluster's Timecode", e.Offset)
		}
		d, err := r.ReadData()
		if err != nil {
			return Event{}, false, err
		}
		b, err := parseBlock(d, e.Offset)
		if err != nil {
			return Event{}, false, err
		}
		b.Keyframe = b.Flags&FlagKeyframe != 0
		return Event{Kind: EventBlock, Offset: e.Offset, Block: b}, true, nil
	case r.pendHdr:
		return Event{}, false, r.headerField(e, parent)
	}
	return Event{}, false, nil
}

func (r *Reader) uint(e Element) (uint64, error) {
	d, err := r.ReadData()
	if err != nil {
		return 0, err
	}
	if len(d) > 8 {
		return 0, syntaxErr(e.Offset, e.ID, nil, "%s at offset %d is an integer of %d bytes", ElementName(e.ID), e.Offset, len(d))
	}
	v, _ := ParseUint(d)
	return v, nil
}

func (r *Reader) str(e Element) (string, error) {
	d, err := r.ReadData()
	return string(d), err
}

// headerField stores an Info or TrackEntry field of the pending header.
func (r *Reader) headerField(e Element, parent uint32) error {
	h := r.hdr
	var err error
	switch parent {
	case IDInfo:
		switch e.ID {
		case IDTimecodeScale:
			if h.TimecodeScale, err = r.uint(e); err == nil && h.TimecodeScale == 0 {
				err = syntaxErr(e.Offset, e.ID, nil, "TimecodeScale 0 at offset %d", e.Offset)
			}
		case IDSegmentUID:
			var d []byte
			d, err = r.ReadData()
			h.SegmentUID = append([]byte(nil), d...)
		case IDTitle:
			h.Title, err = r.str(e)
		case IDMuxingApp:
			h.MuxingApp, err = r.str(e)
		case IDWritingApp:
			h.WritingApp, err = r.str(e)
		}
		return err
	case IDTrackEntry, IDVideo, IDAudio:
	default:
		return nil
	}
	if len(h.Tracks) == 0 {
		return nil
	}
	t := &h.Tracks[len(h.Tracks)-1]
	var v uint64
	switch e.ID {
	case IDTrackNumber:
		t.Number, err = r.uint(e)
	case IDTrackUID:
		t.UID, err = r.uint(e)
	case IDTrackType:
		v, err = r.uint(e)
		t.Type = int(v)
	case IDName:
		t.Name, err = r.str(e)
	case IDCodecID:
		t.CodecID, err = r.str(e)
	case IDCodecPrivate:
		var d []byte
		d, err = r.ReadData()
		t.CodecPrivate = append([]byte(nil), d...)
	case IDDefaultDuration:
		t.DefaultDuration, err = r.uint(e)
	case IDFlagDefault:
		v, err = r.uint(e)
		t.NotDefault = v == 0
	case IDPixelWidth:
		v, err = r.uint(e)
		t.PixelWidth = int(min(v, math.MaxInt32))
	case IDPixelHeight:
		v, err = r.uint(e)
		t.PixelHeight = int(min(v, math.MaxInt32))
	case IDChannels:
		v, err = r.uint(e)
		t.Channels = int(min(v, math.MaxInt32))
	case IDBitDepth:
		v, err = r.uint(e)
		t.BitDepth = int(min(v, math.MaxInt32))
	case IDSamplingFreq:
		var d []byte
		if d, err = r.ReadData(); err == nil {
			switch len(d) {
			case 4:
				t.SamplingFrequency = float64(math.Float32frombits(binary.BigEndian.Uint32(d)))
			case 8:
				t.SamplingFrequency = math.Float64frombits(binary.BigEndian.Uint64(d))
			default:
				err = syntaxErr(e.Offset, e.ID, nil, "SamplingFrequency of %d bytes at offset %d", len(d), e.Offset)
			}
		}
	}
	return err
}

// queueTags reads a Tags element found inside a segment head, leaving its
// bytes out of the head's Raw, and queues its event for after the head.
func (r *Reader) queueTags(e Element) error {
	r.capture = r.capture[:max(len(r.capture)-r.hdrLen, 0)]
	r.capOn = false
	ev, _, err := r.readTags(e)
	r.capOn = true
	r.capGap += int64(e.HeaderLen) + max(e.Size, 0)
	if err != nil {
		return err
	}
	if r.queueBytes += int64(len(ev.TagsRaw)); r.queueBytes > r.opts.MaxHeaderSize {
		return syntaxErr(e.Offset, e.ID, ErrTooLarge, "Tags inside the segment head at offset %d exceed %d bytes", r.capStart, r.opts.MaxHeaderSize)
	}
	ev.TagsRaw = append([]byte(nil), ev.TagsRaw...)
	r.queue = append(r.queue, ev)
	return nil
}

// readTags reads a whole Tags element.
func (r *Reader) readTags(e Element) (Event, bool, error) {
	body, err := r.readWhole(e)
	if err != nil {
		return Event{}, false, err
	}
	r.tagsRaw = append(append(r.tagsRaw[:0], r.hdrRaw[:r.hdrLen]...), body...)
	tags, err := parseTags(body, e.DataOffset())
	if err != nil {
		return Event{}, false, err
	}
	return Event{Kind: EventTags, Offset: e.Offset, Tags: tags, TagsRaw: r.tagsRaw}, true, nil
}

// walk calls fn for each element of a payload held in memory (the payload
// of a within element starting at offset base).
func walk(b []byte, base int64, within uint32, fn func(id uint32, off int64, d []byte) error) error {
	for off := 0; off < len(b); {
		id, n, err := ReadID(b[off:])
		if err != nil {
			return syntaxErr(base+int64(off), 0, ErrInvalidVint, "invalid element ID at offset %d in %s", base+int64(off), ElementName(within))
		}
		size, sn, err := ReadSize(b[off+n:])
		if err != nil || size < 0 || size > int64(len(b)-off-n-sn) {
			return syntaxErr(base+int64(off), id, ErrInvalidVint, "invalid element size at offset %d in %s", base+int64(off+n), ElementName(within))
		}
		start := off + n + sn
		if err := fn(id, base+int64(start), b[start:start+int(size)]); err != nil {
			return err
		}
		off = start + int(size)
	}
	return nil
}

// parseTags collects the SimpleTags (also nested ones) of a Tags payload.
func parseTags(b []byte, base int64) ([]SimpleTag, error) {
	var out []SimpleTag
	var simple func(d []byte, off int64) error
	simple = func(d []byte, off int64) error {
		i := len(out)
		out = append(out, SimpleTag{})
		return walk(d, off, IDSimpleTag, func(id uint32, off int64, d []byte) error {
			switch id {
			case IDTagName:
				out[i].Name = string(d)
			case IDTagString:
				out[i].Value = string(d)
			case IDSimpleTag:
				return simple(d, off)
			}
			return nil
		})
	}
	err := walk(b, base, IDTags, func(id uint32, off int64, d []byte) error {
		if id != IDTag {
			return nil
		}
		return walk(d, off, IDTag, func(id uint32, off int64, d []byte) error {
			if id == IDSimpleTag {
				return simple(d, off)
			}
			return nil
		})
	})
	return out, err
}

// parseBlock decodes a SimpleBlock or Block payload.
func parseBlock(d []byte, off int64) (Block, error) {
	var b Block
	tn := 0
	if len(d) > 0 {
		tn = VintLen(d[0])
	}
	if tn == 0 || len(d) < tn+3 {
		return b, syntaxErr(off, IDSimpleBlock, nil, "invalid block header at offset %d", off)
	}
	track, _, err := ReadSize(d[:tn])
	if err != nil || track <= 0 {
		return b, syntaxErr(off, IDSimpleBlock, nil, "invalid block track number at offset %d", off)
	}
	b.Track = uint64(track)
	b.RelTimecode = int16(binary.BigEndian.Uint16(d[tn:]))
	b.Flags = d[tn+2]
	if b.Flags&0x06 != 0 {
		return b, syntaxErr(off, IDSimpleBlock, ErrLacing, "laced block at offset %d (lacing is not supported)", off)
	}
	b.Data = d[tn+3:]
	return b, nil
}

// readBlockGroup reads a BlockGroup whole; its Block is a key frame unless
// the group has a ReferenceBlock.
func (r *Reader) readBlockGroup(e Element) (Event, bool, error) {
	if n := len(r.stack); n < 2 || r.stack[n-2].id != IDCluster || !r.haveTC {
		return Event{}, false, syntaxErr(e.Offset, e.ID, nil, "BlockGroup at offset %d outside a Cluster or before its Timecode", e.Offset)
	}
	body, err := r.readWhole(e)
	if err != nil {
		return Event{}, false, err
	}
	var blk []byte
	blkOff, ref := int64(0), false
	err = walk(body, e.DataOffset(), IDBlockGroup, func(id uint32, off int64, d []byte) error {
		switch id {
		case IDBlock:
			blk, blkOff = d, off
		case 0xFB: // ReferenceBlock
			ref = true
		}
		return nil
	})
	if err != nil {
		return Event{}, false, err
	}
	if blk == nil {
		return Event{}, false, syntaxErr(e.Offset, e.ID, nil, "BlockGroup without a Block at offset %d", e.Offset)
	}
	b, err := parseBlock(blk, blkOff)
	if err != nil {
		return Event{}, false, err
	}
	b.Keyframe = !ref
	return Event{Kind: EventBlock, Offset: e.Offset, Block: b}, true, nil
}
