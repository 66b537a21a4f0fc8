// Package sink is the producer core of kvssink: frames in, fragments out to
// Kinesis Video Streams. It owns the control-plane start-up, fragment
// building, the content store of fragments awaiting acknowledgement, the
// PutMedia sessions (one owner goroutine each, with replay after a
// reconnect) and the bounded wait for the last acknowledgement at end of
// stream.
//
// It is pure Go: it must not import GStreamer or glib, nor use cgo.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kvsgo/kvsgo/pkg/fragment"
	"github.com/kvsgo/kvsgo/pkg/journal"
	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// Errors.
var (
	ErrNotStarted = errors.New("sink: not started")
	ErrClosed     = errors.New("sink: closed")
	ErrNoFormat   = errors.New("sink: a frame arrived before the media format (caps)")
	// ErrStopTimeout is wrapped when the last acknowledgement did not arrive
	// within the stop-stream timeout.
	ErrStopTimeout = errors.New("sink: timed out waiting for the last fragment acknowledgement")
)

// ackState is how far the service has acknowledged a fragment.
type ackState int

const (
	stateNone ackState = iota
	stateBuffering
	stateReceived
	statePersisted
	stateFailed // non-retriable ERROR ack: never resent
)

// header is one EBML header + Segment head + Info + Tracks. A PutMedia
// session sends exactly one; fragments that need another header go in a new
// session.
type header struct {
	bytes []byte
}

// entry is one fragment in the content store.
type entry struct {
	frag  *fragment.Fragment
	hdr   *header
	state ackState
	sent  bool      // completely written on some session
	tried bool      // written (at least partly) on some session
	putAt time.Time // when its first frame was put (latency)
	// marks: where each frame not yet written ends, and when it reached
	// the producer (latency.go); marked of them are written.
	marks  []frameMark
	marked int

	// The disk journal (disk.go): the fragment's id there, how many of
	// its bytes were appended, whether it was started and closed there,
	// and whether it came back from an earlier run.
	jid                                     uint64
	journaled                               int
	jstarted, jclosed, recovered, jreceived bool
	// spilled is the length of the fragment's bytes when they were
	// dropped from memory (they are read back from spilledTo when the
	// fragment is sent); 0 while they are in memory.
	spilled   int
	spilledTo *journal.Journal
}

// Sink streams one track to one Kinesis video stream.
type Sink struct {
	cfg Config
	log *slog.Logger
	ctl *kvs.Control

	mu            sync.Mutex
	changed       chan struct{} // closed on the next state change; nil while nobody waits (changedLocked)
	latency       latencyLog    // frame-to-socket (latency.go)
	spareMarks    [][]frameMark // marks slices for the next fragments (latency.go)
	edge          *edge         // the writer's live edge, nil when none (edge.go)
	received      time.Time     // when the frame being added reached the producer (Put)
	track         *track        // single-track stream
	av            *avState      // audio and video stream (Config.AV)
	hdr           *header
	builder       *fragment.Builder
	entries       []*entry
	stored        int64
	started       bool // first frame seen
	firstPTS      time.Duration
	lastPTS       time.Duration // buffer time of the last frame (any track)
	producerStart time.Time
	eos           bool // Finish called
	closed        bool // Close called
	eofrSent      bool
	err           error // terminal
	conv          []byte
	skipWarned    bool
	longGOPWarned bool
	segmentUID    [16]byte
	persistent    map[string]string // persistent fragment metadata
	sealer        *sealer           // end-to-end encryption, or nil

	window           int64  // the offline window (store.go)
	windowWaits      int    // Puts waiting for it
	inflight         *entry // the entry the writer is in the middle of (never dropped)
	acked            uint64 // fragments received by the service: progress of a session
	metrics          Metrics
	queued           []Event // emitted by unlockAndFlush, outside the lock
	endpointAt       time.Time
	endpointStale    bool
	lastLatencyReset time.Time
	// rotatedFrom is the expiry of the credentials whose connection was
	// last rotated before they expire: the next connection must be signed
	// with a later set, and is not rotated for this one again.
	rotatedFrom time.Time

	journal                             *journal.Journal // Config.StoragePath; nil without one or after it failed
	journalFullWarned, journalLagWarned bool
	spilledBytes                        int64    // bytes of s.stored not in memory (disk.go)
	refused                             refusals // fragments lost to non-retriable refusals (refused.go)

	dataEndpoint string
	runCtx       context.Context
	cancel       context.CancelFunc
	done         chan struct{} // closed when the owner goroutine exits
	closeOnce    sync.Once
}

