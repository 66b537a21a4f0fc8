package core

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/sink"
	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// A producer stopped during an outage (its process ended before the
// service had its fragments) leaves them in storage-path; the next run
// recovers them, reports them, uploads them first with their original
// times, and streams new frames behind them: every frame reaches the
// endpoint exactly once, in order.
func TestDiskStoreRecoversAfterRestart(t *testing.T) {
	cpd, frames := scaled(t, 1) // 300 frames, 10 fragments
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	dir := t.TempDir()

	ev1 := &events{}
	cfg := faultConfig(fe.url, "disk", ev1)
	cfg.StoragePath = dir
	s1 := startSink(t, cfg, cpd)
	pacedPut(t, s1, frames[:60]) // two fragments reach the service
	waitFor(t, func() bool { return s1.Metrics().FragmentsAcked >= 1 })
	fe.restart(0, kvslocal.Faults{Refuse: true}) // the outage
	pacedPut(t, s1, frames[60:240])
	s1.Close() // the producer goes away mid-outage
	if len(ev1.of(sink.EventRecovered)) != 0 {
		t.Fatal("a fresh storage-path reported recovered fragments")
	}
	fe.server().SetFaults(kvslocal.Faults{})

	ev2 := &events{}
	cfg2 := faultConfig(fe.url, "disk", ev2)
	cfg2.StoragePath = dir
	s2 := startSink(t, cfg2, cpd)
	rec := ev2.of(sink.EventRecovered)
	if len(rec) != 1 {
		t.Fatalf("%d recovery reports, want 1", len(rec))
	}
	r := rec[0].Recovered
	t.Logf("recovered: %+v", *r)
	if r.Frames < 180 || r.Frames > 240 || r.Fragments < 6 {
		t.Errorf("recovered %d frames in %d fragments, want at least the 180 put during the outage", r.Frames, r.Fragments)
	}
	pacedPut(t, s2, frames[240:]) // live frames go on behind the recovered ones
	if err := s2.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	sum := summarise(t, fe.server(), "disk")
	// Run 2's live frames carry its own stream times: 300 distinct frames
	// in all, each fragment once, in timecode order.
	if sum.frames != 300 || sum.dups != 0 || !sum.inOrder {
		t.Fatalf("stored %d of 300 frames, %d duplicate fragments, in order %v", sum.frames, sum.dups, sum.inOrder)
	}
	// Everything was acknowledged: the journal's files are gone.
	segs, _ := filepath.Glob(filepath.Join(sink.JournalDir(dir, "disk"), "*.kvsj"))
	if len(segs) != 0 {
		t.Errorf("%d journal files left after every fragment was acknowledged", len(segs))
	}
}

// Two producers streaming the same stream from one storage-path: the
// second is refused at start, clearly.
func TestDiskStoreSharedByTwoProducers(t *testing.T) {
	cpd, _ := officialFrames(t)
	_, url := startEndpoint(t)
	dir := t.TempDir()
	cfg := config(url, "shared")
	cfg.StoragePath = dir
	startSink(t, cfg, cpd)
	s2, err := sink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Start(context.Background()); err == nil {
		t.Fatal("a second producer of the same stream opened the same storage-path")
	}
	// Another stream shares the directory without mixing.
	other := config(url, "other")
	other.StoragePath = dir
	startSink(t, other, cpd)
}

// A storage-path that cannot be used (a file) is a warning: the stream
// goes on in memory and loses nothing.
func TestDiskStoreUnusableFallsBackToMemory(t *testing.T) {
	cpd, frames := officialFrames(t)
	srv, url := startEndpoint(t)
	file := filepath.Join(t.TempDir(), "not-a-dir")
	os.WriteFile(file, nil, 0o600)
	ev := &events{}
	cfg := faultConfig(url, "fallback", ev)
	cfg.StoragePath = file
	s := startSink(t, cfg, cpd)
	put(t, s, frames)
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, w := range ev.of(sink.EventWarning) {
		if w.Message != "" && filepath.IsAbs(file) && contains(w.Message, "storage-path") && contains(w.Message, "memory") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no storage-path warning: %v", ev.of(sink.EventWarning))
	}
	if sum := summarise(t, srv, "fallback"); sum.frames != 300 {
		t.Fatalf("stored %d of 300 frames", sum.frames)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
