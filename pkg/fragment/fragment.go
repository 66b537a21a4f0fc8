// Package fragment turns timestamped frames into Kinesis Video Streams
// fragments: one Matroska Cluster each, cut at key frames (or after a minimum
// duration), never longer than the service's limit, with cluster timecodes
// that strictly increase so the service can never answer 4004. With an
// audio and a video track, an Interleaver orders their frames by time and a
// Layout makes every fragment start at a video key frame and hold each
// declared track (4011).
//
// It does no I/O. It imports pkg/mkv and the standard library only.
package fragment

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// MaxServiceDuration is the longest fragment Kinesis Video Streams accepts
// (longer ones are rejected with ErrorId 4002).
const MaxServiceDuration = 10 * time.Second

// Config is the fragmentation policy.
type Config struct {
	// TimecodeScale is the Matroska timecode unit. It defaults to 1 ms.
	TimecodeScale time.Duration
	// KeyFrameFragmentation starts a fragment at every key frame. When false,
	// a fragment starts at the first key frame after FragmentDuration.
	KeyFrameFragmentation bool
	// FragmentDuration is the minimum fragment length when
	// KeyFrameFragmentation is false. It defaults to 2 s.
	FragmentDuration time.Duration
	// MaxDuration bounds a fragment: a frame that would make the fragment
	// span MaxDuration or more starts a new fragment even if it is not a key
	// frame (see Fragment.Forced). It defaults to MaxServiceDuration.
	MaxDuration time.Duration
	// Track is the Matroska track number of the frames. It defaults to 1.
	Track uint64
	// Sealer, when set, encrypts every frame (end-to-end encryption) and
	// supplies the block that starts every fragment on KeyTrack.
	Sealer Sealer
	// KeyTrack is the track number of the key blocks; required with Sealer.
	KeyTrack uint64
	// RecycleBytes bounds the buffers of finished fragments kept for reuse
	// (Recycle). It defaults to DefaultRecycleBytes; negative keeps none.
	RecycleBytes int
}

// DefaultRecycleBytes is the default Config.RecycleBytes.
const DefaultRecycleBytes = 16 << 20

// SealSlack is the room Add leaves for what a Sealer adds to a frame
// (a header and an authentication tag); a sealer that adds more still
// works, at the cost of a copy of the fragment.
const SealSlack = 64

// Sealer encrypts frames as they are added, so each frame is sealed exactly
// once, before any buffering or retransmission.
type Sealer interface {
	// StartFragment is called before a fragment opens with its Cluster
	// timecode and returns the payload of the key-track block that starts
	// it. A sealer changes keys only here, at a fragment boundary.
	StartFragment(timecode uint64) ([]byte, error)
	// AppendSealed appends to dst the sealed form of a frame of track whose
	// absolute timecode (Cluster timecode + relative timecode, in
	// TimecodeScale units) is tc.
	AppendSealed(dst []byte, track uint64, keyframe bool, tc uint64, plaintext []byte) ([]byte, error)
}

// Frame is one access unit with an absolute presentation time (the time
// base of the stream: epoch time for absolute fragment times).
type Frame struct {
	PTS time.Duration
	// Keyframe sets the SimpleBlock's key flag. Only a key frame of the
	// layout's cut track may start a fragment (in an audio and video stream,
	// a video key frame; audio frames are all key frames but never cut).
	Keyframe bool
	// Track is the Matroska track number; 0 means Config.Track.
	Track uint64
	Data  []byte
}

// Layout is the set of tracks the fragments declare (the Tracks of the
// segment header they are sent under) and the fragmentation policy that
// goes with it. SetLayout changes it from the next fragment on.
type Layout struct {
	// CutTrack is the track whose key frames start fragments.
	CutTrack uint64
	// Tracks lists every media track of the header: a fragment is not cut
	// before it holds a frame of each (the service rejects a fragment that
	// lacks a declared track with ErrorId 4011), unless MaxDuration forces
	// the cut.
	Tracks []uint64
	// KeyFrameFragmentation: see Config.KeyFrameFragmentation.
	KeyFrameFragmentation bool
}

// Fragment is one Cluster and the Tags that precede it.
type Fragment struct {
	Seq      uint64        // 0, 1, 2, ... in the order fragments were started
	Timecode uint64        // Cluster timecode, in TimecodeScale units
	Start    time.Duration // PTS of the first frame
	Last     time.Duration // greatest PTS in the fragment
	Least    time.Duration // least PTS in the fragment (below Start for frames shown before the one that opened it)
	Frames   int
	Keyframe bool // starts with a key frame (false only when Forced)
	Forced   bool // cut on a non-key frame to stay under MaxDuration
	// Tracks is the number of frames per media track (index: track number).
	Tracks [MaxTrack + 1]int
	// Data is the fragment's bytes: Tags (if any), the Cluster head and its
	// SimpleBlocks. It grows until the fragment is closed; bytes already
	// appended never change.
	Data   []byte
	Closed bool

	want []uint64 // the layout's tracks when it was opened
}

