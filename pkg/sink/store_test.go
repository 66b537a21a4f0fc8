package sink

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/clock"
)

// storeSink is a started-looking Sink without a network: AAC frames every
// 100 ms cut into 1 s fragments of ten 1000-byte frames.
func storeSink(t testing.TB, st StreamingType, storage int64, bufDur time.Duration) (*Sink, *[]Event) {
	s, evs, _ := storeSinkClock(t, st, storage, bufDur)
	return s, evs
}

func storeSinkClock(t testing.TB, st StreamingType, storage int64, bufDur time.Duration) (*Sink, *[]Event, *clock.Fake) {
	t.Helper()
	var mu sync.Mutex
	var evs []Event
	fc := clock.NewFake(time.Unix(1_800_000_000, 0))
	s, err := New(Config{StreamName: "s", Endpoint: "http://127.0.0.1:1", Region: "us-west-2", Credentials: nopCreds{},
		FrameTimecodes: true, AbsoluteFragmentTimes: true, FragmentDuration: time.Second, FragmentAcks: true,
		StreamingType: st, StorageSize: storage, BufferDuration: bufDur,
		Clock:   fc,
		OnEvent: func(e Event) { mu.Lock(); evs = append(evs, e); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	s.runCtx = context.Background()
	if err := s.SetFormat(Format{Codec: "aac", StreamFormat: "raw", CodecData: []byte{0x11, 0x90}, Rate: 48000, Channels: 2}); err != nil {
		t.Fatal(err)
	}
	return s, &evs, fc
}

func aacFrame(i int) Frame {
	return Frame{PTS: time.Duration(i) * 100 * time.Millisecond, DTS: NoTime, Duration: NoTime, Keyframe: true, Data: make([]byte, 1000)}
}

// Realtime: a full store drops the oldest fragments, never blocks, and
// every dropped frame is reported with its time range.
func TestRealtimeDropsOldestWhenFull(t *testing.T) {
	for _, c := range []struct {
		name    string
		storage int64
		bufDur  time.Duration
		reason  string
	}{
		{"storage-size", 35_000, time.Hour, "storage-size"},
		{"buffer-duration", 1 << 30, 3 * time.Second, "buffer-duration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, evs, fc := storeSinkClock(t, Realtime, c.storage, c.bufDur)
			for i := range 100 {
				fc.Advance(100 * time.Millisecond) // a live source
				if err := s.Put(context.Background(), aacFrame(i)); err != nil {
					t.Fatal(err)
				}
			}
			dropped := 0
			var last time.Duration = -1
			for _, e := range *evs {
				if e.Kind != EventDropped {
					continue
				}
				if e.Dropped.Reason != c.reason || e.Dropped.From <= last || e.Dropped.To < e.Dropped.From {
					t.Fatalf("drop report %+v", e.Dropped)
				}
				last = e.Dropped.To
				dropped += e.Dropped.Frames
			}
			kept := 0
			for _, e := range s.entries {
				kept += e.frag.Frames
			}
			m := s.Metrics()
			if dropped == 0 || dropped+kept != 100 || m.FramesDropped != uint64(dropped) || m.FramesPut != 100 {
				t.Fatalf("dropped %d (metrics %d) + kept %d frames, want 100 in all", dropped, m.FramesDropped, kept)
			}
			if s.stored > c.storage {
				t.Fatalf("store holds %d bytes, over %d", s.stored, c.storage)
			}
		})
	}
}

// Offline: a full store blocks Put (backpressure) until ctx ends; nothing
// is dropped.
func TestOfflineBlocksWhenFull(t *testing.T) {
	s, evs := storeSink(t, Offline, 35_000, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var err error
	n := 0
	for ; n < 100 && err == nil; n++ {
		err = s.Put(ctx, aacFrame(n))
	}
	if !errors.Is(err, context.DeadlineExceeded) || n >= 100 {
		t.Fatalf("Put returned %v after %d frames, want a block and the context's error", err, n)
	}
	for _, e := range *evs {
		if e.Kind == EventDropped {
			t.Fatalf("offline dropped frames: %+v", e.Dropped)
		}
	}
}

// A fragment acknowledged RECEIVED is not reported when it leaves a full
// realtime store: the service has it.
func TestRealtimeEvictsReceivedSilently(t *testing.T) {
	s, evs := storeSink(t, Realtime, 35_000, time.Hour)
	for i := range 100 {
		s.mu.Lock()
		for _, e := range s.entries {
			if e.frag.Closed {
				e.state = stateReceived
			}
		}
		s.mu.Unlock()
		if err := s.Put(context.Background(), aacFrame(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range *evs {
		if e.Kind == EventDropped {
			t.Fatalf("received fragments reported as dropped: %+v", e.Dropped)
		}
	}
}

// Close wakes a Put blocked on a full offline store.
func TestCloseWakesBlockedPut(t *testing.T) {
	s, _ := storeSink(t, Offline, 35_000, time.Hour)
	done := make(chan error, 1)
	go func() {
		var err error
		for i := 0; err == nil; i++ {
			err = s.Put(context.Background(), aacFrame(i))
		}
		done <- err
	}()
	for {
		s.mu.Lock()
		full, _ := s.fullLocked(1016)
		s.mu.Unlock()
		if full {
			break
		}
		time.Sleep(time.Millisecond)
	}
	s.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Put = %v, want ErrClosed", err)
	}
}

// A source faster than real time (a file) is not limited by
// buffer-duration, only by storage-size: nothing is dropped while the
// store has room.
func TestFastSourceNotLimitedByBufferDuration(t *testing.T) {
	s, evs := storeSink(t, Realtime, 1<<30, 3*time.Second)
	for i := range 100 { // 10 s of stream at once
		if err := s.Put(context.Background(), aacFrame(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range *evs {
		if e.Kind == EventDropped {
			t.Fatalf("dropped %+v", e.Dropped)
		}
	}
}

// putAll puts frames from..to-1 from a goroutine; the channel reports how
// many went in and Put's error when it returns.
func putAll(s *Sink, from, to int) (*int64, chan error) {
	var n int64
	done := make(chan error, 1)
	go func() {
		for i := from; i < to; i++ {
			if err := s.Put(context.Background(), aacFrame(i)); err != nil {
				done <- err
				return
			}
			s.mu.Lock()
			n++
			s.mu.Unlock()
		}
		done <- nil
	}()
	return &n, done
}

// waitBlocked waits until the goroutine of putAll stops making progress
// with the offline window closed, and returns how many frames it put.
func waitBlocked(t *testing.T, s *Sink, n *int64, done chan error) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("Put returned %v, want it blocked on the offline window", err)
		default:
		}
		s.mu.Lock()
		ahead, put := s.aheadLocked(), *n
		s.mu.Unlock()
		if ahead > 0 {
			time.Sleep(20 * time.Millisecond)
			s.mu.Lock()
			same := *n == put
			s.mu.Unlock()
			if same {
				return put
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("Put never blocked on the offline window")
	return 0
}

// ackOldest acknowledges the oldest stored fragment as the service does.
func ackOldest(s *Sink) {
	s.mu.Lock()
	s.entries[0].state = statePersisted
	s.trimLocked()
	s.mu.Unlock()
}

// Offline input faster than real time waits once the closed fragments in
// memory exceed the window, and goes on as acknowledgements free it: its
// memory stays near the window however large StorageSize is, and no frame
// is dropped.
func TestOfflineWindowHoldsFastSource(t *testing.T) {
	s, evs, _ := storeSinkClock(t, Offline, 1<<30, time.Hour) // the clock stands still: a file
	s.window = 25_000                                         // 2.5 fragments of ten 1000-byte frames
	n, done := putAll(s, 0, 200)
	put := waitBlocked(t, s, n, done)
	s.mu.Lock()
	closed := s.stored - int64(s.entries[len(s.entries)-1].size())
	s.mu.Unlock()
	if closed <= 25_000 || closed > 25_000+11*1016 {
		t.Fatalf("blocked with %d bytes of closed fragments, want just over the 25000-byte window", closed)
	}
	if put >= 100 {
		t.Fatalf("%d frames went in before the window closed", put)
	}
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if m := s.Metrics(); m.FramesPut != 200 || m.FramesDropped != 0 {
				t.Fatalf("put %d, dropped %d frames; want 200 put, none dropped", m.FramesPut, m.FramesDropped)
			}
			for _, e := range *evs {
				if e.Kind == EventDropped {
					t.Fatalf("offline dropped frames: %+v", e.Dropped)
				}
			}
			return
		default:
		}
		s.mu.Lock()
		closed := s.stored - int64(s.entries[len(s.entries)-1].size())
		ready := len(s.entries) > 1 && s.entries[0].frag.Closed
		s.mu.Unlock()
		if closed > 25_000+11*1016 {
			t.Fatalf("%d bytes of closed fragments in memory, over the window by more than one fragment", closed)
		}
		if ready {
			ackOldest(s)
		}
		time.Sleep(time.Millisecond)
	}
}

// A live source in offline mode is never held by the window: the store
// absorbs a stalled upload up to StorageSize, as it always did.
func TestOfflineWindowIgnoresLiveSource(t *testing.T) {
	s, _, fc := storeSinkClock(t, Offline, 1<<30, time.Hour)
	s.window = 25_000
	for i := range 200 {
		fc.Advance(100 * time.Millisecond) // frames come at their own pace
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.Put(ctx, aacFrame(i))
		cancel()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if s.stored < 150_000 {
		t.Fatalf("the store holds %d bytes, want the whole unacknowledged stream", s.stored)
	}
}

// A source held by the window that falls back to real time (its frames
// stop running ahead of the wall clock) goes on without acknowledgements.
func TestOfflineWindowReleasedByTheClock(t *testing.T) {
	s, _, fc := storeSinkClock(t, Offline, 1<<30, time.Hour)
	s.window = 25_000
	n, done := putAll(s, 0, 60)
	put := waitBlocked(t, s, n, done)
	fc.Advance(time.Duration(put)*100*time.Millisecond + time.Second) // the wall clock catches up
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Put stayed blocked once the source no longer ran ahead of real time")
	}
}
