package mkv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Element is one element header, as Reader.Next returns it.
type Element struct {
	ID        uint32
	Size      int64 // UnknownSize for unknown-size masters
	Offset    int64 // byte offset of the ID
	HeaderLen int   // ID + size field
}

// DataOffset is the offset of the element's payload.
func (e Element) DataOffset() int64 { return e.Offset + int64(e.HeaderLen) }

// masters are descended into; children lists say which IDs an unknown-size
// master may contain (anything else ends it, as demuxers do).
var children = map[uint32]map[uint32]bool{
	IDEBML:    {IDEBMLVersion: true, IDEBMLReadVersion: true, IDEBMLMaxIDLength: true, IDEBMLMaxSizeLength: true, IDDocType: true, IDDocTypeVersion: true, IDDocTypeReadVersion: true, IDVoid: true, IDCRC32: true},
	IDSegment: {IDSeekHead: true, IDInfo: true, IDTracks: true, IDCluster: true, IDCues: true, IDTags: true, IDVoid: true, IDCRC32: true, 0x1043A770: true, 0x1941A469: true},
	IDCluster: {IDTimecode: true, IDPosition: true, IDPrevSize: true, IDSimpleBlock: true, IDBlockGroup: true, IDVoid: true, IDCRC32: true, 0x5854: true, 0xAF: true},
	IDInfo:    nil, IDTracks: nil, IDTrackEntry: nil, IDVideo: nil, IDAudio: nil,
	IDTags: {IDTag: true, IDVoid: true}, IDTag: nil, IDSimpleTag: nil, IDTargets: nil,
	IDBlockGroup: nil, IDSeekHead: nil, IDCues: nil,
}

func isMaster(id uint32) bool { _, ok := children[id]; return ok }

// canContain reports whether an element with id may appear inside parent.
// Known-size masters are ended by their size, so only unknown-size ones use
// this; for those without a list, anything but a level-0/1 ID is a child.
func canContain(parent, id uint32) bool {
	if l := children[parent]; l != nil {
		return l[id]
	}
	switch id {
	case IDEBML, IDSegment, IDCluster, IDTags, IDTracks, IDInfo, IDCues, IDSeekHead:
		return false
	}
	return true
}

// DefaultMaxElementSize bounds the payload of one leaf element (a frame).
const DefaultMaxElementSize = 64 << 20

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// MaxElementSize bounds one leaf element; default DefaultMaxElementSize.
	MaxElementSize int64
	// Resync skips damaged bytes to the next Cluster, Tags or EBML header
	// instead of failing, as Matroska demuxers do. Skipped reports each
	// skipped range.
	Resync  bool
	Skipped func(offset, length int64, cause error)
}

type open struct {
	id  uint32
	end int64 // -1: unknown size
}

// Reader reads Matroska incrementally from an io.Reader, with a bounded
// buffer. It understands concatenated segments (the GetMedia layout).
type Reader struct {
	src     io.Reader
	opts    ReaderOptions
	buf     []byte // unread bytes are buf[pos:]
	pos     int
	off     int64 // stream offset of buf[pos]
	eof     bool
	srcErr  error
	stack   []open
	skip    int64 // unread payload of the last leaf
	back    *Element
	capture []byte
	capOn   bool

	// high level
	hdr      *SegmentHeader
	pendHdr  bool
	cluster  bool
	haveTC   bool
	blockBuf []byte
	tagsRaw  []byte
}

// NewReader reads from r with default options.
func NewReader(r io.Reader) *Reader { return NewReaderOptions(r, ReaderOptions{}) }

// NewReaderOptions reads from r.
func NewReaderOptions(r io.Reader, o ReaderOptions) *Reader {
	if o.MaxElementSize <= 0 {
		o.MaxElementSize = DefaultMaxElementSize
	}
	return &Reader{src: r, opts: o, buf: make([]byte, 0, 64<<10)}
}

// Offset is the stream offset of the next unread byte.
func (r *Reader) Offset() int64 { return r.off }

// StartCapture records every byte consumed from now on (Capture returns
// them); used to keep what was received verbatim.
func (r *Reader) StartCapture() { r.capture, r.capOn = r.capture[:0], true }

// Capture returns the bytes consumed since StartCapture and stops recording.
// The slice is valid until the next StartCapture.
func (r *Reader) Capture() []byte { r.capOn = false; return r.capture }

