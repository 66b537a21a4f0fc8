package core

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/journal"
	"github.com/kvsgo/kvsgo/pkg/kvs"
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

// Fragments the service acknowledged RECEIVED but not PERSISTED when the
// producer went away are journaled as such: the next run resends them
// (it cannot know whether the service kept them) and says so, in
// EventRecovered and a warning, naming them; the stream then holds those
// fragments twice and no others.
func TestDiskStoreReportsReceivedFragments(t *testing.T) {
	cpd, frames := scaled(t, 1) // 300 frames, 10 fragments
	fe := newFaultEndpoint(t, kvslocal.Faults{WithholdPersisted: true})
	dir := t.TempDir()

	ev1 := &events{}
	cfg := faultConfig(fe.url, "received", ev1)
	cfg.StoragePath = dir
	s1 := startSink(t, cfg, cpd)
	pacedPut(t, s1, frames[:120])
	receivedAcks := func() map[uint64]bool {
		r := map[uint64]bool{}
		for _, a := range ev1.of(sink.EventAck) {
			if a.AckType == "RECEIVED" {
				r[a.FragmentTimecode] = true
			}
		}
		return r
	}
	waitFor(t, func() bool { return len(receivedAcks()) >= 2 })
	s1.Close() // no acknowledgement is handled after Close returns
	received := receivedAcks()
	fe.server().SetFaults(kvslocal.Faults{})

	ev2 := &events{}
	cfg2 := faultConfig(fe.url, "received", ev2)
	cfg2.StoragePath = dir
	s2 := startSink(t, cfg2, cpd)
	rec := ev2.of(sink.EventRecovered)
	if len(rec) != 1 {
		t.Fatalf("%d recovery reports, want 1", len(rec))
	}
	r := rec[0].Recovered
	t.Logf("RECEIVED before the restart: %d fragments; recovered: %+v", len(received), *r)
	if r.Received != len(received) || len(r.ReceivedTimecodes) != len(received) {
		t.Errorf("recovery reports %d fragments acknowledged RECEIVED, the service acknowledged %d", r.Received, len(received))
	}
	for _, tc := range r.ReceivedTimecodes {
		if !received[tc] {
			t.Errorf("fragment %d reported as RECEIVED, the service never acknowledged it so", tc)
		}
	}
	warned := false
	for _, w := range ev2.of(sink.EventWarning) {
		warned = warned || contains(w.Message, "may hold them twice")
	}
	if !warned {
		t.Errorf("no warning about fragments the stream may hold twice: %v", ev2.of(sink.EventWarning))
	}
	pacedPut(t, s2, frames[120:])
	if err := s2.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	frags, err := fe.server().Fragments("received")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]int{}
	for _, f := range frags {
		seen[f.Timecode]++
	}
	for tc, n := range seen {
		switch {
		case n > 2, n == 2 && !received[tc]:
			t.Errorf("fragment %d stored %d times (acknowledged RECEIVED before the restart: %v)", tc, n, received[tc])
		case n == 1 && received[tc]:
			t.Errorf("fragment %d, acknowledged RECEIVED and journaled as such, was not resent", tc)
		}
	}
	if sum := summarise(t, fe.server(), "received"); sum.frames != 300 || !sum.inOrder {
		t.Fatalf("stored %d of 300 distinct frames, in order %v", sum.frames, sum.inOrder)
	}
}