// New validates cfg, fills its defaults and returns an idle Sink.
func New(cfg Config) (*Sink, error) {
	cfg = cfg.withDefaults()
	if err := kvs.ValidateStreamName(cfg.StreamName); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSettings, err)
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("%w: no credentials (Config.Open resolves CredentialSources)", ErrSettings)
	}
	if cfg.E2EE == nil && cfg.E2EEKeys != nil { // never plaintext for want of Open
		e, err := cfg.E2EEKeys.load()
		if err != nil {
			return nil, err
		}
		cfg.E2EE = e
	}
	if cfg.FileStartTime.IsZero() {
		cfg.FileStartTime = cfg.Clock.Now()
	}
	if cfg.Net == nil { // Config.Open builds it; a caller that skips Open gets it here
		n, err := cfg.newNet()
		if err != nil {
			return nil, err
		}
		cfg.Net = n
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = cfg.Net.HTTP()
	}
	s := &Sink{cfg: cfg, log: cfg.Logger.With("stream", cfg.StreamName), done: make(chan struct{}), window: cfg.OfflineWindow}
	if cfg.AV {
		s.av = newAVState(cfg)
	}
	if cfg.E2EE != nil {
		var err error
		if s.sealer, err = newSealer(cfg, s.queue); err != nil {
			return nil, err
		}
	}
	b, err := fragment.NewBuilder(s.fragmentConfig(cfg.KeyFrameFragmentation))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSettings, err)
	}
	s.builder = b
	if _, err := randRead(s.segmentUID[:]); err != nil {
		return nil, err
	}
	return s, nil
}

// Start resolves the stream (DescribeStream, CreateStream when allowed,
// TagStream) and the PutMedia data endpoint, each call bounded by the
// connection and completion timeouts, then starts the upload goroutine.
func (s *Sink) Start(ctx context.Context) error {
	ctl, err := kvs.NewControl(kvs.ControlConfig{
		Endpoint: s.cfg.Endpoint, Region: s.cfg.Region, Credentials: s.cfg.Credentials,
		HTTPClient: s.cfg.HTTPClient, UserAgent: s.cfg.UserAgent,
		ConnectTimeout: s.cfg.ConnectionTimeout, CallTimeout: s.cfg.CompletionTimeout,
	})
	if err != nil {
		return err
	}
	s.ctl = ctl
	bound := s.cfg.ConnectionTimeout + s.cfg.CompletionTimeout
	cctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	info, err := ctl.EnsureStream(cctx, kvs.CreateStreamInput{
		Name: s.cfg.StreamName, DeviceName: s.cfg.DeviceName, MediaType: s.mediaTypeGuess(),
		RetentionHours: s.cfg.RetentionHours, Tags: s.cfg.StreamTags,
	}, s.cfg.AllowCreateStream)
	if err != nil {
		return s.startErr("stream "+s.cfg.StreamName, err, bound)
	}
	if info.RetentionHours == 0 && s.cfg.FragmentAcks {
		s.log.Info("stream has no retention: waiting for RECEIVED instead of PERSISTED acks")
	}
	s.cfg.RetentionHours = info.RetentionHours
	if len(s.cfg.StreamTags) > 0 {
		if err := ctl.TagStream(cctx, info.ARN, s.cfg.StreamTags); err != nil {
			s.emit(Event{Kind: EventWarning, Message: fmt.Sprintf("TagStream failed (the stream keeps going): %v", err)})
		}
	}
	ep, err := ctl.GetDataEndpoint(cctx, s.cfg.StreamName, "PUT_MEDIA")
	if err != nil {
		return s.startErr("GetDataEndpoint", err, bound)
	}
	s.dataEndpoint, s.endpointAt = ep, s.cfg.Clock.Now()
	if s.cfg.StoragePath != "" {
		rep, err := s.openJournal()
		if err != nil {
			return err
		}
		if rep != nil {
			s.reportRecovered(rep)
		}
	}
	s.log.Info("stream ready", "arn", info.ARN, "data_endpoint", ep, "control_plane", s.cfg.Endpoint, "endpoint_source", s.cfg.EndpointSource, "credentials", s.cfg.CredSource)
	s.runCtx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	if s.cfg.MetricsInterval > 0 {
		go s.metricsLoop(s.runCtx)
	}
	return nil
}