// fill makes n unread bytes available, or returns io.ErrUnexpectedEOF / io.EOF.
func (r *Reader) fill(n int) error {
	for len(r.buf)-r.pos < n {
		if r.srcErr != nil {
			if len(r.buf)-r.pos == 0 && r.srcErr == io.EOF {
				return io.EOF
			}
			if r.srcErr == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return r.srcErr
		}
		if r.pos > 0 && (r.pos > cap(r.buf)/2 || cap(r.buf)-len(r.buf) < n) {
			r.buf = append(r.buf[:0], r.buf[r.pos:]...)
			r.pos = 0
		}
		if cap(r.buf)-len(r.buf) < n-(len(r.buf)-r.pos) || cap(r.buf) == len(r.buf) {
			nb := make([]byte, len(r.buf), max(2*cap(r.buf), len(r.buf)+n))
			copy(nb, r.buf)
			r.buf = nb
		}
		m, err := r.src.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+m]
		if err != nil {
			r.srcErr = err
		}
	}
	return nil
}

// consume advances n bytes (already filled).
func (r *Reader) consume(n int) []byte {
	b := r.buf[r.pos : r.pos+n]
	if r.capOn {
		r.capture = append(r.capture, b...)
	}
	r.pos += n
	r.off += int64(n)
	return b
}

// discard skips n bytes without keeping them in memory (unless capturing).
func (r *Reader) discard(n int64) error {
	for n > 0 {
		chunk := int(min(n, 32<<10))
		if err := r.fill(chunk); err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		r.consume(chunk)
		n -= int64(chunk)
	}
	return nil
}

// Next returns the next element header in document order, descending into
// masters. Leaf payloads are skipped unless ReadData is called first.
func (r *Reader) Next() (Element, error) {
	var e Element
	if r.back != nil {
		e = *r.back
		r.back = nil
		return r.enter(e)
	}
	if r.skip > 0 {
		if err := r.discard(r.skip); err != nil {
			return Element{}, r.errAt(r.off, "element payload", err)
		}
		r.skip = 0
	}
	for len(r.stack) > 0 {
		top := r.stack[len(r.stack)-1]
		if top.end >= 0 && r.off >= top.end {
			r.stack = r.stack[:len(r.stack)-1]
			continue
		}
		break
	}
	e, err := r.readHeader()
	if err != nil {
		return e, err
	}
	return r.enter(e)
}

// enter places e in the element tree: it closes the unknown-size masters e
// cannot belong to, then opens e if it is a master.
func (r *Reader) enter(e Element) (Element, error) {
	for len(r.stack) > 0 {
		top := r.stack[len(r.stack)-1]
		if top.end < 0 && !canContain(top.id, e.ID) {
			r.stack = r.stack[:len(r.stack)-1]
			continue
		}
		if top.end >= 0 && e.Size >= 0 && e.DataOffset()+e.Size > top.end {
			return e, fmt.Errorf("mkv: element 0x%X at offset %d (%d bytes) overruns its parent 0x%X ending at %d", e.ID, e.Offset, e.Size, top.id, top.end)
		}
		break
	}
	if isMaster(e.ID) {
		end := int64(-1)
		if e.Size >= 0 {
			end = e.DataOffset() + e.Size
		}
		r.stack = append(r.stack, open{e.ID, end})
	} else {
		if e.Size < 0 {
			return e, fmt.Errorf("mkv: element 0x%X at offset %d has an unknown size but is not a master", e.ID, e.Offset)
		}
		r.skip = e.Size
	}
	return e, nil
}

