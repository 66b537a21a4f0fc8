package sink

import (
	"errors"
	"fmt"
	"time"

	"github.com/kvsgo/kvsgo/pkg/codec/h264"
	"github.com/kvsgo/kvsgo/pkg/codec/h265"
)

// presenter derives presentation times for H.264 and H.265 frames that
// arrive without one: an elementary stream read from a file
// (filesrc ! h264parse) carries decoding times at most, and with B-frames
// those are not the order in which frames are shown. The picture order
// count in each frame's first slice header says where the frame is shown
// relative to the last IDR (or IRAP) picture; with a constant frame rate
// that is a time:
//
//	PTS = anchor DTS + (POC - anchor POC) × time per count + reorder delay
//
// where the anchor is the last picture that reset the count (every picture
// before it in decoding order is shown before it). The time per count is a
// frame for H.265 and half a frame for H.264, whose counts step by two per
// frame (one per field). The reorder delay, the SPS's reorder depth in
// frames, is the composition offset mp4mux and ffmpeg apply: it keeps every
// PTS at or after its DTS. A stream without reordering keeps PTS = DTS.
//
// A frame whose slice header cannot be read keeps its DTS (plus the delay
// once the stream is anchored, so that it stays in the same time line), with
// one warning per cause.
type presenter struct {
	hevc    bool
	nalLen  int // AVCC/hvcC NAL length size; 0 for Annex-B
	avc     h264.PictureOrder
	hevcPOC h265.PictureOrder
	nals    [][]byte

	// frame is the frame duration of the caps (0 if unknown: then a
	// buffer's own duration); fpsNum/fpsDen the caps' framerate, which
	// times counts exactly (0 if unknown).
	frame          time.Duration
	fpsNum, fpsDen int64
	// countsPerFrame is 2 for H.264 (one count per field) and 1 for H.265,
	// set at the first anchor.
	countsPerFrame int64
	delay          time.Duration

	anchored  bool
	anchorDTS time.Duration
	anchorPOC int64
	// floor is the PTS of the first anchor. A stream cut in the middle of
	// an open GOP starts with a picture that does not reset the count,
	// followed by leading pictures that reference what was cut off: no
	// decoder shows them, and they must not go before the stream's start.
	floor time.Duration
	// skipped counts those leading pictures: each took a decoding slot
	// and no presentation slot, so later pictures are shown that much
	// closer to their decoding times.
	skipped int64
	lastDTS time.Duration // for frames without a DTS either
	seen    bool
	warned  map[string]bool
}

// newPresenter returns a presenter for a track, loaded with the parameter
// sets of the caps' codec_data (when the stream format has one). A
// codec_data it cannot read leaves it without them: frames then keep their
// decoding times, with a warning, as they would without it.
func newPresenter(hevc bool, f Format, frame time.Duration) *presenter {
	p := &presenter{hevc: hevc, frame: frame}
	if f.FramerateNum > 0 && f.FramerateDen > 0 && f.FramerateNum < 1<<20 && f.FramerateDen < 1<<20 {
		p.fpsNum, p.fpsDen = int64(f.FramerateNum), int64(f.FramerateDen)
	}
	if f.StreamFormat == "byte-stream" {
		return p
	}
	p.nalLen = 4
	if hevc {
		if size, nals, err := h265.ParseConfig(f.CodecData); err == nil {
			p.nalLen = size
			for _, n := range nals {
				p.hevcPOC.AddParameterSet(n) // one it cannot read is reported when a slice needs it
			}
		}
		return p
	}
	if cfg, err := h264.ParseConfig(f.CodecData); err == nil {
		p.nalLen = cfg.NALLengthSize
		for _, n := range append(append([][]byte(nil), cfg.SPS...), cfg.PPS...) {
			p.avc.AddParameterSet(n)
		}
	}
	return p
}