// Errors.
var (
	ErrBackwards   = errors.New("fragment: timestamp goes backwards past the fragment start")
	ErrFrameTooBig = errors.New("fragment: frame larger than a fragment may be")
)

// MaxFrameSize bounds one frame (KVS fragments are at most 50 MB).
const MaxFrameSize = 50 << 20

// MaxTrack is the highest track number a frame may have (KVS takes at most
// three tracks).
const MaxTrack = 3

// Builder assembles fragments. It is not safe for concurrent use.
type Builder struct {
	cfg      Config
	layout   Layout
	cur      *Fragment
	seq      uint64
	lastTC   uint64   // greatest frame timecode emitted so far
	free     [][]byte // recycled fragment buffers (Recycle)
	freeSize int      // their total capacity
	started  bool
	skipped  int
	pending  []mkv.SimpleTag
	lastSize int // bytes of the previous fragment
	// persistent tags are written before every fragment until replaced.
	persistent []mkv.SimpleTag
}

// NewBuilder validates cfg and fills its defaults.
func NewBuilder(cfg Config) (*Builder, error) {
	if cfg.TimecodeScale == 0 {
		cfg.TimecodeScale = time.Millisecond
	}
	if cfg.FragmentDuration == 0 {
		cfg.FragmentDuration = 2 * time.Second
	}
	if cfg.MaxDuration == 0 {
		cfg.MaxDuration = MaxServiceDuration
	}
	if cfg.Track == 0 {
		cfg.Track = 1
	}
	if cfg.RecycleBytes == 0 {
		cfg.RecycleBytes = DefaultRecycleBytes
	}
	switch {
	case cfg.Sealer != nil && (cfg.KeyTrack == 0 || cfg.KeyTrack == cfg.Track || cfg.KeyTrack > 126):
		return nil, fmt.Errorf("fragment: key track %d must be 1..126 and differ from the frame track %d", cfg.KeyTrack, cfg.Track)
	case cfg.TimecodeScale < time.Microsecond || cfg.TimecodeScale > time.Second:
		return nil, fmt.Errorf("fragment: timecode scale %v outside 1µs..1s", cfg.TimecodeScale)
	case cfg.MaxDuration > MaxServiceDuration:
		return nil, fmt.Errorf("fragment: max duration %v above the service limit %v", cfg.MaxDuration, MaxServiceDuration)
	case !cfg.KeyFrameFragmentation && (cfg.FragmentDuration < time.Second || cfg.FragmentDuration > 30*time.Second):
		return nil, fmt.Errorf("fragment: fragment-duration %v outside 1 s..30 s", cfg.FragmentDuration)
	}
	if cfg.Track > MaxTrack {
		return nil, fmt.Errorf("fragment: track %d above %d", cfg.Track, MaxTrack)
	}
	return &Builder{cfg: cfg, layout: Layout{CutTrack: cfg.Track, Tracks: []uint64{cfg.Track}, KeyFrameFragmentation: cfg.KeyFrameFragmentation}}, nil
}

// SetLayout changes the tracks and the cut policy; the open fragment keeps
// the layout it was opened with for its 4011 guard, the next cut follows l.
func (b *Builder) SetLayout(l Layout) error {
	if l.CutTrack == 0 || l.CutTrack > MaxTrack || !slices.Contains(l.Tracks, l.CutTrack) {
		return fmt.Errorf("fragment: cut track %d is not one of the layout's tracks %v", l.CutTrack, l.Tracks)
	}
	for _, t := range l.Tracks {
		if t == 0 || t > MaxTrack || (b.cfg.Sealer != nil && t == b.cfg.KeyTrack) {
			return fmt.Errorf("fragment: layout track %d outside 1..%d or equal to the key track", t, MaxTrack)
		}
	}
	b.layout = Layout{CutTrack: l.CutTrack, Tracks: slices.Clone(l.Tracks), KeyFrameFragmentation: l.KeyFrameFragmentation}
	return nil
}

// Layout returns the current layout.
func (b *Builder) Layout() Layout { return b.layout }

// WouldCut reports whether Add(f) would start a new fragment.
func (b *Builder) WouldCut(f Frame) bool {
	f.Track = b.track(f)
	if b.cur == nil {
		return b.cuts(f)
	}
	return b.cutBefore(f, uint64(max(f.PTS, 0)/b.cfg.TimecodeScale))
}

func (b *Builder) track(f Frame) uint64 {
	if f.Track == 0 {
		return b.cfg.Track
	}
	return f.Track
}

// cuts reports whether f may start a fragment: a key frame of the cut track.
func (b *Builder) cuts(f Frame) bool { return f.Keyframe && f.Track == b.layout.CutTrack }