// An outage longer than storage-memory but within the disk bound loses
// nothing: fragments safely on disk leave memory and are read back when
// they are sent. The same outage with only that much memory drops frames,
// and so does a disk bound that small.
func TestDiskStoreSpillsBeyondMemory(t *testing.T) {
	cpd, frames := scaled(t, 2) // 600 frames, 20 fragments; the outage is the middle third
	total, largest, frag := 0, 0, 0
	for i, f := range frames {
		total += len(f.data)
		if f.key && i > 0 {
			largest, frag = max(largest, frag), 0
		}
		frag += len(f.data)
	}
	largest = max(largest, frag)
	memory := int64(total / 8) // under 3 fragments; the outage lasts about 7
	t.Logf("%d bytes in 20 fragments (largest %d), memory bound %d", total, largest, memory)

	run := func(t *testing.T, stream string, mod func(*sink.Config)) (sink.Metrics, storedSummary, *events, sink.Metrics) {
		fe := newFaultEndpoint(t, kvslocal.Faults{})
		ev := &events{}
		cfg := faultConfig(fe.url, stream, ev)
		mod(&cfg)
		s := startSink(t, cfg, cpd)
		var peak sink.Metrics // greatest memory and greatest spilled bytes seen
		var mu sync.Mutex
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				m := s.Metrics()
				mu.Lock()
				peak.StoreMemory = max(peak.StoreMemory, m.StoreMemory)
				peak.StoreBytes = max(peak.StoreBytes, m.StoreBytes-m.StoreMemory)
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		putThroughOutage(t, s, fe, frames)
		close(stop)
		<-sampled
		m := s.Metrics()
		s.Close()
		return m, summarise(t, fe.server(), stream), ev, peak
	}

	t.Run("memory only", func(t *testing.T) {
		m, sum, _, _ := run(t, "spill-mem", func(c *sink.Config) { c.StorageSize = memory })
		t.Logf("dropped %d frames, stored %d", m.FramesDropped, sum.frames)
		if m.FramesDropped == 0 || sum.frames == len(frames) {
			t.Fatalf("the outage did not overflow %d bytes of memory (dropped %d, stored %d of %d frames): the test proves nothing", memory, m.FramesDropped, sum.frames, len(frames))
		}
	})
	t.Run("disk", func(t *testing.T) {
		dir := t.TempDir()
		m, sum, _, peak := run(t, "spill-disk", func(c *sink.Config) {
			c.StoragePath, c.StorageSize, c.StorageMemory = dir, 64<<20, memory
		})
		t.Logf("dropped %d frames, stored %d; at most %d bytes in memory, %d on disk only", m.FramesDropped, sum.frames, peak.StoreMemory, peak.StoreBytes)
		if m.FramesDropped != 0 || sum.frames != len(frames) || sum.dups != 0 || !sum.inOrder {
			t.Fatalf("dropped %d frames; stored %d of %d, %d duplicate fragments, in order %v", m.FramesDropped, sum.frames, len(frames), sum.dups, sum.inOrder)
		}
		if peak.StoreBytes == 0 {
			t.Error("no fragment ever left memory")
		}
		// The fragment being built and the one being sent may exceed the
		// bound; nothing else does.
		if limit := memory + 2*int64(largest) + 64<<10; peak.StoreMemory > limit {
			t.Errorf("%d bytes in memory, bound %d (+ two fragments: %d)", peak.StoreMemory, memory, limit)
		}
	})
	t.Run("disk full", func(t *testing.T) {
		dir := t.TempDir()
		m, sum, ev, _ := run(t, "spill-full", func(c *sink.Config) {
			c.StoragePath, c.StorageSize, c.StorageMemory = dir, memory, memory
		})
		reasons := map[string]bool{}
		for _, d := range ev.of(sink.EventDropped) {
			reasons[d.Dropped.Reason] = true
		}
		t.Logf("dropped %d frames (%v), stored %d", m.FramesDropped, reasons, sum.frames)
		if m.FramesDropped == 0 || !reasons["storage-size"] {
			t.Fatalf("a disk bound of %d bytes held the whole outage (dropped %d, reasons %v)", memory, m.FramesDropped, reasons)
		}
	})
}

