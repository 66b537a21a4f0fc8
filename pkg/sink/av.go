package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kvsgo/kvsgo/pkg/fragment"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// maxOrderStepBack is how far a track's timestamps may step back and the
// frame still be kept in arrival order (its own timestamp unchanged); a
// larger step back drops the frame with a warning.
const maxOrderStepBack = time.Second

// DefaultStallTimeout is the default Config.StallTimeout.
const DefaultStallTimeout = 3 * time.Second

// Matroska track numbers of an audio and video stream, as the official
// element gives them.
const (
	videoTrackNumber = 1
	audioTrackNumber = 2
	avKeyTrackNumber = 3 // the E2EE key track after both media tracks
)

// avState is the audio and video side of a Sink (Config.AV). Frames of both
// tracks go through an Interleaver that orders them by time; each frame
// that leaves it is placed in a fragment by placeLocked, which also chooses
// the tracks the segment header declares (the layout): both while both
// deliver, one alone while the other has stalled or ended (a fragment that
// lacked a declared track would be rejected with 4011), switching only
// where a fragment starts: at a video key frame, or at any audio frame
// when there is no video to cut at. A layout change starts a new PutMedia
// session with its own header.
type avState struct {
	tracks [3]*track // by TrackKind
	iv     *fragment.Interleaver
	dirty  bool // a track's format changed: a new header at the next cut
	layout []uint64
	paused bool // no track can deliver: nothing stalls (SetPlaying)
}

func newAVState(cfg Config) *avState {
	return &avState{iv: fragment.NewInterleaver(cfg.TimecodeScale, cfg.StallTimeout, videoTrackNumber, audioTrackNumber)}
}

func (a *avState) byNumber(n uint64) *track {
	switch n {
	case videoTrackNumber:
		return a.tracks[TrackVideo]
	case audioTrackNumber:
		return a.tracks[TrackAudio]
	}
	return nil
}

func numberOf(k TrackKind) uint64 {
	if k == TrackAudio {
		return audioTrackNumber
	}
	return videoTrackNumber
}

// setFormatAVLocked installs or changes one track's format.
func (s *Sink) setFormatAVLocked(t *track) error {
	a := s.av
	if t.kind == TrackAny {
		return formatErr("unknown track kind")
	}
	n := numberOf(t.kind)
	t.entry.Number, t.entry.UID = n, n
	old := a.tracks[t.kind]
	if old != nil && old.annexB && t.annexB {
		return nil // parameter sets come in-band
	}
	if old != nil {
		if old.entry.CodecID == t.entry.CodecID && string(old.entry.CodecPrivate) == string(t.entry.CodecPrivate) &&
			old.entry.SamplingFrequency == t.entry.SamplingFrequency && old.entry.Channels == t.entry.Channels {
			return nil // the same format again
		}
		t.lastPTS, t.untimedWarned = old.lastPTS, old.untimedWarned
		s.queue(Event{Kind: EventWarning, Track: t.kind, Message: fmt.Sprintf("the %s format changed mid-stream (%s): it applies from the next fragment, sent under a new header", t.kind, t.entry.CodecID)})
	}
	a.tracks[t.kind] = t
	a.dirty = true
	return nil
}