// CanOpen reports whether a fragment may open at f: its timecode must be
// above every frame timecode already added (the service answers 4004
// otherwise, even across PutMedia sessions).
func (b *Builder) CanOpen(f Frame) bool {
	return !b.started || f.PTS >= 0 && uint64(f.PTS/b.cfg.TimecodeScale) > b.lastTC
}

// Config returns the effective configuration.
func (b *Builder) Config() Config { return b.cfg }

// Skipped returns how many frames were dropped before the first key frame.
func (b *Builder) Skipped() int { return b.skipped }

// SetNextSeq sets the Seq of the next fragment started (fragments that
// came from elsewhere take the numbers before it). It has no effect once a
// fragment was started.
func (b *Builder) SetNextSeq(seq uint64) {
	if b.cur == nil && b.seq == 0 {
		b.seq = seq
	}
}

// NextSeq is the Seq the next fragment started will have.
func (b *Builder) NextSeq() uint64 { return b.seq }

// Current returns the open fragment, or nil.
func (b *Builder) Current() *Fragment { return b.cur }

// AddTags queues fragment metadata to be written before the next Cluster.
func (b *Builder) AddTags(tags ...mkv.SimpleTag) { b.pending = append(b.pending, tags...) }

// SetPersistentTags replaces the metadata written before every fragment.
func (b *Builder) SetPersistentTags(tags []mkv.SimpleTag) {
	b.persistent = append(b.persistent[:0], tags...)
}

// PendingTags is how many tags the next fragment will carry.
func (b *Builder) PendingTags() int { return len(b.pending) + len(b.persistent) }

// Add appends f. It returns the fragment f went into and, when f started a
// new fragment, the one it closed (nil otherwise). Frames before the first
// key frame cannot be decoded and are skipped (cur == nil).
func (b *Builder) Add(f Frame) (cur, closed *Fragment, err error) {
	if len(f.Data) > MaxFrameSize {
		return nil, nil, fmt.Errorf("%w: %d bytes at pts %v (limit %d)", ErrFrameTooBig, len(f.Data), f.PTS, MaxFrameSize)
	}
	if f.PTS < 0 {
		return nil, nil, fmt.Errorf("fragment: negative timestamp %v", f.PTS)
	}
	f.Track = b.track(f)
	if f.Track > MaxTrack || (b.cfg.Sealer != nil && f.Track == b.cfg.KeyTrack) {
		return nil, nil, fmt.Errorf("fragment: frame on track %d (media tracks are 1..%d, the key track excluded)", f.Track, MaxTrack)
	}
	tc := uint64(f.PTS / b.cfg.TimecodeScale)
	if b.cur == nil && (!b.cuts(f) || !b.CanOpen(f)) {
		// Nothing open (the start, or after Flush): a fragment can only
		// start at a key frame of the cut track, after every frame before.
		b.skipped++
		return nil, nil, nil
	}
	b.started = true
	if b.cur == nil || b.cutBefore(f, tc) {
		var key []byte
		if b.cfg.Sealer != nil {
			if key, err = b.cfg.Sealer.StartFragment(tc); err != nil {
				return nil, nil, fmt.Errorf("fragment: starting the fragment at pts %v: %w", f.PTS, err)
			}
		}
		closed = b.closeCurrent()
		b.open(f, tc, key)
	}
	c := b.cur
	ctc := c.Timecode
	if tc < ctc && ctc-tc > 32768 {
		return nil, nil, fmt.Errorf("%w: pts %v is %v before the fragment start %v", ErrBackwards, f.PTS, c.Start-f.PTS, c.Start)
	}
	rel := int64(tc) - int64(ctc)
	flags := byte(0)
	if f.Keyframe {
		flags = mkv.FlagKeyframe
	}
	if b.cfg.Sealer == nil {
		c.Data = mkv.AppendSimpleBlock(c.Data, f.Track, int16(rel), flags, f.Data)
	} else {
		at := len(c.Data)
		// Room for the sealed frame, grown as append grows (by a share
		// of what is there): a sealer that appends like cipher.AEAD.Seal
		// allocates exactly what it needs when the room is short, which
		// would copy the whole fragment again for every frame once the
		// fragment outgrew its buffer.
		c.Data = slices.Grow(c.Data, mkv.SimpleBlockHeaderLen+len(f.Data)+SealSlack)
		c.Data = mkv.AppendSimpleBlockHeader(c.Data, f.Track, int16(rel), flags, 0)
		sealed, err := b.cfg.Sealer.AppendSealed(c.Data, f.Track, f.Keyframe, tc, f.Data)
		if err != nil {
			c.Data = c.Data[:at]
			return nil, closed, fmt.Errorf("fragment: sealing the frame at pts %v: %w", f.PTS, err)
		}
		c.Data = sealed
		mkv.SetSimpleBlockPayloadSize(c.Data[at:], len(c.Data)-at-mkv.SimpleBlockHeaderLen)
	}
	c.Frames++
	c.Tracks[f.Track]++
	if f.PTS < c.Least {
		c.Least = f.PTS
	}
	if f.PTS > c.Last {
		c.Last = f.PTS
	}
	if tc > b.lastTC {
		b.lastTC = tc
	}
	return c, closed, nil
}