// Fragments that left memory and whose file another process then damaged
// are never sent corrupt: reading them back fails its checksums, they are
// dropped with a warning and a drop report, and the stream goes on.
func TestDiskStoreDamagedSpillIsDropped(t *testing.T) {
	cpd, frames := scaled(t, 2)
	total := 0
	for _, f := range frames {
		total += len(f.data)
	}
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	dir := t.TempDir()
	ev := &events{}
	cfg := faultConfig(fe.url, "damaged", ev)
	cfg.StoragePath, cfg.StorageSize, cfg.StorageMemory = dir, 64<<20, int64(total/8)
	s := startSink(t, cfg, cpd)
	third := len(frames) / 3
	pacedPut(t, s, frames[:third])
	fe.restart(0, kvslocal.Faults{Refuse: true})
	pacedPut(t, s, frames[third:2*third])
	if m := s.Metrics(); m.StoreBytes == m.StoreMemory {
		t.Fatal("no fragment left memory during the outage")
	}
	// Another process writes into every journal file, every 4 KiB.
	segs, _ := filepath.Glob(filepath.Join(sink.JournalDir(dir, "damaged"), "*.kvsj"))
	for _, p := range segs {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		for off := int64(2048); off < fi.Size(); off += 4096 {
			f.WriteAt([]byte{0xa5, 0x5a}, off)
		}
		f.Close()
	}
	fe.server().SetFaults(kvslocal.Faults{})
	pacedPut(t, s, frames[2*third:])
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := s.Metrics()
	dropped := 0
	for _, d := range ev.of(sink.EventDropped) {
		if d.Dropped.Reason == "storage-path" {
			dropped += d.Dropped.Frames
		}
	}
	warned := false
	for _, w := range ev.of(sink.EventWarning) {
		warned = warned || contains(w.Message, "could not be read back")
	}
	sum := summarise(t, fe.server(), "damaged")
	t.Logf("dropped %d frames (%d as unreadable), stored %d of %d", m.FramesDropped, dropped, sum.frames, len(frames))
	if dropped == 0 || !warned {
		t.Fatalf("damaged fragments: %d frames reported dropped, warning %v", dropped, warned)
	}
	if sum.frames+int(m.FramesDropped) != len(frames) || sum.dups != 0 || !sum.inOrder {
		t.Fatalf("stored %d + dropped %d of %d frames, %d duplicates, in order %v", sum.frames, m.FramesDropped, len(frames), sum.dups, sum.inOrder)
	}
}

// An encrypted stream's recovered fragments stay sealed as they were: the
// journal holds no frame in clear, and a recipient decrypts recovered and
// live fragments alike, every frame byte for byte, in order.
func TestDiskStoreRecoversEncryptedFragments(t *testing.T) {
	cpd, frames := scaled(t, 1)
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	dir := t.TempDir()
	k := newE2EEKeys(t)
	const name = "disk-e2ee"
	e2eeCfg := func(ev *events) sink.Config {
		cfg := faultConfig(fe.url, name, ev)
		cfg.StoragePath = dir
		cfg.E2EE = &sink.E2EEConfig{Recipients: []*e2ee.PublicKey{k.alice.Public(), k.bob.Public()}, SigningKey: k.device}
		return cfg
	}
	s1 := startSink(t, e2eeCfg(&events{}), cpd)
	pacedPut(t, s1, frames[:60])
	waitFor(t, func() bool { return s1.Metrics().FragmentsAcked >= 1 })
	fe.restart(0, kvslocal.Faults{Refuse: true})
	pacedPut(t, s1, frames[60:240])
	s1.Close()

	segs, _ := filepath.Glob(filepath.Join(sink.JournalDir(dir, name), "*.kvsj"))
	var journal []byte
	for _, p := range segs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		journal = append(journal, b...)
	}
	if len(journal) == 0 {
		t.Fatal("nothing journaled during the outage")
	}
	for i, f := range frames[60:240] {
		for off := 0; off+16 <= len(f.data); off += 64 {
			if bytes.Contains(journal, f.data[off:off+16]) {
				t.Fatalf("frame %d bytes %d..%d are in clear in the journal", 60+i, off, off+16)
			}
		}
	}

	fe.server().SetFaults(kvslocal.Faults{})
	ev2 := &events{}
	s2 := startSink(t, e2eeCfg(ev2), cpd)
	if rec := ev2.of(sink.EventRecovered); len(rec) != 1 || rec[0].Recovered.Frames < 180 {
		t.Fatalf("recovery reports %v, want one of at least the 180 frames put during the outage", rec)
	}
	pacedPut(t, s2, frames[240:])
	if err := s2.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2.Close()

	raw := getMediaRaw(t, fe.url, name, kvs.StartSelector{Type: "EARLIEST"})
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
}