func (r *Reader) readHeader() (Element, error) {
	e := Element{Offset: r.off}
	if err := r.fill(1); err != nil {
		return e, err
	}
	n := VintLen(r.buf[r.pos])
	if n == 0 || n > 4 {
		return e, fmt.Errorf("mkv: invalid element ID byte 0x%02X at offset %d", r.buf[r.pos], r.off)
	}
	if err := r.fill(n); err != nil {
		return e, r.errAt(r.off, "element ID", err)
	}
	id, _, _ := ReadID(r.buf[r.pos : r.pos+n])
	r.consume(n)
	if err := r.fill(1); err != nil {
		return e, r.errAt(r.off, "element size", err)
	}
	sn := VintLen(r.buf[r.pos])
	if sn == 0 {
		return e, fmt.Errorf("mkv: invalid element size at offset %d (element 0x%X)", r.off, id)
	}
	if err := r.fill(sn); err != nil {
		return e, r.errAt(r.off, "element size", err)
	}
	size, _, err := ReadSize(r.buf[r.pos : r.pos+sn])
	if err != nil {
		return e, fmt.Errorf("mkv: invalid element size at offset %d (element 0x%X): %v", r.off, id, err)
	}
	r.consume(sn)
	e.ID, e.Size, e.HeaderLen = id, size, n+sn
	return e, nil
}

func (r *Reader) errAt(off int64, what string, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("mkv: %s at offset %d: %w", what, off, err)
}

// ReadData returns the payload of the leaf element Next just returned. The
// slice is valid until the next call on the Reader.
func (r *Reader) ReadData() ([]byte, error) {
	n := r.skip
	if n > r.opts.MaxElementSize {
		return nil, fmt.Errorf("mkv: element of %d bytes at offset %d exceeds the %d-byte limit", n, r.off, r.opts.MaxElementSize)
	}
	if err := r.fill(int(n)); err != nil {
		return nil, r.errAt(r.off, "element payload", err)
	}
	r.skip = 0
	return r.consume(int(n)), nil
}

// unread pushes an element header back so that Next returns it again.
func (r *Reader) unread(e Element) { r.back = &e }

// Depth is the number of open masters.
func (r *Reader) Depth() int { return len(r.stack) }

// ---- high level ----

// EventKind tells what an Event carries.
type EventKind int

// Event kinds.
const (
	EventSegmentStart EventKind = iota // a new EBML header + Segment; Header is set
	EventTags                          // a Tags element; Tags (and TagsRaw) are set
	EventClusterStart                  // a Cluster and its Timecode
	EventBlock                         // a SimpleBlock (or a Block in a BlockGroup)
)

func (k EventKind) String() string {
	return [...]string{"SegmentStart", "Tags", "ClusterStart", "Block"}[k]
}

// SegmentHeader is what a segment declares before its first Cluster or Tags.
type SegmentHeader struct {
	TimecodeScale uint64
	SegmentUID    []byte
	Title         string
	MuxingApp     string
	WritingApp    string
	Tracks        []Track
	// Raw is the bytes from the EBML header up to (excluding) the first
	// Tags or Cluster, as received.
	Raw []byte
}

// Block is one frame.
type Block struct {
	Track       uint64
	RelTimecode int16
	Flags       byte
	Keyframe    bool
	Data        []byte // valid until the next call on the Reader
}

// Event is one step of NextEvent.
type Event struct {
	Kind     EventKind
	Offset   int64
	Header   *SegmentHeader
	Tags     []SimpleTag
	TagsRaw  []byte // the Tags element as received, valid until the next call
	Timecode uint64
	Block    Block
}

// ErrLacing is returned for laced blocks, which Kinesis Video Streams never
// produces.
var ErrLacing = errors.New("mkv: laced blocks are not supported")

// NextEvent returns the next segment start, tags, cluster start or block.
// It returns io.EOF at the end of the input.
func (r *Reader) NextEvent() (Event, error) {
	for {
		ev, ok, err := r.step()
		if err != nil {
			if err == io.EOF {
				if r.pendHdr {
					r.pendHdr = false
					return Event{Kind: EventSegmentStart, Header: r.hdr}, nil
				}
				return ev, io.EOF
			}
			if r.opts.Resync && !errors.Is(err, io.ErrUnexpectedEOF) && r.srcErr == nil || r.opts.Resync && r.recoverable(err) {
				if rerr := r.resync(err); rerr != nil {
					return ev, rerr
				}
				continue
			}
			return ev, err
		}
		if ok {
			return ev, nil
		}
	}
}

func (r *Reader) recoverable(err error) bool {
	return !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF)
}