// cutBefore decides whether f starts a new fragment.
func (b *Builder) cutBefore(f Frame, tc uint64) bool {
	c := b.cur
	// A new cluster's timecode must be strictly greater than every frame
	// timecode already sent, or the service answers 4004: keep the frame in
	// the current fragment rather than cut there.
	monotonic := tc > b.lastTC
	// The service measures a fragment from its least to its greatest frame
	// timecode.
	span := max(f.PTS, c.Last) - min(f.PTS, c.Least)
	if tc-c.Timecode > 32767 && tc > c.Timecode || span >= b.cfg.MaxDuration {
		return monotonic
	}
	if !b.cuts(f) || !monotonic {
		return false
	}
	for _, t := range c.want {
		if c.Tracks[t] == 0 {
			return false // the fragment would lack a declared track (4011)
		}
	}
	if b.layout.KeyFrameFragmentation {
		return true
	}
	return span >= b.cfg.FragmentDuration
}

func (b *Builder) open(f Frame, tc uint64, key []byte) {
	c := &Fragment{Seq: b.seq, Timecode: tc, Start: f.PTS, Last: f.PTS, Least: f.PTS, Keyframe: b.cuts(f), Forced: !b.cuts(f), want: b.layout.Tracks}
	b.seq++
	// Size the buffer from the previous fragment so that frames are copied
	// into it once and it rarely grows (growing would copy it again).
	size := b.lastSize + b.lastSize/4 + 2*len(f.Data)
	if size < 64<<10 {
		size = 64 << 10
	}
	// A recycled buffer will do if it holds a fragment like the last one
	// with some room to spare.
	c.Data = b.buffer(b.lastSize+b.lastSize/8+len(f.Data), size)
	if len(b.pending)+len(b.persistent) > 0 {
		c.Data = mkv.AppendTags(c.Data, append(append([]mkv.SimpleTag(nil), b.persistent...), b.pending...))
		b.pending = b.pending[:0]
	}
	c.Data = mkv.AppendClusterStart(c.Data, tc)
	if b.cfg.Sealer != nil {
		c.Data = mkv.AppendSimpleBlock(c.Data, b.cfg.KeyTrack, 0, mkv.FlagKeyframe, key)
	}
	b.cur = c
}

func (b *Builder) closeCurrent() *Fragment {
	c := b.cur
	if c != nil {
		b.lastSize = len(c.Data)
		c.Closed = true
		b.cur = nil
	}
	return c
}

// Recycle hands back the buffer of a fragment nobody uses any more (it
// was acknowledged or dropped, and is no longer being written): the next
// fragments reuse it instead of allocating, zeroing and faulting in fresh
// memory for every fragment, up to Config.RecycleBytes of buffers. f must
// not be used after Recycle.
func (b *Builder) Recycle(f *Fragment) {
	if f == nil || f == b.cur || cap(f.Data) < 64<<10 || b.freeSize+cap(f.Data) > b.cfg.RecycleBytes {
		return
	}
	b.free = append(b.free, f.Data[:0])
	b.freeSize += cap(f.Data)
	f.Data = nil
}

// buffer returns an empty buffer: the most recently recycled one of at
// least need bytes (its memory is the likeliest to be in cache), else a
// new one of size bytes.
func (b *Builder) buffer(need, size int) []byte {
	for i := len(b.free) - 1; i >= 0; i-- {
		if buf := b.free[i]; cap(buf) >= need {
			copy(b.free[i:], b.free[i+1:])
			b.free[len(b.free)-1] = nil
			b.free = b.free[:len(b.free)-1]
			b.freeSize -= cap(buf)
			return buf
		}
	}
	if len(b.free) > 0 {
		// None fits (the fragments grew): let the oldest go, so buffers
		// too small to be used again do not hold the budget.
		b.freeSize -= cap(b.free[0])
		b.free[0] = nil
		b.free = b.free[1:]
	}
	return make([]byte, 0, size)
}

// Flush closes the open fragment and returns it (nil if none).
func (b *Builder) Flush() *Fragment { return b.closeCurrent() }

// EndOfFragmentTags returns the Tags element that marks the end of a
// fragment (and of the stream at EOS).
func EndOfFragmentTags() []byte {
	return mkv.AppendTags(nil, []mkv.SimpleTag{{Name: mkv.TagEndOfFragment}})
}
