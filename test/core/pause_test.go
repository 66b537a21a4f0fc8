package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/sink"
	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// withFiller appends an H.264 filler-data NAL unit of n bytes to an avc
// access unit (4-byte lengths): a frame as large as a high-bitrate one.
func withFiller(au []byte, n int) []byte {
	out := append([]byte(nil), au...)
	out = binary.BigEndian.AppendUint32(out, uint32(n))
	out = append(out, 12) // nal_unit_type 12: filler data
	out = append(out, bytes.Repeat([]byte{0xff}, n-2)...)
	return append(out, 0x80) // rbsp trailing bits
}

// A realtime stream whose endpoint stops reading (a congested network:
// TCP pushes back) keeps taking frames: Put never waits for the network,
// whether the bytes went out from Put (the live edge) or from the writer.
// Here 120 MB are put while the endpoint reads nothing, far more than the
// kernel's socket buffers hold (loopback TCP autotunes its receive buffer
// up to tcp_rmem's 32 MB on Debian); once it reads again, every frame
// arrives, byte for byte and in order, on the same connection.
func TestPutNeverWaitsForTheNetwork(t *testing.T) {
	cpd, official := officialFrames(t)
	srv, url := startEndpoint(t, withoutCaptures)
	cfg := config(url, "paused")
	cfg.StreamingType = sink.Realtime
	cfg.StorageSize = 512 << 20
	cfg.BufferDuration = time.Hour
	cfg.ConnectionStaleness = time.Hour // no reset while the endpoint is silent
	cfg.MaxLatency = 0
	cfg.StopStreamTimeout = 2 * time.Minute // 120 MB through the ingest under -race
	s := startSink(t, cfg, cpd)
	frames := official[:50]
	put(t, s, frames[:30])
	deadline := time.Now().Add(30 * time.Second)
	for s.Metrics().BytesSent == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing sent within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.SetFaults(kvslocal.Faults{PauseReads: true})
	// The writer is at the live edge: the first large frame is written by
	// its Put, which finds the buffers full and leaves the rest to the
	// writer; the next ones (each starting a fragment, to stay under the
	// service's 50 MB) go to the store while the writer waits.
	var big []frame
	for i, f := range frames[30:50] {
		if i == 0 {
			f.data, f.key = withFiller(f.data, 44<<20), false
		} else {
			f.data, f.key = withFiller(f.data, 4<<20), true
		}
		big = append(big, f)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		put(t, s, big)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Put waited for the network: the frames were not all taken while the endpoint read nothing")
	}
	if m := s.Metrics(); m.Connections != 1 {
		t.Fatalf("%d connections, want 1", m.Connections)
	}
	srv.SetFaults(kvslocal.Faults{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	want := append(append([]frame(nil), frames[:30]...), big...)
	got := readBack(t, url, "paused")
	if len(got) != len(want) {
		t.Fatalf("read back %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].data, want[i].data) {
			t.Fatalf("frame %d differs (%d bytes, want %d)", i, len(got[i].data), len(want[i].data))
		}
	}
	if m := s.Metrics(); m.Connections != 1 || m.FramesDropped != 0 {
		t.Fatalf("connections %d, dropped %d: want 1, 0", m.Connections, m.FramesDropped)
	}
}