// A disk that stops writing (an SD card at its worst) never stalls a live
// stream: every Put returns while not one byte reaches the file, the
// element warns that the disk is behind, and every frame reaches the
// service; once the disk writes again the journal catches up.
func TestDiskStoreHungDiskNeverStallsRealtime(t *testing.T) {
	cpd, frames := scaled(t, 3) // 900 frames, about 5.7 MB: more than the journal's 4 MiB write queue
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	ev := &events{}
	cfg := faultConfig(fe.url, "slowdisk", ev)
	cfg.StoragePath = t.TempDir()
	cfg.StorageOpenFile = func(name string, flag int, perm os.FileMode) (journal.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
			return f, err
		}
		return gatedFile{f, gate}, nil
	}
	s := startSink(t, cfg, cpd)
	done := make(chan error, 1)
	go func() {
		start := time.Now()
		for _, f := range frames { // at their pace: acknowledgements arrive meanwhile
			if d := f.pts - frames[0].pts - time.Since(start); d > 0 {
				time.Sleep(d)
			}
			if err := s.Put(context.Background(), sink.Frame{PTS: f.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: f.key, Data: f.data}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second): // generous: the puts take 6 s
		t.Fatal("Put stalled behind a disk that does not write")
	}
	if m := s.Metrics(); m.DiskWritten != 0 {
		t.Fatalf("%d bytes written through a hung disk", m.DiskWritten)
	}
	t.Logf("metrics with the disk hung: %+v", s.Metrics())
	release()
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, w := range ev.of(sink.EventWarning) {
		warned = warned || contains(w.Message, "disk is slower than the stream")
	}
	if !warned {
		t.Errorf("no warning that the disk is behind: %v", ev.of(sink.EventWarning))
	}
	if sum := summarise(t, fe.server(), "slowdisk"); sum.frames != len(frames) || sum.dups != 0 || !sum.inOrder {
		t.Fatalf("stored %d of %d frames, %d duplicates, in order %v", sum.frames, len(frames), sum.dups, sum.inOrder)
	}
}

// gatedFile is a journal file whose writes wait until gate is closed.
type gatedFile struct {
	*os.File
	gate chan struct{}
}

func (g gatedFile) Write(b []byte) (int, error) {
	<-g.gate
	return g.File.Write(b)
}

// A restart after an outage longer than storage-memory recovers every
// fragment without holding them all in memory: those beyond the bound stay
// on disk until they are sent.
func TestDiskStoreRecoversBeyondMemory(t *testing.T) {
	cpd, frames := scaled(t, 2) // 600 frames, 20 fragments
	total := 0
	for _, f := range frames {
		total += len(f.data)
	}
	memory := int64(total / 8)
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	dir := t.TempDir()
	cfgFor := func(ev *events) sink.Config {
		cfg := faultConfig(fe.url, "recover-disk", ev)
		cfg.StoragePath, cfg.StorageSize, cfg.StorageMemory = dir, 64<<20, memory
		return cfg
	}
	s1 := startSink(t, cfgFor(&events{}), cpd)
	pacedPut(t, s1, frames[:60])
	waitFor(t, func() bool { return s1.Metrics().FragmentsAcked >= 1 })
	fe.restart(0, kvslocal.Faults{Refuse: true})
	pacedPut(t, s1, frames[60:480]) // 14 fragments, far more than memory holds
	s1.Close()
	fe.server().SetFaults(kvslocal.Faults{})

	ev2 := &events{}
	cfg2 := cfgFor(ev2)
	s2, err := sink.New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	// Acknowledgements are held back a while: the recovered fragments are
	// all in the store when it is measured.
	fe.server().SetFaults(kvslocal.Faults{AckDelay: 2 * time.Second})
	if err := s2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := s2.Metrics()
	rec := ev2.of(sink.EventRecovered)
	if len(rec) != 1 || rec[0].Recovered.Frames < 420 {
		t.Fatalf("recovery reports %v, want one of at least the 420 frames put during the outage", rec)
	}
	t.Logf("recovered %+v: %d bytes in the store, %d of them in memory (bound %d)", *rec[0].Recovered, m.StoreBytes, m.StoreMemory, memory)
	if m.StoreMemory > memory+int64(total/20)*2 || m.StoreBytes <= m.StoreMemory {
		t.Fatalf("after recovery %d bytes in memory of %d stored, memory bound %d", m.StoreMemory, m.StoreBytes, memory)
	}
	fe.server().SetFaults(kvslocal.Faults{})
	if err := s2.SetFormat(sink.Format{Codec: "h264", StreamFormat: "avc", CodecData: cpd}); err != nil {
		t.Fatal(err)
	}
	pacedPut(t, s2, frames[480:])
	if err := s2.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sum := summarise(t, fe.server(), "recover-disk"); sum.frames != len(frames) || sum.dups != 0 || !sum.inOrder {
		t.Fatalf("stored %d of %d frames, %d duplicates, in order %v", sum.frames, len(frames), sum.dups, sum.inOrder)
	}
}