// putAVLocked converts a frame, queues it in the interleaver and places
// every frame that may leave.
func (s *Sink) putAVLocked(ctx context.Context, f Frame) error {
	a := s.av
	if f.Kind != TrackVideo && f.Kind != TrackAudio {
		return fmt.Errorf("%w: a frame without its track kind in an audio and video stream", ErrFormat)
	}
	t := a.tracks[f.Kind]
	if t == nil {
		return fmt.Errorf("%w (%s track)", ErrNoFormat, f.Kind)
	}
	if err := s.makeRoomLocked(ctx, int64(len(f.Data))+16); err != nil {
		return err
	}
	key := f.Keyframe || !t.video
	data, cpd, err := t.convert(s.conv, f.Data, key)
	if err != nil {
		return fmt.Errorf("%s frame at pts %v: %w", f.Kind, f.PTS, err)
	}
	if t.annexB {
		s.conv = data[:0]
	}
	if cpd != nil && key {
		t.setCodecPrivate(cpd)
		a.dirty = true
	}
	if f.PTS == NoTime && f.DTS == NoTime {
		d := f.Duration
		if d == NoTime || d <= 0 {
			d = t.frameDuration
		}
		if !s.started || d <= 0 {
			// Nothing to time it from: it cannot be placed against the
			// other track.
			if !t.untimedWarned {
				t.untimedWarned = true
				s.queue(Event{Kind: EventWarning, Track: f.Kind, Message: fmt.Sprintf("%s buffers without timestamps or duration: dropped (they cannot be interleaved with the other track)", f.Kind)})
			}
			return nil
		}
		if !t.untimedWarned {
			t.untimedWarned = true
			s.queue(Event{Kind: EventWarning, Track: f.Kind, Message: fmt.Sprintf("%s buffers without timestamps: each is timed one duration (%v) after the previous one", f.Kind, d)})
		}
	}
	ts, err := s.timestampLocked(f, t)
	if err != nil {
		return err
	}
	// The order time is the decoding time, except at a video key frame:
	// there it is the presentation time, so that audio up to the key
	// frame's PTS goes in the fragment before it (the cluster timecode) and
	// none lands before the cluster it starts; the frames decoded after it
	// keep its order time until their own passes it (below).
	order := ts
	if f.PTS != NoTime && f.DTS != NoTime && f.DTS <= f.PTS && !(key && t.video) {
		order = ts - (f.PTS - f.DTS)
	}
	// Frames arrive in decode order: a small step back of the order time
	// (a DTS clamped at the segment start, jitter) keeps the frame in
	// place; a real jump back is refused by the interleaver.
	if t.orderSeen && order < t.lastOrder && t.lastOrder-order <= maxOrderStepBack {
		order = t.lastOrder
	}
	t.lastOrder, t.orderSeen = order, true
	err = a.iv.Push(fragment.Frame{PTS: ts, Keyframe: key, Track: numberOf(f.Kind), Data: data}, order, s.cfg.Clock.Now())
	switch {
	case errors.Is(err, fragment.ErrOrder), errors.Is(err, fragment.ErrLate):
		if !t.backWarned {
			t.backWarned = true
			s.queue(Event{Kind: EventWarning, Track: f.Kind, Message: fmt.Sprintf("%s frame at pts %v dropped: %v (further such frames are dropped without a warning)", f.Kind, f.PTS, err)})
		}
		return nil
	case err != nil:
		return err
	}
	if err := s.drainAVLocked(false); err != nil {
		return err
	}
	// Backpressure: a track that runs more than StallTimeout of stream
	// ahead of the other (a fast source, a slow encoder on the other
	// branch) waits for it, or for it to be declared stalled.
	for a.iv.Ahead(numberOf(f.Kind)) > s.cfg.StallTimeout {
		var timer <-chan time.Time
		if at, ok := a.iv.StallAt(); ok && !a.paused {
			timer = s.cfg.Clock.After(max(at.Sub(s.cfg.Clock.Now()), time.Millisecond))
		}
		ch := s.changedLocked()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer:
		case <-ctx.Done():
			s.mu.Lock()
			return ctx.Err()
		}
		s.mu.Lock()
		switch {
		case s.err != nil:
			return s.err
		case s.closed || s.eos:
			return ErrClosed
		}
		if err := s.drainAVLocked(false); err != nil {
			return err
		}
	}
	return nil
}

// SetPlaying tells an audio and video stream whether its pads can deliver
// (PLAYING) or not (PAUSED): a track is never declared stalled while
// paused, and its silence counts from the resume.
func (s *Sink) SetPlaying(playing bool) {
	s.mu.Lock()
	defer s.unlockAndFlush()
	if s.av == nil {
		return
	}
	if playing && s.av.paused {
		s.av.iv.Touch(s.cfg.Clock.Now())
	}
	s.av.paused = !playing
	s.wakeLocked()
}

