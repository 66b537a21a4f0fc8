package mkv

import (
	"errors"
	"fmt"
	"io"
)

// This file is the Matroska layer of the streaming reader: NextEvent turns
// the elements the EBML layer (elements.go) reads into segment starts, tags,
// cluster starts and blocks. It reads incrementally from an io.Reader with
// a bounded buffer, understands unknown-size masters the way Matroska
// demuxers do, and reads concatenated segments (the GetMedia layout) as one
// stream. The segment head is assembled in head.go; payloads held in memory
// (Tags, blocks, BlockGroups) are decoded in payload.go.

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

// ErrLacing is returned (inside a *SyntaxError) for laced blocks, which
// Kinesis Video Streams never produces.
var ErrLacing = errors.New("mkv: laced blocks are not supported")

// Reader reads Matroska incrementally from an io.Reader. It never holds more
// than one element (bounded by MaxElementSize) plus one read chunk, and the
// segment head (bounded by MaxHeaderSize).
//
// Use either the low level (Next, ReadData) or the high level (NextEvent)
// on one Reader, not both.
type Reader struct {
	// elementReader is the low level: element headers and payloads, and
	// the open masters (Next, ReadData, Offset, Depth).
	elementReader
	opts ReaderOptions
	err  error // sticky error of NextEvent

	held       *Element // an element read but not yet handled
	hdr        *SegmentHeader
	capGap     int64 // bytes of the segment head left out of the capture (its Tags)
	ebmlOpen   bool  // an EBML header was read, its Segment not yet
	pendHdr    bool  // inside a segment head, SegmentStart not yet returned
	haveTC     bool  // the open Cluster's Timecode was read
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
	return &Reader{elementReader: newElementReader(r, o.MaxElementSize, o.MaxHeaderSize), opts: o, lastResync: -1}
}

// SkippedBytes is the number of bytes Resync has skipped so far.
func (r *Reader) SkippedBytes() int64 { return r.skipped }

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
			if ev, ok, handled, err := r.headElement(e); handled || err != nil {
				return ev, ok, err
			}
		}
	}
	return r.handle(e)
}

// handle turns element e into an event, or into state for the next ones.
func (r *Reader) handle(e Element) (Event, bool, error) {
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
	switch parent := r.enclosing(0); {
	case parent == IDCluster && e.ID == IDTimecode:
		return r.clusterTimecode(e)
	case parent == IDCluster && e.ID == IDSimpleBlock:
		return r.readSimpleBlock(e)
	case r.pendHdr:
		return Event{}, false, r.headerField(e, parent)
	}
	return Event{}, false, nil
}

// clusterTimecode reads the open Cluster's Timecode: the cluster starts.
func (r *Reader) clusterTimecode(e Element) (Event, bool, error) {
	v, err := r.uint(e)
	if err != nil {
		return Event{}, false, err
	}
	if r.haveTC {
		return Event{}, false, syntaxErr(e.Offset, e.ID, nil, "second Timecode in the Cluster at offset %d", r.clusterOff)
	}
	r.haveTC = true
	return Event{Kind: EventClusterStart, Offset: r.clusterOff, Timecode: v}, true, nil
}

// readSimpleBlock reads a SimpleBlock of the open Cluster.
func (r *Reader) readSimpleBlock(e Element) (Event, bool, error) {
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
}

// resync scans forward from the damage to the next Cluster, Tags or EBML
// header ID, and continues there.
func (r *Reader) resync(cause error) error {
	if r.off == r.lastResync {
		// The same place failed again: step over it.
		start := r.off
		if err := r.skipByte(); err != nil {
			r.report(start, cause)
			return err
		}
	}
	start := r.off
	r.pending, r.held = 0, nil
	r.queue, r.queueBytes = nil, 0
	r.capture.on, r.pendHdr, r.hdr, r.ebmlOpen, r.haveTC = false, false, nil, false, false
	id, err := r.scanTo(IDCluster, IDTags, IDEBML)
	r.report(start, cause)
	if err != nil {
		return err
	}
	r.lastResync = r.off
	// Keep the Segment open for a Cluster or Tags; an EBML header starts
	// over.
	if id == IDEBML {
		r.closeAll()
	} else {
		r.closeInside(IDSegment)
	}
	return nil
}

func (r *Reader) report(start int64, cause error) {
	if n := r.off - start; n > 0 {
		r.skipped += n
		if r.opts.Skipped != nil {
			r.opts.Skipped(start, n, cause)
		}
	}
}
