package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/kvsgo/kvsgo/pkg/fragment"
)

// The content store is s.entries: fragments in order, from the oldest not
// yet finally acknowledged to the one being built. Its two limits are
// Config.StorageSize (bytes) and Config.BufferDuration (stream time from the
// first frame of the oldest fragment to the newest frame). A fragment leaves
// it when the service acknowledged it (PERSISTED, or RECEIVED without
// retention), when a non-retriable ERROR skipped it, or when Realtime and
// NearRealtime drop it to make room.

// fullLocked reports whether the store has no room for n more bytes, and
// which limit is reached. The fragment being built never counts as
// droppable room: a store holding only it is never full (it could not
// drain otherwise).
func (s *Sink) fullLocked(n int64) (bool, string) {
	if len(s.entries) == 0 || !s.entries[0].frag.Closed {
		return false, ""
	}
	if s.stored+n > s.cfg.StorageSize {
		return true, "storage-size"
	}
	if s.memoryFullLocked(n) { // disk.go
		return true, reasonMemory
	}
	// buffer-duration counts stream time, but a source faster than real
	// time (a file) covers minutes of stream in seconds: the limit is
	// reached only when the oldest fragment has also waited that long.
	if s.metrics.FramePTS-s.entries[0].frag.Start > s.cfg.BufferDuration &&
		s.cfg.Clock.Now().Sub(s.entries[0].putAt) > s.cfg.BufferDuration {
		return true, "buffer-duration"
	}
	return false, ""
}

// makeRoomLocked returns once a frame of n bytes fits: at once if the store
// has room; else after dropping the oldest droppable fragments (Realtime,
// NearRealtime); else after acknowledgements freed space. It returns
// ctx.Err() when ctx is done first, and the terminal error if the stream
// failed meanwhile.
func (s *Sink) makeRoomLocked(ctx context.Context, n int64) error {
	for {
		full, reason := s.fullLocked(n)
		var ahead time.Duration
		if !full {
			if ahead = s.aheadLocked(); ahead <= 0 {
				return nil
			}
		} else if s.cfg.StreamingType != Offline && s.dropOldestLocked(reason) {
			continue
		}
		ch := s.changedLocked()
		var tick <-chan time.Time
		if ahead > 0 { // the source may fall back to real time meanwhile
			tick = s.cfg.Clock.After(ahead)
			s.windowWaits++ // the writer grows the window if the link idles (upload.go)
		}
		s.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-tick:
		case <-ctx.Done():
			err = ctx.Err()
		}
		s.mu.Lock()
		if ahead > 0 {
			s.windowWaits--
		}
		if err != nil {
			return err
		}
		if s.err != nil {
			return s.err
		}
		if s.closed {
			return ErrClosed
		}
	}
}

// Offline input that runs ahead of real time (a file, a transcode) waits
// for the service once the store's closed fragments in memory exceed the
// window (s.window, from Config.OfflineWindow): the source loses nothing by
// waiting, and the store's memory stays near the window instead of growing
// to StorageSize with the acknowledgement lag (and the pages it touches
// are recycled ones). The window must not be what limits the upload: when
// the writer has sent everything and idles for windowStarve while a Put
// waits for the window, the acknowledgements take longer than the window
// lasts on this link, and the writer doubles it (up to StorageSize). A
// live source never waits for it: it fills the store up to StorageSize as
// before, and only then waits, as offline does.
//
// aheadLocked reports how long Put must wait for the window: 0 when the
// frame may go in, else how far the stored stream runs ahead of the wall
// clock (beyond aheadMargin), after which it is to be asked again. The
// fragment being built never counts, so acknowledgements can always free
// the window: its first Cluster is what lets the service complete the
// fragments before it.
func (s *Sink) aheadLocked() time.Duration {
	if s.cfg.StreamingType != Offline || len(s.entries) < 2 || s.entries[len(s.entries)-1].frag.Closed {
		return 0
	}
	open := s.entries[len(s.entries)-1]
	if s.stored-s.spilledBytes-int64(open.size()) <= s.window {
		return 0
	}
	for _, e := range s.entries { // the source's pace: recovered fragments are an earlier run's
		if !e.recovered {
			ahead := (s.metrics.FramePTS - e.frag.Start) - s.cfg.Clock.Now().Sub(e.putAt) - aheadMargin
			return max(ahead, 0)
		}
	}
	return 0
}

// windowStarve is how long the upload may idle, with a Put waiting for
// the offline window, before the window doubles: longer than loopback's
// or a LAN's acknowledgement delay, far shorter than a fragment.
const windowStarve = 20 * time.Millisecond

