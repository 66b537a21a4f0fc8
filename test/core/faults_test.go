package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/sink"
	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// Fault-injection tests: the endpoint misbehaves through its fault hooks and
// each test checks what the endpoint stored. Durations are scaled down: the
// official capture's 300 frames are replayed five times faster (ten 200 ms
// fragments), outages last about a second. scripts/soak runs the same
// tests at full length (KVSGO_SOAK=1).

// soak is true under scripts/soak: real-time frames, longer outages.
var soak = os.Getenv("KVSGO_SOAK") != ""

// timeScale divides the capture's timestamps (5: 2 s of stream; 1 under
// soak: 10 s, repeated).
func timeScale() time.Duration {
	if soak {
		return 1
	}
	return 5
}

// scaled returns the capture's frames with timestamps divided by
// timeScale, repeated rounds times with increasing timestamps.
func scaled(t *testing.T, rounds int) ([]byte, []frame) {
	cpd, frames := officialFrames(t)
	span := frames[len(frames)-1].pts + 33*time.Millisecond
	var out []frame
	for r := range rounds {
		for _, f := range frames {
			out = append(out, frame{(f.pts + time.Duration(r)*span) / timeScale(), f.key, f.data})
		}
	}
	return cpd, out
}

// events collects a sink's events.
type events struct {
	mu  sync.Mutex
	all []sink.Event
	on  func(sink.Event) // called for each event (must not block)
}

func (e *events) add(ev sink.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	on := e.on
	e.mu.Unlock()
	if on != nil {
		on(ev)
	}
}