// resync scans forward to the next Cluster, Tags or EBML ID.
func (r *Reader) resync(cause error) error {
	start := r.off
	r.skip, r.back = 0, nil
	for {
		if err := r.fill(4); err != nil {
			if r.opts.Skipped != nil {
				r.opts.Skipped(start, r.off-start, cause)
			}
			if err == io.ErrUnexpectedEOF {
				r.consume(len(r.buf) - r.pos)
				return io.EOF
			}
			return err
		}
		id := binary.BigEndian.Uint32(r.buf[r.pos:])
		if id == IDCluster || id == IDTags || id == IDEBML {
			if r.opts.Skipped != nil {
				r.opts.Skipped(start, r.off-start, cause)
			}
			// Keep the Segment open for Cluster/Tags; an EBML header starts over.
			var seg []open
			for _, o := range r.stack {
				if o.id == IDSegment && id != IDEBML {
					seg = append(seg, o)
				}
			}
			r.stack = seg
			r.cluster, r.haveTC = false, false
			return nil
		}
		r.consume(1)
	}
}

// step processes one element; ok reports an event.
func (r *Reader) step() (Event, bool, error) {
	e, err := r.Next()
	if err != nil {
		return Event{}, false, err
	}
	inSegmentLevel := len(r.stack) >= 1 && r.parentID(e) == IDSegment
	if r.pendHdr && (e.ID == IDCluster || e.ID == IDTags || e.ID == IDCues || e.ID == IDEBML) {
		// The segment head is complete: report it, then this element.
		r.hdr.Raw = append([]byte(nil), r.Capture()...)
		if n := int64(len(r.hdr.Raw)) - (r.off - e.Offset); n >= 0 {
			r.hdr.Raw = r.hdr.Raw[:n]
		}
		r.pendHdr = false
		r.popTo(e)
		r.unread(e)
		return Event{Kind: EventSegmentStart, Offset: e.Offset, Header: r.hdr}, true, nil
	}
	switch e.ID {
	case IDEBML:
		r.StartCapture()
		r.capture = append(r.capture, r.rawHeader(e)...)
		r.hdr = &SegmentHeader{TimecodeScale: DefaultTimecodeScale}
		r.cluster = false
		return Event{}, false, nil
	case IDSegment:
		if r.hdr == nil {
			r.hdr = &SegmentHeader{TimecodeScale: DefaultTimecodeScale}
			r.StartCapture()
			r.capture = append(r.capture, r.rawHeader(e)...)
		}
		r.pendHdr = true
		r.cluster = false
		return Event{}, false, nil
	case IDInfo, IDTracks, IDTrackEntry, IDVideo, IDAudio, IDSeekHead:
		if r.hdr == nil {
			r.hdr = &SegmentHeader{TimecodeScale: DefaultTimecodeScale}
		}
		if e.ID == IDTrackEntry {
			r.hdr.Tracks = append(r.hdr.Tracks, Track{})
		}
		return Event{}, false, nil
	case IDTags:
		return r.readTags(e)
	case IDCluster:
		r.cluster, r.haveTC = true, false
		return Event{}, false, nil
	case IDTimecode:
		if !r.cluster {
			return Event{}, false, nil
		}
		v, err := r.uint(e)
		if err != nil {
			return Event{}, false, err
		}
		r.haveTC = true
		return Event{Kind: EventClusterStart, Offset: e.Offset, Timecode: v}, true, nil
	case IDSimpleBlock:
		if !r.haveTC {
			return Event{}, false, fmt.Errorf("mkv: SimpleBlock at offset %d before the Cluster's Timecode", e.Offset)
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
	case IDBlockGroup:
		return r.readBlockGroup(e)
	}
	_ = inSegmentLevel
	if r.hdr != nil && r.pendHdr {
		return Event{}, false, r.headerField(e)
	}
	return Event{}, false, nil
}

func (r *Reader) parentID(e Element) uint32 {
	if isMaster(e.ID) && len(r.stack) >= 2 {
		return r.stack[len(r.stack)-2].id
	}
	if len(r.stack) >= 1 {
		return r.stack[len(r.stack)-1].id
	}
	return 0
}

// popTo removes e itself from the stack (it was pushed by Next) so that
// unread + Next pushes it again.
func (r *Reader) popTo(e Element) {
	if isMaster(e.ID) && len(r.stack) > 0 && r.stack[len(r.stack)-1].id == e.ID {
		r.stack = r.stack[:len(r.stack)-1]
	}
	if !isMaster(e.ID) {
		r.skip = 0
	}
}

// rawHeader re-encodes the header of e (its bytes were consumed before the
// capture started).
func (r *Reader) rawHeader(e Element) []byte {
	b := AppendID(nil, e.ID)
	w := e.HeaderLen - len(b)
	if e.Size < 0 {
		for i := 0; i < w; i++ {
			if i == 0 {
				b = append(b, 0xFF>>(w-1))
			} else {
				b = append(b, 0xFF)
			}
		}
		return b
	}
	return AppendSizeWidth(b, e.Size, w)
}

func (r *Reader) uint(e Element) (uint64, error) {
	d, err := r.ReadData()
	if err != nil {
		return 0, err
	}
	v, err := ParseUint(d)
	if err != nil {
		return 0, fmt.Errorf("mkv: element 0x%X at offset %d: %v", e.ID, e.Offset, err)
	}
	return v, nil
}

// headerField stores an Info or TrackEntry field.
func (r *Reader) headerField(e Element) error {
	h := r.hdr
	var t *Track
	if len(h.Tracks) > 0 {
		t = &h.Tracks[len(h.Tracks)-1]
	}
	str := func() (string, error) { d, err := r.ReadData(); return string(d), err }
	var err error
	switch e.ID {
	case IDTimecodeScale:
		h.TimecodeScale, err = r.uint(e)
		if err == nil && h.TimecodeScale == 0 {
			err = fmt.Errorf("mkv: TimecodeScale 0 at offset %d", e.Offset)
		}
	case IDSegmentUID:
		var d []byte
		d, err = r.ReadData()
		h.SegmentUID = append([]byte(nil), d...)
	case IDTitle:
		h.Title, err = str()
	case IDMuxingApp:
		h.MuxingApp, err = str()
	case IDWritingApp:
		h.WritingApp, err = str()
	}
	if t == nil {
		return err
	}
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
		t.Name, err = str()
	case IDCodecID:
		t.CodecID, err = str()
	case IDCodecPrivate:
		var d []byte
		d, err = r.ReadData()
		t.CodecPrivate = append([]byte(nil), d...)
	case IDDefaultDuration:
		t.DefaultDuration, err = r.uint(e)
	case IDPixelWidth:
		v, err = r.uint(e)
		t.PixelWidth = int(v)
	case IDPixelHeight:
		v, err = r.uint(e)
		t.PixelHeight = int(v)
	case IDChannels:
		v, err = r.uint(e)
		t.Channels = int(v)
	case IDBitDepth:
		v, err = r.uint(e)
		t.BitDepth = int(v)
	case IDSamplingFreq:
		var d []byte
		if d, err = r.ReadData(); err == nil {
			switch len(d) {
			case 4:
				t.SamplingFrequency = float64(math.Float32frombits(binary.BigEndian.Uint32(d)))
			case 8:
				t.SamplingFrequency = math.Float64frombits(binary.BigEndian.Uint64(d))
			default:
				err = fmt.Errorf("mkv: SamplingFrequency of %d bytes at offset %d", len(d), e.Offset)
			}
		}
	}
	return err
}