// drainAVLocked places every frame the interleaver lets go (all of them
// when all is set: end of stream).
func (s *Sink) drainAVLocked(all bool) error {
	a := s.av
	for {
		var q fragment.Queued
		var ok bool
		switch {
		case all:
			q, ok = a.iv.Drain()
		case a.paused:
			q, ok = a.iv.Pop(time.Time{})
		default:
			q, ok = a.iv.Pop(s.cfg.Clock.Now())
		}
		for _, n := range a.iv.Stalled() {
			k := TrackVideo
			if n == audioTrackNumber {
				k = TrackAudio
			}
			other := TrackAudio
			if k == TrackAudio {
				other = TrackVideo
			}
			s.queue(Event{Kind: EventWarning, Track: k, Message: fmt.Sprintf("the %s track stalled: nothing for %v while %s frames waited; the %s track goes on alone until it delivers again", k, s.cfg.StallTimeout, other, other)})
		}
		if !ok {
			return nil
		}
		if err := s.placeLocked(q.Frame, q.Order); err != nil {
			return err
		}
	}
}

// placeLocked adds one frame in order to the fragments, switching the
// layout where needed.
func (s *Sink) placeLocked(f fragment.Frame, order time.Duration) error {
	a := s.av
	lay := s.builder.Layout()
	in := s.hdr != nil && slices.Contains(a.layout, f.Track)
	preferred := uint64(audioTrackNumber)
	if v := a.tracks[TrackVideo]; v != nil && !v.needCPD && !a.iv.Ended(videoTrackNumber) {
		preferred = videoTrackNumber
	}
	// The current cut track still delivers (or has frames to come).
	cutLive := a.iv.Live(lay.CutTrack) || hasHead(a.iv, lay.CutTrack)
	switch {
	case f.Track == preferred && f.Keyframe && (s.hdr == nil || lay.CutTrack != preferred && preferred == videoTrackNumber) && s.builder.CanOpen(f):
		// The first fragment, or video back after audio went on alone.
		if err := s.relayoutLocked(f.Track, order); err != nil {
			return err
		}
	case f.Track != lay.CutTrack && !cutLive && (s.hdr == nil || in && s.trailedLocked(f)) && s.builder.CanOpen(f):
		// The cut track stalled, ended or never came: the other goes on
		// alone (after a while: a track that ends a little after the
		// other stays in the last fragment).
		if err := s.relayoutLocked(f.Track, order); err != nil {
			return err
		}
	case !in:
		// Not declared by the current header (before the first fragment,
		// or a track that stalled and comes back before the next cut).
		s.skippedAV(f)
		return nil
	case s.builder.WouldCut(f):
		if want := s.layoutFor(f.Track, order); a.dirty || !slices.Equal(want, a.layout) {
			if err := s.relayoutLocked(f.Track, order); err != nil {
				return err
			}
		}
	}
	return s.addLocked(f)
}

// trailLimit is how long the other track goes on in a fragment after its
// cut track stopped before the stream switches to that track alone: well
// under the 10 s a fragment may last.
const trailLimit = fragment.MaxServiceDuration / 2

// trailedLocked reports whether f lies trailLimit or more past the start
// of the open fragment (or none is open).
func (s *Sink) trailedLocked(f fragment.Frame) bool {
	c := s.builder.Current()
	return c == nil || f.PTS-c.Start >= trailLimit
}

func hasHead(iv *fragment.Interleaver, track uint64) bool {
	_, ok := iv.Head(track)
	return ok
}

func (s *Sink) skippedAV(f fragment.Frame) {
	s.metrics.FramesSkipped++
	if f.Track == videoTrackNumber && !s.skipWarned && s.hdr == nil {
		s.skipWarned = true
		s.queue(Event{Kind: EventWarning, Track: TrackVideo, Message: fmt.Sprintf("dropping video frames before the first key frame (first at %s): they cannot be decoded", s.describeTime(f.PTS))})
	}
}