func (e *events) of(k sink.EventKind) []sink.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []sink.Event
	for _, ev := range e.all {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// faultEndpoint is a restartable local endpoint on a fixed address.
type faultEndpoint struct {
	t     *testing.T
	dir   string
	addr  string
	url   string
	mu    sync.Mutex
	srv   *kvslocal.Server
	creds []kvslocal.Credential
}

func newFaultEndpoint(t *testing.T, f kvslocal.Faults) *faultEndpoint {
	fe := &faultEndpoint{t: t, dir: t.TempDir(), creds: []kvslocal.Credential{{AccessKeyID: accessKey, SecretAccessKey: secretKey}}}
	fe.start("127.0.0.1:0", f)
	t.Cleanup(func() { fe.server().Close() })
	return fe
}

func (fe *faultEndpoint) start(addr string, f kvslocal.Faults) {
	fe.t.Helper()
	srv, err := kvslocal.New(kvslocal.Config{Dir: fe.dir, Credentials: fe.creds, Faults: f, IdleAckInterval: time.Second})
	if err != nil {
		fe.t.Fatal(err)
	}
	var url string
	for i := 0; ; i++ { // the old listener's port may take a moment to free
		if url, err = srv.Start(addr); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		fe.t.Fatal(err)
	}
	fe.mu.Lock()
	fe.srv, fe.url, fe.addr = srv, url, url[len("http://"):]
	fe.mu.Unlock()
}

func (fe *faultEndpoint) server() *kvslocal.Server {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return fe.srv
}

// restart closes the endpoint (every connection dropped), waits down, and
// serves again on the same address and storage.
func (fe *faultEndpoint) restart(down time.Duration, f kvslocal.Faults) {
	fe.server().Close()
	time.Sleep(down)
	fe.start(fe.addr, f)
}

// pacedPut puts frames at their own pace (timestamps as wall time), so that
// outages happen mid-stream.
func pacedPut(t *testing.T, s *sink.Sink, fs []frame) {
	t.Helper()
	start := time.Now()
	base := fs[0].pts
	for _, f := range fs {
		if d := f.pts - base - time.Since(start); d > 0 {
			time.Sleep(d)
		}
		if err := s.Put(context.Background(), sink.Frame{PTS: f.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: f.key, Data: f.data}); err != nil {
			t.Fatal(err)
		}
	}
}

// stored summarises what the endpoint holds for a stream: distinct
// fragments, their frames, duplicates, and whether first arrivals are in
// timecode order.
type storedSummary struct {
	distinct, frames, total, dups int
	allFrames                     int // frames of all total fragments, duplicates included
	inOrder                       bool
	timecodes                     map[uint64]int // frames per distinct fragment
}

func summarise(t testing.TB, srv *kvslocal.Server, stream string) storedSummary {
	t.Helper()
	frags, err := srv.Fragments(stream)
	if err != nil {
		t.Fatal(err)
	}
	s := storedSummary{inOrder: true, timecodes: map[uint64]int{}, total: len(frags)}
	var last uint64
	for _, f := range frags {
		s.allFrames += f.Frames
		if _, ok := s.timecodes[f.Timecode]; ok {
			s.dups++
			continue
		}
		if f.Timecode < last {
			s.inOrder = false
		}
		last = f.Timecode
		s.timecodes[f.Timecode] = f.Frames
		s.distinct++
		s.frames += f.Frames
	}
	return s
}

// putThroughOutage puts frames at their own pace while the endpoint is
// restarted to refuse every connection during the middle third, then
// finishes the stream.
func putThroughOutage(t *testing.T, s *sink.Sink, fe *faultEndpoint, frames []frame) {
	t.Helper()
	third := len(frames) / 3
	pacedPut(t, s, frames[:third])
	fe.restart(0, kvslocal.Faults{Refuse: true})
	pacedPut(t, s, frames[third:2*third])
	fe.server().SetFaults(kvslocal.Faults{})
	pacedPut(t, s, frames[2*third:])
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func faultConfig(url, stream string, ev *events) sink.Config {
	cfg := config(url, stream)
	cfg.OnEvent = ev.add
	cfg.ConnectionTimeout = time.Second
	cfg.CompletionTimeout = 2 * time.Second
	return cfg
}

// The endpoint is killed and restarted three times during a stream: every
// frame arrives, fragments in order, at most one duplicate per fault.
func TestFaultEndpointRestarts(t *testing.T) {
	rounds := 2
	if soak {
		rounds = 6
	}
	cpd, frames := scaled(t, rounds)
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	ev := &events{}
	s := startSink(t, faultConfig(fe.url, "restarts", ev), cpd)
	const faults = 3
	n := len(frames) / (faults + 1)
	for i := range faults {
		pacedPut(t, s, frames[i*n:(i+1)*n])
		fe.restart(300*time.Millisecond*time.Duration(6/timeScale()), kvslocal.Faults{})
	}
	pacedPut(t, s, frames[faults*n:])
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	sum := summarise(t, fe.server(), "restarts")
	if sum.frames != len(frames) || !sum.inOrder || sum.dups > faults {
		t.Fatalf("stored %d of %d frames in %d fragments (%d duplicates, in order %v)", sum.frames, len(frames), sum.total, sum.dups, sum.inOrder)
	}
	if len(ev.of(sink.EventConnectionLost)) == 0 || len(ev.of(sink.EventDropped)) != 0 {
		t.Fatalf("%d connection-lost and %d dropped events", len(ev.of(sink.EventConnectionLost)), len(ev.of(sink.EventDropped)))
	}
	t.Logf("%d fragments stored, %d duplicates, %d connections", sum.total, sum.dups, s.Metrics().Connections)
}

// An outage where the endpoint refuses every connection, shorter than the
// store covers: no frame is lost.
func TestFaultOutageWithinCapacity(t *testing.T) {
	cpd, frames := scaled(t, 2)
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	ev := &events{}
	s := startSink(t, faultConfig(fe.url, "outage", ev), cpd)
	putThroughOutage(t, s, fe, frames)
	sum := summarise(t, fe.server(), "outage")
	if sum.frames != len(frames) || len(ev.of(sink.EventDropped)) != 0 || !sum.inOrder {
		t.Fatalf("stored %d of %d frames, %d drop reports", sum.frames, len(frames), len(ev.of(sink.EventDropped)))
	}
}

// An outage longer than the store (realtime, small storage): the oldest
// fragments are dropped and reported; every frame not reported arrives.
func TestFaultOutageBeyondCapacity(t *testing.T) {
	cpd, frames := scaled(t, 3)
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	ev := &events{}
	cfg := faultConfig(fe.url, "overflow", ev)
	cfg.StorageSize = 600 << 10 // about three of these fragments
	s := startSink(t, cfg, cpd)
	putThroughOutage(t, s, fe, frames)
	sum := summarise(t, fe.server(), "overflow")
	drops := ev.of(sink.EventDropped)
	reported := 0
	inDropped := func(tc uint64) bool {
		for _, d := range drops {
			if tc >= uint64(d.Dropped.From/time.Millisecond) && tc <= uint64(d.Dropped.To/time.Millisecond) {
				return true
			}
		}
		return false
	}
	for _, d := range drops {
		reported += d.Dropped.Frames
		if !strings.Contains(d.Message, "store is full") || d.Dropped.Reason != "storage-size" {
			t.Fatalf("drop report %q %+v", d.Message, d.Dropped)
		}
	}
	if reported == 0 {
		t.Fatal("nothing dropped: the outage did not exceed the store")
	}
	// Fragments that reached the endpoint just before the outage and whose
	// acknowledgement was lost with the connection may be both stored and
	// reported: at most one per fault.
	both := 0
	for tc, n := range sum.timecodes {
		if inDropped(tc) {
			both++
			reported -= n
		}
	}
	if sum.frames+reported != len(frames) || both > 1 {
		t.Fatalf("stored %d + reported-and-missing %d frames, want %d (%d fragments both stored and reported)", sum.frames, reported, len(frames), both)
	}
	if m := s.Metrics(); m.FramesDropped == 0 {
		t.Fatalf("metrics: %+v", m)
	}
	t.Logf("%d frames stored, %d reported dropped in %d reports", sum.frames, reported, len(drops))
}

// ERROR acks: 4000 and 5000 are retried (every frame stored), 4006 skips
// the fragment and reports it; the stream goes on, and ends with an error
// naming the fragment lost (loss is never silent).
func TestFaultErrorAcks(t *testing.T) {
	for _, c := range []struct {
		id        int
		retriable bool
	}{{4000, true}, {5000, true}, {4006, false}} {
		t.Run(fmt.Sprint(c.id), func(t *testing.T) {
			cpd, frames := scaled(t, 1)
			fe := newFaultEndpoint(t, kvslocal.Faults{ErrorAck: kvslocal.ErrorAck{ID: c.id, Fragment: 2}})
			ev := &events{}
			ev.on = func(e sink.Event) {
				if e.Kind == sink.EventStreamError {
					fe.server().SetFaults(kvslocal.Faults{})
				}
			}
			stream := fmt.Sprintf("errack%d", c.id)
			s := startSink(t, faultConfig(fe.url, stream, ev), cpd)
			pacedPut(t, s, frames)
			err := s.Finish(context.Background())
			var re *sink.RefusedError
			switch {
			case c.retriable && err != nil:
				t.Fatal(err)
			case !c.retriable && (!errors.As(err, &re) || re.Run || re.ErrorID != c.id || re.Fragments != 1 || re.Frames != 30):
				t.Fatalf("Finish after a refused fragment: %v", err)
			}
			errs := ev.of(sink.EventStreamError)
			if len(errs) != 1 || errs[0].ErrorID != c.id || errs[0].Retriable != c.retriable || errs[0].ErrorName == "" {
				t.Fatalf("stream errors %+v", errs)
			}
			sum := summarise(t, fe.server(), stream)
			want := len(frames)
			if !c.retriable {
				want -= 30 // the skipped fragment
			}
			if sum.frames != want || !sum.inOrder {
				t.Fatalf("stored %d frames, want %d", sum.frames, want)
			}
		})
	}
}

// Acknowledgements delayed by 100 ms (three per fragment, so the stream ends late): nothing is resent, nothing lost.
func TestFaultDelayedAcks(t *testing.T) {
	cpd, frames := scaled(t, 1)
	fe := newFaultEndpoint(t, kvslocal.Faults{AckDelay: 100 * time.Millisecond})
	ev := &events{}
	s := startSink(t, faultConfig(fe.url, "slowacks", ev), cpd)
	pacedPut(t, s, frames)
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	sum := summarise(t, fe.server(), "slowacks")
	if sum.frames != len(frames) || sum.dups != 0 || len(ev.of(sink.EventConnectionLost)) != 0 {
		t.Fatalf("stored %d frames, %d duplicates, %d reconnects", sum.frames, sum.dups, len(ev.of(sink.EventConnectionLost)))
	}
}

// A connection whose BUFFERING acks stop coming is reset after
// connection-staleness and the stream resumes on a new one.
func TestFaultStaleConnection(t *testing.T) {
	cpd, frames := scaled(t, 1)
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	ev := &events{}
	ev.on = func(e sink.Event) {
		if e.Kind == sink.EventConnectionLost {
			fe.server().SetFaults(kvslocal.Faults{})
		}
	}
	cfg := faultConfig(fe.url, "stale", ev)
	cfg.ConnectionStaleness = 500 * time.Millisecond
	s := startSink(t, cfg, cpd)
	half := len(frames) / 2
	pacedPut(t, s, frames[:half])
	fe.server().SetFaults(kvslocal.Faults{AckDelay: 5 * time.Second})
	pacedPut(t, s, frames[half:])
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	lost := ev.of(sink.EventConnectionLost)
	if len(lost) == 0 || !strings.Contains(lost[0].Message, "connection-staleness") {
		t.Fatalf("connection-lost events %+v", lost)
	}
	if sum := summarise(t, fe.server(), "stale"); sum.frames != len(frames) {
		t.Fatalf("stored %d of %d frames", sum.frames, len(frames))
	}
}

// EOS while the endpoint is down: Finish waits stop-stream-timeout, then
// fails naming the fragments that were not persisted.
func TestFaultEOSDuringOutage(t *testing.T) {
	cpd, frames := scaled(t, 1)
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	ev := &events{}
	cfg := faultConfig(fe.url, "eosoutage", ev)
	cfg.StopStreamTimeout = 1500 * time.Millisecond
	s := startSink(t, cfg, cpd)
	pacedPut(t, s, frames[:150])
	fe.server().Close()
	put(t, s, frames[150:])
	start := time.Now()
	err := s.Finish(context.Background())
	took := time.Since(start)
	if !errors.Is(err, sink.ErrStopTimeout) || !strings.Contains(err.Error(), "not acknowledged PERSISTED, timecodes") {
		t.Fatalf("Finish = %v", err)
	}
	if took < cfg.StopStreamTimeout || took > cfg.StopStreamTimeout+time.Second {
		t.Fatalf("Finish took %v, want about %v", took, cfg.StopStreamTimeout)
	}
	t.Logf("Finish: %v", err)
}

// Connections are rotated at fragment boundaries without losing or
// duplicating anything.
func TestConnectionRotation(t *testing.T) {
	cpd, frames := scaled(t, 2)
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	ev := &events{}
	cfg := faultConfig(fe.url, "rotate", ev)
	cfg.MaxConnectionDuration = 700 * time.Millisecond
	s := startSink(t, cfg, cpd)
	pacedPut(t, s, frames)
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	sum := summarise(t, fe.server(), "rotate")
	if sum.frames != len(frames) || sum.dups != 0 || !sum.inOrder {
		t.Fatalf("stored %d of %d frames, %d duplicates", sum.frames, len(frames), sum.dups)
	}
	if c := s.Metrics().Connections; c < 3 || len(ev.of(sink.EventConnectionLost)) != 0 {
		t.Fatalf("%d connections, %d lost", c, len(ev.of(sink.EventConnectionLost)))
	}
}