// readTags reads a whole Tags element.
func (r *Reader) readTags(e Element) (Event, bool, error) {
	if e.Size < 0 {
		return Event{}, false, fmt.Errorf("mkv: Tags of unknown size at offset %d", e.Offset)
	}
	if e.Size > r.opts.MaxElementSize {
		return Event{}, false, fmt.Errorf("mkv: Tags of %d bytes at offset %d exceeds the limit", e.Size, e.Offset)
	}
	r.stack = r.stack[:len(r.stack)-1] // read it whole instead of descending
	if err := r.fill(int(e.Size)); err != nil {
		return Event{}, false, r.errAt(r.off, "Tags", err)
	}
	body := r.consume(int(e.Size))
	raw := append(append(r.tagsRaw[:0], r.rawHeader(e)...), body...)
	r.tagsRaw = raw
	tags, err := parseTags(body, e.DataOffset())
	if err != nil {
		return Event{}, false, err
	}
	return Event{Kind: EventTags, Offset: e.Offset, Tags: tags, TagsRaw: raw}, true, nil
}

// parseTags walks Tag/SimpleTag/TagName/TagString in a Tags payload.
func parseTags(b []byte, base int64) ([]SimpleTag, error) {
	var out []SimpleTag
	var walk func(b []byte, base int64, parent uint32) error
	walk = func(b []byte, base int64, parent uint32) error {
		var cur *SimpleTag
		for off := 0; off < len(b); {
			id, n, err := ReadID(b[off:])
			if err != nil {
				return fmt.Errorf("mkv: invalid element ID in Tags at offset %d", base+int64(off))
			}
			size, sn, err := ReadSize(b[off+n:])
			if err != nil || size < 0 || int64(off+n+sn)+size > int64(len(b)) {
				return fmt.Errorf("mkv: invalid element size in Tags at offset %d", base+int64(off))
			}
			d := b[off+n+sn : off+n+sn+int(size)]
			switch id {
			case IDTag:
				if err := walk(d, base+int64(off+n+sn), id); err != nil {
					return err
				}
			case IDSimpleTag:
				out = append(out, SimpleTag{})
				if err := walk(d, base+int64(off+n+sn), id); err != nil {
					return err
				}
			case IDTagName, IDTagString:
				if parent == IDSimpleTag {
					cur = &out[len(out)-1]
					if id == IDTagName {
						cur.Name = string(d)
					} else {
						cur.Value = string(d)
					}
				}
			}
			off += n + sn + int(size)
		}
		return nil
	}
	return out, walk(b, base, IDTags)
}

