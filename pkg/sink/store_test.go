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
func storeSink(t *testing.T, st StreamingType, storage int64, bufDur time.Duration) (*Sink, *[]Event) {
	s, evs, _ := storeSinkClock(t, st, storage, bufDur)
	return s, evs
}

func storeSinkClock(t *testing.T, st StreamingType, storage int64, bufDur time.Duration) (*Sink, *[]Event, *clock.Fake) {
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