// layoutFor is the tracks a fragment cut at a frame of track cut (order
// key at) declares: the cut track, and the other if it is live with a
// frame queued within the stall timeout (so the fragment will hold one).
func (s *Sink) layoutFor(cut uint64, at time.Duration) []uint64 {
	a := s.av
	out := []uint64{cut}
	for _, n := range []uint64{videoTrackNumber, audioTrackNumber} {
		if n == cut {
			continue
		}
		t := a.byNumber(n)
		if t == nil || t.needCPD || !a.iv.Live(n) && !hasHead(a.iv, n) {
			continue
		}
		if h, ok := a.iv.Head(n); ok && h-at < s.cfg.StallTimeout {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// relayoutLocked closes the open fragment and starts a new layout and
// header whose cut track is cut.
func (s *Sink) relayoutLocked(cut uint64, at time.Duration) error {
	a := s.av
	tracks := s.layoutFor(cut, at)
	kff := s.cfg.KeyFrameFragmentation && cut == videoTrackNumber
	if err := s.builder.SetLayout(fragment.Layout{CutTrack: cut, Tracks: tracks, KeyFrameFragmentation: kff}); err != nil {
		return err
	}
	if s.builder.Current() != nil {
		s.closeFragmentLocked(s.builder.Flush())
	}
	entries := make([]mkv.Track, 0, len(tracks)+1)
	names := make([]string, 0, len(tracks))
	for _, n := range tracks {
		t := a.byNumber(n)
		entries = append(entries, t.entry)
		names = append(names, t.kind.String())
	}
	if s.hdr != nil && !slices.Equal(tracks, a.layout) {
		s.queue(Event{Kind: EventTracks, Message: fmt.Sprintf("the stream goes on with %s from %s, under a new header (a new PutMedia session)", strings.Join(names, " and "), s.describeTime(at))})
	}
	s.hdr = s.headerFor(entries)
	a.layout, a.dirty = tracks, false
	return nil
}

// describeTime prints a stream time: a UTC date for absolute times, else
// the offset from the stream's start.
func (s *Sink) describeTime(ts time.Duration) string {
	if s.cfg.AbsoluteFragmentTimes || s.cfg.StreamingType == Offline {
		return time.Unix(0, int64(ts)).UTC().Format("15:04:05.000 UTC")
	}
	return "stream time " + ts.String()
}

// headerFor builds a segment header for the given media tracks (and the
// key track when encrypting).
func (s *Sink) headerFor(tracks []mkv.Track) *header {
	h := &mkv.Header{SegmentUID: s.segmentUID, TimecodeScale: uint64(s.cfg.TimecodeScale), Title: "kvsgo",
		MuxingApp: "kvsgo", WritingApp: "kvsgo " + s.cfg.UserAgent, Tracks: tracks}
	if s.sealer != nil {
		h.Tracks = append(h.Tracks, s.sealer.keyTrack())
	}
	hdr := &header{bytes: mkv.AppendHeader(nil, h)}
	if s.sealer != nil {
		s.sealer.setHead(hdr.bytes) // the next epoch's bundles sign this head
	}
	return hdr
}

// EndTrack ends one track of an audio and video stream (EOS on its pad):
// the other is no longer held back for it. In a single-track stream it
// does nothing (Finish ends the stream).
func (s *Sink) EndTrack(k TrackKind) error {
	s.mu.Lock()
	defer s.unlockAndFlush()
	if s.av == nil || s.eos || s.closed || s.err != nil {
		return nil
	}
	s.av.iv.End(numberOf(k))
	err := s.drainAVLocked(false)
	s.wakeLocked()
	return err
}

// contentType is the official element's content type of an audio and
// video stream: the media types joined by a comma, video first.
func (a *avState) contentType() string {
	var parts []string
	for _, k := range []TrackKind{TrackVideo, TrackAudio} {
		if t := a.tracks[k]; t != nil {
			parts = append(parts, t.mediaType)
		}
	}
	return strings.Join(parts, ",")
}