// Close does not hang on a disk that never finishes writing: it gives up
// after a bounded wait with a warning.
func TestDiskStoreCloseDoesNotHangOnAHungDisk(t *testing.T) {
	cpd, frames := scaled(t, 1)
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	gate := make(chan struct{})
	t.Cleanup(func() { close(gate) })
	ev := &events{}
	cfg := faultConfig(fe.url, "hungclose", ev)
	cfg.StoragePath = t.TempDir()
	cfg.StorageOpenFile = func(name string, flag int, perm os.FileMode) (journal.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
			return f, err
		}
		return gatedFile{f, gate}, nil
	}
	s := startSink(t, cfg, cpd)
	put(t, s, frames[:60])
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(60 * time.Second): // the wait is 10 s
		t.Fatal("Close hung on a disk that does not write")
	}
	warned := false
	for _, w := range ev.of(sink.EventWarning) {
		warned = warned || contains(w.Message, "did not finish writing")
	}
	if !warned {
		t.Errorf("no warning that the disk did not finish: %v", ev.of(sink.EventWarning))
	}
}

// A disk that fails mid-stream (full: ENOSPC) is one warning: the stream
// goes on with the in-memory store and every frame reaches the service.
func TestDiskStoreFailingDiskFallsBackToMemory(t *testing.T) {
	cpd, frames := scaled(t, 1)
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	ev := &events{}
	cfg := faultConfig(fe.url, "enospc", ev)
	cfg.StoragePath = t.TempDir()
	var mu sync.Mutex
	budget := 300 << 10 // bytes the disk takes before it is full
	cfg.StorageOpenFile = func(name string, flag int, perm os.FileMode) (journal.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
			return f, err
		}
		return fullFile{f, &mu, &budget}, nil
	}
	s := startSink(t, cfg, cpd)
	pacedPut(t, s, frames)
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, w := range ev.of(sink.EventWarning) {
		if contains(w.Message, "in-memory store") && contains(w.Message, "no space left") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d warnings about the full disk, want 1: %v", n, ev.of(sink.EventWarning))
	}
	if m := s.Metrics(); m.FramesDropped != 0 {
		t.Errorf("%d frames dropped", m.FramesDropped)
	}
	if sum := summarise(t, fe.server(), "enospc"); sum.frames != len(frames) || sum.dups != 0 || !sum.inOrder {
		t.Fatalf("stored %d of %d frames, %d duplicates, in order %v", sum.frames, len(frames), sum.dups, sum.inOrder)
	}
}

// fullFile is a journal file on a disk with budget bytes left.
type fullFile struct {
	*os.File
	mu     *sync.Mutex
	budget *int
}

func (f fullFile) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(b) > *f.budget {
		n, _ := f.File.Write(b[:*f.budget])
		*f.budget = 0
		return n, syscall.ENOSPC
	}
	*f.budget -= len(b)
	return f.File.Write(b)
}