// present returns the presentation time of a frame that has no PTS, from
// its DTS (or, without one either, one frame after the last) and its
// picture order count. It returns NoTime when it cannot tell (no DTS and no
// frame duration); warning is set the first time a cause appears.
func (p *presenter) present(f Frame) (pts time.Duration, warning string) {
	frame := p.frame
	if frame <= 0 && f.Duration > 0 {
		frame = f.Duration
	}
	dts := f.DTS
	if dts == NoTime {
		switch {
		case !p.seen:
			dts = 0
		case frame > 0:
			dts = p.lastDTS + frame
		default:
			return NoTime, p.warn("notime", "buffers carry neither timestamps nor a duration and the caps no framerate, so frames cannot be timed: give the parser a framerate in caps (for example filesrc ! video/x-h264,framerate=30/1 ! h264parse)")
		}
	}
	p.seen, p.lastDTS = true, dts
	shifted := dts
	if p.anchored {
		shifted += p.delay
	}
	pic, err := p.order(f.Data)
	if err != nil {
		return shifted, p.warn(errKey(err), fmt.Sprintf("frame at dts %v: cannot read its picture order count (%v): it keeps its decoding time as presentation time, which is out of order if the stream has B-frames", dts, err))
	}
	depth := pic.depth
	if depth == 0 && !p.anchored {
		return dts, "" // no reordering: PTS = DTS
	}
	if frame <= 0 {
		return shifted, p.warn("noframe", "buffers without PTS and with B-frames, but neither the caps nor the buffers give a frame duration: presentation times cannot be derived from picture order counts and frames keep their decoding times")
	}
	if depth < 0 {
		depth = 16 // not declared: the largest a decoder may need
	}
	if !p.anchored || pic.reset {
		if !p.anchored {
			p.countsPerFrame = int64(pic.countsPerFrame)
		}
		if d := p.countsToTime(int64(depth)*p.countsPerFrame, frame); d > p.delay {
			p.delay = d
		}
		if !p.anchored {
			p.floor = dts + p.delay
		}
		p.anchored, p.anchorDTS, p.anchorPOC = true, dts, pic.poc
	}
	rel := pic.poc - p.anchorPOC
	if rel > 1<<31 || rel < -(1<<31) {
		return shifted, p.warn("range", fmt.Sprintf("frame at dts %v: picture order count %d is %d from the last IDR picture's, too far to be a time: it keeps its decoding time", dts, pic.poc, rel))
	}
	if pic.stepCheck && p.countsPerFrame == 2 && rel%2 != 0 {
		// A stream of frames whose counts (type 0: chosen by the encoder)
		// differ by an odd number steps by one count per frame, as
		// ffmpeg's VA-API encoder does. Frames timed before this one, at
		// most the reorder depth, keep their times.
		p.countsPerFrame = 1
		warning = p.warn("pocstep", "H.264 picture order counts step by one per frame (most encoders step by two): presentation times follow one count per frame from here")
	}
	pts = p.anchorDTS + p.countsToTime(rel, frame) + p.delay
	if pts < p.floor {
		p.skipped++
		return p.floor, warning // a leading picture no decoder shows
	}
	// h264parse sums whole-nanosecond durations: allow for its rounding.
	if pts+time.Duration(p.skipped)*frame < dts-time.Millisecond {
		if w := p.warn("early", fmt.Sprintf("frame at dts %v: its picture order count puts it at pts %v, before its decoding time: the stream reorders deeper than its SPS declares", dts, pts)); w != "" {
			warning = w
		}
	}
	return pts, warning
}

// countsToTime is the time of n picture order counts: exact from the caps'
// framerate, else from the frame duration.
func (p *presenter) countsToTime(n int64, frame time.Duration) time.Duration {
	if p.fpsNum == 0 {
		return time.Duration(n) * frame / time.Duration(p.countsPerFrame)
	}
	// n × den / (num × countsPerFrame) seconds, in parts that cannot
	// overflow (num and den are under 2^20).
	div := p.fpsNum * p.countsPerFrame
	q, r := n/div, n%div
	return time.Duration(q*p.fpsDen)*time.Second + time.Duration(r*p.fpsDen*int64(time.Second)/div)
}

// picture is the order of one access unit, for either codec.
type picture struct {
	poc   int64
	reset bool
	// depth is the reorder depth in frames (-1 when the SPS does not say).
	depth int
	// countsPerFrame is 2 for H.264 (one count per field), 1 for H.265.
	countsPerFrame int
	// stepCheck is set for H.264 frames of a stream of frames only with
	// picture order count type 0: their counts step by an even number from
	// the anchor when they step by two per frame.
	stepCheck bool
}

// order reads the picture order count of one access unit.
func (p *presenter) order(au []byte) (picture, error) {
	p.nals = p.nals[:0]
	defer clear(p.nals) // the frame's bytes are borrowed
	collect := func(nal []byte) error { p.nals = append(p.nals, nal); return nil }
	var err error
	if p.nalLen == 0 {
		err = h264.SplitAnnexB(au, collect)
	} else {
		err = h264.SplitAVCC(au, p.nalLen, collect)
	}
	if err != nil {
		return picture{}, err
	}
	if p.hevc {
		pic, err := p.hevcPOC.AccessUnit(p.nals)
		if err != nil {
			return picture{}, err
		}
		return picture{poc: pic.POC, reset: pic.Reset, depth: pic.MaxNumReorderPics, countsPerFrame: 1}, nil
	}
	pic, err := p.avc.AccessUnit(p.nals)
	if err != nil {
		return picture{}, err
	}
	depth := pic.MaxNumReorderFrames
	if pic.POCType == 2 {
		depth = 0 // output order is decoding order
	}
	return picture{poc: pic.POC, reset: pic.Reset, depth: depth, countsPerFrame: 2, stepCheck: pic.FrameMbsOnly && pic.POCType == 0}, nil
}

// warn returns msg the first time key is seen.
func (p *presenter) warn(key, msg string) string {
	if p.warned[key] {
		return ""
	}
	if p.warned == nil {
		p.warned = map[string]bool{}
	}
	if len(p.warned) < 32 {
		p.warned[key] = true
	}
	return msg
}

// errKey groups errors by the sentinel they wrap.
func errKey(err error) string {
	for _, s := range []error{h264.ErrNoParameterSets, h264.ErrBadSlice, h264.ErrBadPPS, h264.ErrBadSPS, h264.ErrNoSlice, h264.ErrTruncatedNAL, h264.ErrNoStartCode,
		h265.ErrNoParameterSets, h265.ErrBadSlice, h265.ErrBadPPS, h265.ErrBadSPS, h265.ErrNoSlice} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "other"
}
