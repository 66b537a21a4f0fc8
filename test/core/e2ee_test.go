package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/clock"
	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/e2ee/mkvstream"
	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/pkg/sink"
)

type e2eeKeys struct {
	device          *e2ee.SigningKey
	alice, bob, eve *e2ee.PrivateKey // bob uses X-Wing; eve is not a recipient
}

func newE2EEKeys(t *testing.T) e2eeKeys {
	t.Helper()
	var k e2eeKeys
	var err error
	if k.device, err = e2ee.GenerateSigningKey(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		dst **e2ee.PrivateKey
		kem e2ee.KEM
	}{{&k.alice, e2ee.KEMX25519}, {&k.bob, e2ee.KEMXWing}, {&k.eve, e2ee.KEMX25519}} {
		if *p.dst, err = e2ee.GenerateKey(p.kem); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// getMediaRaw returns the GetMedia response of a stream from start.
func getMediaRaw(t *testing.T, url, name string, start kvs.StartSelector) []byte {
	t.Helper()
	body := openGetMedia(t, url, name, start)
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decryptFrames decrypts a GetMedia response as recipient key and returns
// the plain frames and the report.
func decryptFrames(t *testing.T, raw []byte, stream string, dev *e2ee.DeviceKey, key *e2ee.PrivateKey) ([]frame, *mkvstream.Report, error) {
	t.Helper()
	var out bytes.Buffer
	rep, err := mkvstream.Decrypt(&out, bytes.NewReader(raw), e2ee.DecryptorConfig{Stream: stream, Devices: []*e2ee.DeviceKey{dev}, Keys: []*e2ee.PrivateKey{key}}, mkvstream.Options{})
	if err != nil {
		return nil, rep, err
	}
	r := mkv.NewReader(&out)
	var frames []frame
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			for _, tr := range ev.Header.Tracks {
				if tr.CodecID == e2ee.KeyTrackCodecID {
					t.Fatal("decrypted output still has the key track")
				}
			}
		case mkv.EventBlock:
			frames = append(frames, frame{key: ev.Block.Keyframe, data: append([]byte(nil), ev.Block.Data...)})
		}
	}
	return frames, rep, nil
}

// An encrypted stream through the core and the endpoint: the endpoint
// never sees a frame in clear, both recipients (X25519 and X-Wing) decrypt
// every frame byte for byte across a rotation, a non-recipient gets
// ErrNotRecipient, and a consumer starting mid-stream decrypts from its
// first fragment.
func TestE2EEStream(t *testing.T) {
	cpd, frames := officialFrames(t)
	srv, url := startEndpoint(t)
	k := newE2EEKeys(t)
	const name = "e2ee-cam"
	cfg := config(url, name)
	cfg.E2EE = &sink.E2EEConfig{Recipients: []*e2ee.PublicKey{k.alice.Public(), k.bob.Public()}, SigningKey: k.device}
	var mu sync.Mutex
	var epochs []e2ee.EpochInfo
	cfg.OnEvent = func(ev sink.Event) {
		if ev.Kind == sink.EventEpoch {
			mu.Lock()
			epochs = append(epochs, *ev.Epoch)
			mu.Unlock()
		}
	}
	s := startSink(t, cfg, cpd)
	put(t, s, frames[:150])
	// A recipient change (here: the same two, in another order) starts a
	// new epoch at the next fragment.
	if err := s.SetRecipients([]*e2ee.PublicKey{k.bob.Public(), k.alice.Public()}); err != nil {
		t.Fatal(err)
	}
	put(t, s, frames[150:])
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(epochs) != 2 || epochs[0].ID == epochs[1].ID || len(epochs[1].Recipients) != 2 {
		t.Fatalf("epochs %+v, want two distinct, each for two recipients", epochs)
	}
	mu.Unlock()

	raw := getMediaRaw(t, url, name, kvs.StartSelector{Type: "EARLIEST"})
	// What the endpoint holds and serves has no frame in clear: not one
	// 16-byte window of any frame payload.
	for i, f := range frames {
		for off := 0; off+16 <= len(f.data); off += 64 {
			if bytes.Contains(raw, f.data[off:off+16]) {
				t.Fatalf("frame %d bytes %d..%d appear in clear in the stored stream", i, off, off+16)
			}
		}
	}
	for _, key := range []*e2ee.PrivateKey{k.alice, k.bob} {
		got, rep, err := decryptFrames(t, raw, name, k.device.Public(), key)
		if err != nil {
			t.Fatalf("%v decrypting: %v (report %+v)", key.KEM(), err, rep)
		}
		if rep.Dropped() != 0 || len(rep.Gaps) != 0 || len(got) != len(frames) {
			t.Fatalf("%v: %d frames, %d dropped, gaps %v; want %d, none", key.KEM(), len(got), rep.Dropped(), rep.Gaps, len(frames))
		}
		for i := range frames {
			if !bytes.Equal(got[i].data, frames[i].data) || got[i].key != frames[i].key {
				t.Fatalf("%v: frame %d differs after decryption", key.KEM(), i)
			}
		}
	}
	if _, _, err := decryptFrames(t, raw, name, k.device.Public(), k.eve); !errors.Is(err, e2ee.ErrNotRecipient) {
		t.Fatalf("a non-recipient got %v, want ErrNotRecipient", err)
	}

	// A consumer that starts at the sixth fragment decrypts all it gets.
	frags, err := srv.Fragments(name)
	if err != nil || len(frags) != 10 {
		t.Fatalf("%d fragments stored (%v), want 10", len(frags), err)
	}
	late := getMediaRaw(t, url, name, kvs.StartSelector{Type: "FRAGMENT_NUMBER", AfterFragmentNumber: frags[5].Number})
	got, rep, err := decryptFrames(t, late, name, k.device.Public(), k.alice)
	if err != nil || rep.Dropped() != 0 || len(got) != 150 || !bytes.Equal(got[0].data, frames[150].data) {
		t.Fatalf("late joiner: %d frames, err %v, report %+v", len(got), err, rep)
	}
}

// Restarting the producer many times on one stream never reuses a
// (key, nonce): every restart starts a new epoch, and no (KID, CTR) pair
// appears twice in the stored stream.
func TestE2EERestartsNeverRepeatANonce(t *testing.T) {
	cpd, frames := officialFrames(t)
	_, url := startEndpoint(t)
	k := newE2EEKeys(t)
	const name = "e2ee-restarts"
	const restarts = 12
	base := time.Duration(0)
	for i := 0; i < restarts; i++ {
		cfg := config(url, name)
		cfg.E2EE = &sink.E2EEConfig{Recipients: []*e2ee.PublicKey{k.alice.Public()}, SigningKey: k.device}
		s := startSink(t, cfg, cpd)
		// Two fragments per run, at increasing times.
		var fs []frame
		for _, f := range frames[:60] {
			fs = append(fs, frame{pts: base + f.pts, key: f.key, data: f.data})
		}
		put(t, s, fs)
		if err := s.Finish(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.Close()
		base += 3 * time.Second
	}
	raw := getMediaRaw(t, url, name, kvs.StartSelector{Type: "EARLIEST"})
	seen := map[[2]uint64]bool{}
	epochs := map[uint64]bool{}
	blocks := 0
	r := mkv.NewReader(bytes.NewReader(raw))
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind != mkv.EventBlock || ev.Block.Track != 1 {
			continue
		}
		kid, ctr, _, err := e2ee.ParseHeader(ev.Block.Data)
		if err != nil {
			t.Fatal(err)
		}
		p := [2]uint64{kid, ctr}
		if seen[p] {
			t.Fatalf("(KID %#x, CTR %d) used twice", kid, ctr)
		}
		seen[p] = true
		epochs[kid>>4] = true
		blocks++
	}
	if blocks != restarts*60 || len(epochs) != restarts {
		t.Fatalf("%d frames in %d epochs, want %d in %d", blocks, len(epochs), restarts*60, restarts)
	}
	got, rep, err := decryptFrames(t, raw, name, k.device.Public(), k.alice)
	if err != nil || len(got) != restarts*60 {
		t.Fatalf("decrypted %d frames: %v %s", len(got), err, fmt.Sprint(rep))
	}
}

// E2EE needs absolute fragment times and at least one recipient.
func TestE2EEBadConfig(t *testing.T) {
	k := newE2EEKeys(t)
	cfg := config("http://127.0.0.1:1", "e2ee-bad")
	cfg.AbsoluteFragmentTimes = false
	cfg.E2EE = &sink.E2EEConfig{Recipients: []*e2ee.PublicKey{k.alice.Public()}, SigningKey: k.device}
	if _, err := sink.New(cfg); !errors.Is(err, sink.ErrSettings) || !errors.Is(err, sink.ErrE2EE) {
		t.Fatalf("relative fragment times: %v", err)
	}
	cfg = config("http://127.0.0.1:1", "e2ee-bad")
	cfg.E2EE = &sink.E2EEConfig{SigningKey: k.device}
	if _, err := sink.New(cfg); !errors.Is(err, e2ee.ErrNoRecipients) {
		t.Fatalf("no recipients: %v", err)
	}
}

// e2ee-rotation-interval: a stream longer than the interval changes epoch
// at fragment boundaries as the clock passes each interval, and a consumer
// decrypts across every change without a gap.
func TestE2EERotationInterval(t *testing.T) {
	cpd, frames := officialFrames(t)
	_, url := startEndpoint(t)
	k := newE2EEKeys(t)
	const name = "e2ee-interval"
	cfg := config(url, name)
	fake := clock.NewFake(time.Now())
	cfg.Clock = fake
	cfg.E2EE = &sink.E2EEConfig{Recipients: []*e2ee.PublicKey{k.alice.Public()}, SigningKey: k.device, RotationInterval: 2500 * time.Millisecond}
	var mu sync.Mutex
	var firsts []uint64
	cfg.OnEvent = func(ev sink.Event) {
		if ev.Kind == sink.EventEpoch {
			mu.Lock()
			firsts = append(firsts, ev.Epoch.FirstPTS)
			mu.Unlock()
		}
	}
	s := startSink(t, cfg, cpd)
	for _, f := range frames { // 10 s of stream time, one second per fragment
		put(t, s, []frame{f})
		fake.Advance(time.Second / 30)
	}
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := len(firsts)
	mu.Unlock()
	// Epochs start at 0 s and at the first fragment after each 2.5 s.
	if n != 4 {
		t.Fatalf("%d epochs in 10 s with a 2.5 s interval, want 4 (first timecodes %v)", n, firsts)
	}
	got, rep, err := decryptFrames(t, getMediaRaw(t, url, name, kvs.StartSelector{Type: "EARLIEST"}), name, k.device.Public(), k.alice)
	if err != nil || len(got) != 300 || rep.Dropped() != 0 || len(rep.Gaps) != 0 {
		t.Fatalf("%d frames, %v, report %+v", len(got), err, rep)
	}
}

// The epoch event, like every event, reaches OnEvent after the core's lock
// is released: a callback may call back into the Sink.
func TestE2EEEpochEventMayCallBack(t *testing.T) {
	cpd, frames := officialFrames(t)
	_, url := startEndpoint(t)
	k := newE2EEKeys(t)
	cfg := config(url, "e2ee-callback")
	cfg.E2EE = &sink.E2EEConfig{Recipients: []*e2ee.PublicKey{k.alice.Public()}, SigningKey: k.device}
	var s *sink.Sink
	epochs := 0
	cfg.OnEvent = func(ev sink.Event) {
		if ev.Kind == sink.EventEpoch {
			epochs++
			_ = s.Metrics() // takes the core's lock
		}
	}
	s = startSink(t, cfg, cpd)
	errc := make(chan error, 1)
	go func() {
		for _, f := range frames[:30] {
			if err := s.Put(context.Background(), sink.Frame{PTS: f.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: f.key, Data: f.data}); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Put blocked: the epoch event was delivered with the core's lock held")
	}
	if epochs == 0 {
		t.Fatal("no epoch event")
	}
}