// growWindowLocked doubles the offline window, up to StorageSize, when a
// Put still waits for it; the writer calls it after idling windowStarve.
func (s *Sink) growWindowLocked() {
	if s.windowWaits == 0 || s.window >= s.cfg.StorageSize {
		return
	}
	s.window = min(2*s.window, s.cfg.StorageSize)
	s.log.Debug("offline window grown: acknowledgements take longer than it lasted", "window", s.window)
	s.wakeLocked()
}

// aheadMargin is how far stored stream time must run ahead of the wall
// clock before the offline window applies: more than a live source's
// bursts (an encoder's or a queue's latency).
const aheadMargin = 2 * time.Second

// dropOldestLocked removes the oldest closed fragment that the writer is
// not in the middle of. It reports false when there is none.
func (s *Sink) dropOldestLocked(reason string) bool {
	for i, e := range s.entries {
		if !e.frag.Closed {
			return false
		}
		if e == s.inflight || (reason == reasonMemory && e.spilled > 0) {
			continue
		}
		s.removeLocked(i, reason, fmt.Sprintf("the store is full (%s)", reason))
		return true
	}
	return false
}

// removeLocked takes entry i out of the store. Unless the service already
// received it, its frames are counted as dropped and reported.
func (s *Sink) removeLocked(i int, reason, why string) {
	e := s.entries[i]
	s.entries = append(s.entries[:i], s.entries[i+1:]...)
	s.stored -= int64(e.size())
	s.journalDoneLocked(e)
	if s.stored < 0 || len(s.entries) == 0 {
		s.stored = 0
	}
	s.wakeLocked()
	defer s.builder.Recycle(e.frag) // never the fragment being written (inflight)
	if e.state >= stateReceived || e.state == stateFailed {
		return
	}
	s.metrics.FramesDropped += uint64(e.frag.Frames)
	d := Dropped{Frames: e.frag.Frames, Fragments: 1, From: e.frag.Start, To: e.frag.Last, Reason: reason}
	d.VideoFrames, d.AudioFrames = s.framesByKind(e.frag)
	// Consecutive drops of one burst become one report.
	if k := len(s.queued) - 1; k >= 0 && s.queued[k].Kind == EventDropped && s.queued[k].Dropped.Reason == reason && s.queued[k].Dropped.To < d.From {
		q := &s.queued[k]
		q.Dropped.Frames += d.Frames
		q.Dropped.VideoFrames += d.VideoFrames
		q.Dropped.AudioFrames += d.AudioFrames
		q.Dropped.Fragments++
		q.Dropped.To = d.To
		q.FragmentTimecode = e.frag.Timecode
		return
	}
	s.queue(Event{Kind: EventDropped, Dropped: d, FragmentTimecode: e.frag.Timecode, Message: why})
}

// queue records an event to emit once the lock is released.
func (s *Sink) queue(e Event) {
	if e.At.IsZero() {
		e.At = s.cfg.Clock.Now()
	}
	s.queued = append(s.queued, e)
}

// unlockAndFlush releases s.mu, then emits the queued events: OnEvent never
// runs under the lock, so it may call back into the Sink.
func (s *Sink) unlockAndFlush() {
	q := s.queued
	s.queued = nil
	s.mu.Unlock()
	for _, e := range q {
		s.emit(e)
	}
}

// Metrics returns the stream's running totals.
func (s *Sink) Metrics() Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metricsLocked()
}

func (s *Sink) metricsLocked() Metrics {
	m := s.metrics
	m.StoreBytes, m.StoreSize, m.BufferDuration = s.stored, s.cfg.StorageSize, s.cfg.BufferDuration
	m.StoreMemory = s.stored - s.spilledBytes
	if s.cfg.StreamingType == Offline {
		m.StoreWindow = min(s.window, s.cfg.StorageSize)
	}
	if s.journal != nil {
		m.DiskWritten = s.journal.Stats().Written
	}
	if len(s.entries) > 0 {
		m.StoreDuration = m.FramePTS - s.entries[0].frag.Start
	}
	if t := s.oldestUnreceivedLocked(); !t.IsZero() {
		m.Latency = s.cfg.Clock.Now().Sub(t)
	}
	m.SendLatencyP50, m.SendLatencyP99 = s.latency.percentiles()
	return m
}

// metricsLoop emits an EventMetrics every MetricsInterval until ctx ends.
func (s *Sink) metricsLoop(ctx context.Context) {
	for {
		select {
		case <-s.cfg.Clock.After(s.cfg.MetricsInterval):
			s.emit(Event{Kind: EventMetrics, Metrics: s.Metrics()})
		case <-ctx.Done():
			return
		}
	}
}

// framesByKind splits a fragment's frames into video and audio.
func (s *Sink) framesByKind(f *fragment.Fragment) (video, audio int) {
	if s.av != nil {
		return f.Tracks[videoTrackNumber], f.Tracks[audioTrackNumber]
	}
	if s.track != nil && !s.track.video {
		return 0, f.Frames
	}
	return f.Frames, 0
}