func (s *Sink) startErr(what string, err error, bound time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer from %s within %v (connection-timeout + completion-timeout): %w", what, s.cfg.Endpoint, bound, err)
	}
	if kvs.IsTLSError(err) {
		return fmt.Errorf("%s: %w (if the endpoint's certificate comes from a private CA, give its PEM file or directory in ca-cert-path or %s)", what, err, CACertEnv)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (s *Sink) mediaTypeGuess() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.MediaType != "" {
		return s.cfg.MediaType
	}
	if s.av != nil {
		if ct := s.av.contentType(); ct != "" {
			return ct
		}
	}
	if s.track != nil {
		return s.track.mediaType
	}
	return "video/h264"
}

// SetFormat sets (or changes) the track's media format from caps. A change
// of CodecPrivate starts a new fragment, sent on a new PutMedia session with
// the new track header.
func (s *Sink) SetFormat(f Format) error {
	t, err := trackFor(f, s.cfg.CodecID, s.cfg.TrackName)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.unlockAndFlush()
	if s.av != nil {
		return s.setFormatAVLocked(t)
	}
	if s.track != nil && s.track.annexB && t.annexB {
		return nil // parameter sets come in-band
	}
	s.track = t
	s.hdr = nil
	if !t.needCPD {
		s.newHeaderLocked()
	}
	return nil
}

func (s *Sink) newHeaderLocked() {
	if s.builder.Current() != nil {
		s.closeFragmentLocked(s.builder.Flush())
	}
	h := &mkv.Header{SegmentUID: s.segmentUID, TimecodeScale: uint64(s.cfg.TimecodeScale), Title: "kvsgo",
		MuxingApp: "kvsgo", WritingApp: "kvsgo " + s.cfg.UserAgent, Tracks: []mkv.Track{s.track.entry}}
	if s.sealer != nil {
		h.Tracks = append(h.Tracks, s.sealer.keyTrack())
	}
	if !s.track.video {
		s.builder = mustBuilder(s.fragmentConfig(false), s.builder)
	}
	s.hdr = &header{bytes: mkv.AppendHeader(nil, h)}
	if s.sealer != nil {
		s.sealer.setHead(s.hdr.bytes)
	}
}

// fragmentConfig is the fragmentation policy, with the sealer when the
// stream is encrypted.
func (s *Sink) fragmentConfig(keyFrames bool) fragment.Config {
	c := fragment.Config{TimecodeScale: s.cfg.TimecodeScale, KeyFrameFragmentation: keyFrames, FragmentDuration: s.cfg.FragmentDuration,
		// Acknowledged fragments' memory is reused for new ones, up to a
		// quarter of the store: enough for the fragments in flight at
		// full speed, never more than the store may hold anyway.
		RecycleBytes: int(max(s.cfg.StorageSize/4, 1<<20))}
	if s.sealer != nil {
		c.Sealer, c.KeyTrack = s.sealer, s.sealer.track
	}
	return c
}

// mustBuilder swaps the policy for audio-only streams (every frame is a key
// frame, so fragments are cut by duration as the official element does).
func mustBuilder(cfg fragment.Config, old *fragment.Builder) *fragment.Builder {
	if old != nil && old.Current() == nil && old.Config().KeyFrameFragmentation == cfg.KeyFrameFragmentation {
		return old
	}
	b, err := fragment.NewBuilder(cfg)
	if err != nil {
		return old
	}
	if old != nil {
		b.SetNextSeq(old.NextSeq()) // fragments keep numbers no entry has
	}
	return b
}

// Put adds one frame. It blocks while the store is full (backpressure) until
// space frees up or ctx is cancelled; cancellation returns ctx.Err().
//
// The store holds fragments until the service acknowledged them. When it is
// full (StorageSize bytes, or BufferDuration of stream), Offline blocks as
// above; Realtime and NearRealtime drop the oldest fragment not being sent,
// reporting the frames lost (EventDropped), and block only while nothing
// can be dropped (every stored fragment is in flight or still open).
func (s *Sink) Put(ctx context.Context, f Frame) error {
	s.mu.Lock()
	err := s.putLocked(ctx, f)
	ed, chunk := s.takeEdgeLocked()
	s.unlockAndFlush()
	if ed != nil {
		s.writeEdge(ed, chunk) // edge.go: live frames go out from here
	}
	return err
}