// parseBlock decodes a (Simple)Block payload.
func parseBlock(d []byte, off int64) (Block, error) {
	var b Block
	if len(d) < 4 {
		return b, fmt.Errorf("mkv: block of %d bytes at offset %d", len(d), off)
	}
	tn := VintLen(d[0])
	if tn == 0 || tn > 8 || len(d) < tn+3 {
		return b, fmt.Errorf("mkv: invalid block track number at offset %d", off)
	}
	track, _, err := ReadSize(d[:tn])
	if err != nil || track <= 0 {
		return b, fmt.Errorf("mkv: invalid block track number at offset %d", off)
	}
	b.Track = uint64(track)
	b.RelTimecode = int16(binary.BigEndian.Uint16(d[tn:]))
	b.Flags = d[tn+2]
	if b.Flags&0x06 != 0 {
		return b, fmt.Errorf("%w (block at offset %d)", ErrLacing, off)
	}
	b.Data = d[tn+3:]
	return b, nil
}

// readBlockGroup reads a BlockGroup whole; its Block is a key frame unless
// the group has a ReferenceBlock.
func (r *Reader) readBlockGroup(e Element) (Event, bool, error) {
	if e.Size < 0 || e.Size > r.opts.MaxElementSize {
		return Event{}, false, fmt.Errorf("mkv: BlockGroup of size %d at offset %d", e.Size, e.Offset)
	}
	if !r.haveTC {
		return Event{}, false, fmt.Errorf("mkv: BlockGroup at offset %d before the Cluster's Timecode", e.Offset)
	}
	r.stack = r.stack[:len(r.stack)-1]
	if err := r.fill(int(e.Size)); err != nil {
		return Event{}, false, r.errAt(r.off, "BlockGroup", err)
	}
	body := r.consume(int(e.Size))
	var blk []byte
	ref := false
	for off := 0; off < len(body); {
		id, n, err := ReadID(body[off:])
		if err != nil {
			return Event{}, false, fmt.Errorf("mkv: invalid element in BlockGroup at offset %d", e.DataOffset()+int64(off))
		}
		size, sn, err := ReadSize(body[off+n:])
		if err != nil || size < 0 || int64(off+n+sn)+size > int64(len(body)) {
			return Event{}, false, fmt.Errorf("mkv: invalid element size in BlockGroup at offset %d", e.DataOffset()+int64(off))
		}
		switch id {
		case IDBlock:
			blk = body[off+n+sn : off+n+sn+int(size)]
		case 0xFB: // ReferenceBlock
			ref = true
		}
		off += n + sn + int(size)
	}
	if blk == nil {
		return Event{}, false, fmt.Errorf("mkv: BlockGroup without Block at offset %d", e.Offset)
	}
	b, err := parseBlock(blk, e.Offset)
	if err != nil {
		return Event{}, false, err
	}
	b.Keyframe = !ref
	return Event{Kind: EventBlock, Offset: e.Offset, Block: b}, true, nil
}