func (s *Sink) putLocked(ctx context.Context, f Frame) error {
	if s.err != nil {
		return s.err
	}
	if s.runCtx == nil {
		return ErrNotStarted
	}
	if s.eos || s.closed {
		return ErrClosed
	}
	if s.av != nil {
		return s.putAVLocked(ctx, f)
	}
	if s.track == nil {
		return ErrNoFormat
	}
	if err := s.makeRoomLocked(ctx, int64(len(f.Data))+16); err != nil {
		return err
	}
	key := f.Keyframe || !s.track.video
	data, cpd, err := s.track.convert(s.conv, f.Data, key)
	if err != nil {
		return fmt.Errorf("frame at pts %v: %w", f.PTS, err)
	}
	if s.track.annexB {
		s.conv = data[:0]
	}
	if cpd != nil && key {
		s.track.setCodecPrivate(cpd)
		s.newHeaderLocked()
	}
	if s.hdr == nil {
		s.warnSkipLocked(f.PTS)
		return nil
	}
	ts, err := s.timestampLocked(f, s.track)
	if err != nil {
		return err
	}
	s.received = f.Received
	if s.received.IsZero() {
		s.received = s.cfg.Clock.Now()
	}
	defer func() { s.received = time.Time{} }()
	return s.addLocked(fragment.Frame{PTS: ts, Keyframe: key, Data: data})
}

// addLocked puts a frame, converted and timed, in its fragment.
func (s *Sink) addLocked(f fragment.Frame) error {
	cur, closed, err := s.builder.Add(f)
	if closed != nil {
		s.closeFragmentLocked(closed) // even when f itself failed
	}
	if err != nil {
		return err
	}
	if cur == nil {
		if s.av == nil {
			s.warnSkipLocked(f.PTS)
		}
		return nil
	}
	if len(s.entries) == 0 || s.entries[len(s.entries)-1].frag != cur {
		s.entries = append(s.entries, &entry{frag: cur, hdr: s.hdr, putAt: s.cfg.Clock.Now()})
		if cur.Forced && !s.longGOPWarned {
			s.longGOPWarned = true
			s.queue(Event{Kind: EventWarning, Message: fmt.Sprintf("GOP longer than the %v fragment limit: fragment %d starts on a non-key frame %v into the stream (and so will every fragment that would otherwise exceed the limit); no frame is dropped, but a player that starts reading at such a fragment decodes only from the next key frame. Set the encoder's key-frame interval (x264enc key-int-max, for example) to under 10 s of frames", fragment.MaxServiceDuration, cur.Seq, (s.lastPTS - s.firstPTS).Round(time.Millisecond))})
		}
	}
	s.stored += int64(len(f.Data)) + 16
	s.metrics.FramesPut++
	s.metrics.FramePTS = max(s.metrics.FramePTS, f.PTS)
	if f.Keyframe && (f.Track == 0 || f.Track == s.builder.Layout().CutTrack) && s.cfg.MetricsOnKeyFrame {
		s.queue(Event{Kind: EventMetrics, Metrics: s.metricsLocked(), KeyFrame: true})
	}
	if !s.edgeTakesLocked(cur) { // else its Put writes it (edge.go)
		s.wakeLocked()
	}
	if last := s.entries[len(s.entries)-1]; last.frag == cur {
		s.markLocked(last, s.received)
		s.journalLocked(last) // the frame is on its way to disk before Put returns
	}
	return nil
}

func (s *Sink) warnSkipLocked(pts time.Duration) {
	s.metrics.FramesSkipped++
	if !s.skipWarned {
		s.skipWarned = true
		s.queue(Event{Kind: EventWarning, Message: fmt.Sprintf("dropping frames before the first key frame (first at pts %v): they cannot be decoded", pts)})
	}
}

// timestampLocked maps a buffer timestamp to the stream time base: epoch
// time for absolute fragment times, time since the first frame otherwise.
func (s *Sink) timestampLocked(f Frame, t *track) (time.Duration, error) {
	pts := f.PTS
	if pts == NoTime && t.order != nil && s.cfg.FrameTimecodes {
		var warning string
		pts, warning = t.order.present(f)
		if warning != "" {
			s.queue(Event{Kind: EventWarning, Message: warning})
		}
	}
	if pts == NoTime {
		pts = f.DTS
	}
	if pts == NoTime {
		if !s.started {
			pts = 0
		} else {
			// No timestamp at all (filesrc ! h264parse): one frame
			// duration after the previous frame, from the buffer's
			// duration or the caps' framerate.
			d := f.Duration
			if d == NoTime || d <= 0 {
				d = t.frameDuration
			}
			if d <= 0 {
				d = s.cfg.TimecodeScale
			}
			pts = t.lastPTS + d
		}
	}
	if !s.started {
		s.started, s.firstPTS = true, pts
		s.producerStart = s.cfg.Clock.Now()
	}
	t.lastPTS, s.lastPTS = pts, pts
	var abs time.Duration
	switch {
	case s.cfg.StreamingType == Offline:
		// The file starts at file-start-time: its first frame lands there,
		// whatever the demuxer's PTS origin.
		abs = time.Duration(s.cfg.FileStartTime.UnixNano()) + (pts - s.firstPTS)
	case !s.cfg.FrameTimecodes:
		abs = time.Duration(s.cfg.Clock.Now().UnixNano())
	case s.cfg.UseOriginalPTS:
		abs = pts
	default:
		abs = time.Duration(s.producerStart.UnixNano()) + (pts - s.firstPTS)
	}
	if s.cfg.StreamingType != Offline && !s.cfg.AbsoluteFragmentTimes {
		abs -= time.Duration(s.producerStart.UnixNano())
	}
	if abs < 0 {
		return 0, fmt.Errorf("frame at pts %v maps to a negative stream time %v", f.PTS, abs)
	}
	return abs, nil
}

func (s *Sink) closeFragmentLocked(f *fragment.Fragment) {
	if f == nil {
		return
	}
	f.Closed = true
	for i := len(s.entries) - 1; i >= 0; i-- {
		if s.entries[i].frag == f {
			s.journalLocked(s.entries[i])
			break
		}
	}
	s.wakeLocked()
}

// changedLocked returns a channel closed at the next state change.
func (s *Sink) changedLocked() <-chan struct{} {
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// wakeLocked tells every waiter that the state changed. A change nobody
// waits for (most frames) costs nothing.
func (s *Sink) wakeLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

func (s *Sink) emit(e Event) {
	if e.At.IsZero() {
		e.At = s.cfg.Clock.Now()
	}
	level := slog.LevelDebug
	switch e.Kind {
	case EventWarning, EventStreamError, EventConnectionLost:
		level = slog.LevelWarn
	}
	if s.log.Enabled(context.Background(), level) { // Event.String formats: not for nothing
		s.log.Log(context.Background(), level, e.String())
	}
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(e)
	}
}

// Finish ends the stream: it closes the last fragment, sends the
// end-of-fragment tag and waits for the last acknowledgement (PERSISTED, or
// RECEIVED when the stream has no retention; none when fragment acks are
// off), bounded by the stop-stream timeout and ctx.
func (s *Sink) Finish(ctx context.Context) error {
	s.mu.Lock()
	if s.runCtx == nil {
		s.mu.Unlock()
		return ErrNotStarted
	}
	if !s.eos {
		if s.av != nil {
			if err := s.drainAVLocked(true); err != nil {
				s.log.Warn("placing the last frames", "error", err)
			}
		}
		s.eos = true
		if f := s.builder.Flush(); f != nil {
			s.closeFragmentLocked(f)
		}
		s.wakeLocked()
	}
	s.mu.Unlock()
	timeout := s.cfg.StopStreamTimeout
	select {
	case <-s.done:
		return s.Err()
	case <-s.cfg.Clock.After(timeout):
		s.mu.Lock()
		pending := s.pendingLocked()
		s.mu.Unlock()
		s.Close()
		return fmt.Errorf("%w after %v (stop-stream-timeout): %s", ErrStopTimeout, timeout, pending)
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// pendingLocked describes the fragments not yet finally acknowledged.
func (s *Sink) pendingLocked() string {
	var n int
	var first, last *fragment.Fragment
	for _, e := range s.entries {
		if !s.finalLocked(e) {
			n++
			if first == nil {
				first = e.frag
			}
			last = e.frag
		}
	}
	if n == 0 {
		if !s.eofrSent {
			return "the end-of-stream tag was not sent"
		}
		return "the service did not end the response"
	}
	return fmt.Sprintf("%d fragment(s) not acknowledged %s, timecodes %d..%d", n, s.finalAck(), first.Timecode, last.Timecode)
}

func (s *Sink) finalAck() string {
	switch {
	case !s.cfg.FragmentAcks:
		return "(acks off: not sent)"
	case s.cfg.RetentionHours == 0:
		return "RECEIVED"
	}
	return "PERSISTED"
}

// finalLocked reports whether an entry needs nothing more from the service.
func (s *Sink) finalLocked(e *entry) bool {
	switch {
	case e.state == stateFailed:
		return true
	case !s.cfg.FragmentAcks:
		return e.sent
	case s.cfg.RetentionHours == 0:
		return e.state >= stateReceived
	}
	return e.state >= statePersisted
}

// Err returns the terminal error of the upload, if any.
func (s *Sink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close aborts any upload and releases resources. It is idempotent.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
		s.closeJournal()
		// Wake a Put or Finish still waiting for room or acks.
		s.mu.Lock()
		s.closed = true
		s.wakeLocked()
		s.mu.Unlock()
	})
	return nil
}

func (s *Sink) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	s.wakeLocked()
}
