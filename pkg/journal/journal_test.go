package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var hdr = []byte("\x1a\x45\xdf\xa3 a Matroska header")

func open(t *testing.T, dir string, mod ...func(*Options)) (*Journal, []Fragment, []string) {
	t.Helper()
	o := Options{Dir: dir, MaxBytes: 64 << 20, NoSync: true, Block: true}
	for _, m := range mod {
		m(&o)
	}
	j, frags, warn, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return j, frags, warn
}

func frame(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 100+i) }

// write puts fragments of the given frame counts into j; the last one is
// left open when open is true. It returns the bytes of each fragment.
func write(t *testing.T, j *Journal, counts []int, open bool) [][]byte {
	t.Helper()
	var out [][]byte
	for fi, n := range counts {
		id, err := j.Start(hdr, uint64(1000*fi), time.Duration(fi)*time.Second, true)
		if err != nil {
			t.Fatal(err)
		}
		var data []byte
		for i := range n {
			b := frame(i)
			data = append(data, b...)
			if err := j.Append(id, b, i+1, time.Duration(fi)*time.Second+time.Duration(i)*time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		if fi < len(counts)-1 || !open {
			if err := j.Close(id); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, data)
	}
	return out
}

func TestRecoverAfterRestart(t *testing.T) {
	dir := t.TempDir()
	j, frags, _ := open(t, dir)
	if len(frags) != 0 {
		t.Fatalf("a new journal recovered %d fragments", len(frags))
	}
	want := write(t, j, []int{3, 2}, true)
	if err := j.Shutdown(); err != nil {
		t.Fatal(err)
	}
	j2, got, warn := open(t, dir)
	defer j2.Shutdown()
	if len(warn) != 0 {
		t.Errorf("warnings: %v", warn)
	}
	if len(got) != 2 {
		t.Fatalf("recovered %d fragments, want 2", len(got))
	}
	for i, f := range got {
		if !bytes.Equal(f.Data, want[i]) || !bytes.Equal(f.Header, hdr) || f.Timecode != uint64(1000*i) || !f.Keyframe {
			t.Errorf("fragment %d: %d bytes, header %q, timecode %d", i, len(f.Data), f.Header, f.Timecode)
		}
	}
	if got[0].Frames != 3 || !got[0].Closed || got[1].Frames != 2 || got[1].Closed {
		t.Errorf("frames/closed: %d %v, %d %v", got[0].Frames, got[0].Closed, got[1].Frames, got[1].Closed)
	}
	if got[1].Last != time.Second+time.Millisecond {
		t.Errorf("last PTS %v", got[1].Last)
	}
	// Fragments done are not recovered again; a new fragment's id follows
	// the recovered ones.
	if err := j2.Done(got[0].ID); err != nil {
		t.Fatal(err)
	}
	id, _ := j2.Start(hdr, 5000, 5*time.Second, true)
	if id <= got[1].ID {
		t.Errorf("new fragment id %d does not follow the recovered %d", id, got[1].ID)
	}
	j2.Shutdown()
	j3, again, _ := open(t, dir)
	defer j3.Shutdown()
	if len(again) != 1 || again[0].ID != got[1].ID {
		t.Fatalf("after Done: recovered %+v", again)
	}
}

// A write torn at any byte of the last record loses at most that record:
// what is read back is every complete frame before it, and the file is cut
// back to its good prefix so that appends continue from there.
func TestTornWriteAtEveryOffset(t *testing.T) {
	src := t.TempDir()
	j, _, _ := open(t, src)
	want := write(t, j, []int{2, 3}, true)
	j.Shutdown()
	seg := onlySegment(t, src)
	whole, _ := os.ReadFile(seg)
	_, recs, _ := scan(whole)
	last := recs[len(recs)-1]
	lastLen := 8 + 1 + 28 + len(last.data)
	for cut := len(whole) - lastLen; cut < len(whole); cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(seg)), whole[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		j, got, warn := open(t, dir)
		if len(got) != 2 || !bytes.Equal(got[0].Data, want[0]) || got[1].Frames != 2 {
			t.Fatalf("cut at %d: %d fragments (%v)", cut, len(got), warn)
		}
		if wantData := want[1][:len(frame(0))+len(frame(1))]; !bytes.Equal(got[1].Data, wantData) {
			t.Fatalf("cut at %d: the open fragment holds %d bytes, want its 2 complete frames (%d)", cut, len(got[1].Data), len(wantData))
		}
		if fi, _ := os.Stat(filepath.Join(dir, filepath.Base(seg))); fi.Size() != int64(len(whole)-lastLen) {
			t.Fatalf("cut at %d: file left at %d bytes, want the good prefix %d", cut, fi.Size(), len(whole)-lastLen)
		}
		j.Shutdown()
	}
}

// A flipped byte anywhere is caught by the checksum: never handed back.
func TestDamageIsNeverData(t *testing.T) {
	src := t.TempDir()
	j, _, _ := open(t, src)
	want := write(t, j, []int{4}, false)
	j.Shutdown()
	seg := onlySegment(t, src)
	whole, _ := os.ReadFile(seg)
	for i := 0; i < len(whole); i += 7 {
		dir := t.TempDir()
		bad := bytes.Clone(whole)
		bad[i] ^= 0x5a
		os.WriteFile(filepath.Join(dir, filepath.Base(seg)), bad, 0o600)
		j, got, _ := open(t, dir)
		for _, f := range got {
			if !bytes.HasPrefix(want[0], f.Data) {
				t.Fatalf("byte %d flipped: recovered bytes that were never written", i)
			}
		}
		j.Shutdown()
	}
}

// A damaged segment that is not the last is reported, not truncated.
func TestDamagedEarlierSegmentWarns(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir, func(o *Options) { o.SegmentBytes = 300 })
	write(t, j, []int{3, 3, 3}, false)
	j.Shutdown()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.kvsj"))
	if len(segs) < 2 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	b, _ := os.ReadFile(segs[0])
	b[len(b)/2] ^= 0xff
	os.WriteFile(segs[0], b, 0o600)
	j2, _, warn := open(t, dir)
	defer j2.Shutdown()
	if len(warn) != 1 || !strings.Contains(warn[0], "damaged") || !strings.Contains(warn[0], filepath.Base(segs[0])) {
		t.Fatalf("warnings %v", warn)
	}
}

func TestDoneDeletesSegments(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir, func(o *Options) { o.SegmentBytes = 400 })
	write(t, j, []int{3, 3, 3, 3}, false)
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	before := countSegments(t, dir)
	for id := range uint64(4) {
		j.Done(id)
	}
	j.Start(hdr, 9000, 9*time.Second, true) // forces the done markers out
	j.Flush()
	after := countSegments(t, dir)
	if before < 3 || after != 1 {
		t.Fatalf("segments: %d before, %d after every fragment was done", before, after)
	}
	if s := j.Stats(); s.OnDisk > 400+200 {
		t.Fatalf("%d bytes still on disk", s.OnDisk)
	}
	j.Shutdown()
}

func TestLockedByAnotherProducer(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir)
	defer j.Shutdown()
	if _, _, _, err := Open(Options{Dir: dir, MaxBytes: 1 << 20}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestBadDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, _, _, err := Open(Options{Dir: file, MaxBytes: 1 << 20}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("a file as directory: %v", err)
	}
	if os.Geteuid() != 0 {
		ro := t.TempDir()
		os.Chmod(ro, 0o500)
		if _, _, _, err := Open(Options{Dir: filepath.Join(ro, "x"), MaxBytes: 1 << 20}); err == nil {
			t.Fatal("an unwritable directory opened")
		}
	}
}

func TestFull(t *testing.T) {
	j, _, _ := open(t, t.TempDir(), func(o *Options) { o.MaxBytes = 500 })
	defer j.Shutdown()
	id, err := j.Start(hdr, 0, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	var full error
	for i := 0; i < 10 && full == nil; i++ {
		full = j.Append(id, frame(i), i+1, 0)
	}
	if !errors.Is(full, ErrFull) {
		t.Fatalf("appending past MaxBytes: %v", full)
	}
}

// slowFile stalls every write until released.
type slowFile struct {
	*os.File
	gate chan struct{}
}

func (f slowFile) Write(b []byte) (int, error) { <-f.gate; return f.File.Write(b) }

// Without Block, a disk slower than the stream never stalls an append: the
// fragments it cannot keep are reported and recovered only to their last
// frame written whole.
func TestSlowDiskDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	gate := make(chan struct{})
	j, _, _ := open(t, dir, func(o *Options) {
		o.Block, o.QueueBytes = false, 1000
		o.OpenFile = func(name string, flag int, perm os.FileMode) (File, error) {
			f, err := os.OpenFile(name, flag, perm)
			return slowFile{f, gate}, err
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		write(t, j, []int{30, 30}, false)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("appends blocked behind a stalled disk")
	}
	if s := j.Stats(); s.Lagging == 0 {
		t.Fatalf("stats %+v: no fragment reported lagging", s)
	}
	close(gate)
	j.Shutdown()
	j2, got, _ := open(t, dir)
	defer j2.Shutdown()
	for _, f := range got {
		if f.Frames >= 30 {
			t.Errorf("fragment %d recovered whole although the disk fell behind", f.ID)
		}
		var want []byte
		for i := range f.Frames {
			want = append(want, frame(i)...)
		}
		if !bytes.Equal(f.Data, want) {
			t.Errorf("fragment %d: %d bytes are not its first %d frames", f.ID, len(f.Data), f.Frames)
		}
	}
}

type failingFile struct{ *os.File }

func (failingFile) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

func TestWriteFailureStopsTheJournal(t *testing.T) {
	j, _, _ := open(t, t.TempDir(), func(o *Options) {
		o.OpenFile = func(name string, flag int, perm os.FileMode) (File, error) {
			f, err := os.OpenFile(name, flag, perm)
			return failingFile{f}, err
		}
	})
	defer j.Shutdown()
	id, _ := j.Start(hdr, 0, 0, true)
	j.Flush()
	err := j.Append(id, frame(1), 1, 0)
	if !errors.Is(err, ErrFailed) || !errors.Is(j.Err(), syscall.ENOSPC) {
		t.Fatalf("append after ENOSPC: %v (journal: %v)", err, j.Err())
	}
}

// Concurrent appends from several fragments' producers and Done from an
// acknowledging goroutine: -race clean, and every fragment recovered.
func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, dir, func(o *Options) { o.SegmentBytes = 2000 })
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 5 {
				id, _ := j.Start(hdr, uint64(g*100+k), 0, true)
				for i := range 4 {
					j.Append(id, frame(i), i+1, 0)
				}
				j.Close(id)
				if k%2 == 0 {
					j.Done(id)
				}
			}
		}()
	}
	wg.Wait()
	j.Shutdown()
	j2, got, warn := open(t, dir)
	defer j2.Shutdown()
	if len(got) != 8 || len(warn) != 0 {
		t.Fatalf("recovered %d fragments (want the 8 not done), warnings %v", len(got), warn)
	}
}

func onlySegment(t *testing.T, dir string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.kvsj"))
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	return segs[0]
}

func countSegments(t *testing.T, dir string) int {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.kvsj"))
	return len(segs)
}

func FuzzRecover(f *testing.F) {
	dir := f.TempDir()
	j, _, _, err := Open(Options{Dir: dir, MaxBytes: 1 << 20, NoSync: true, Block: true})
	if err != nil {
		f.Fatal(err)
	}
	id, _ := j.Start(hdr, 1, 2, true)
	j.Append(id, []byte("frame one"), 1, 3)
	j.Close(id)
	j.Done(id)
	j.Shutdown()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.kvsj"))
	for _, s := range segs {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, segName(0)), b, 0o600)
		j, frags, _, err := Open(Options{Dir: dir, MaxBytes: 1 << 20, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, fr := range frags {
			if fr.Frames <= 0 || len(fr.Data) == 0 {
				t.Fatalf("recovered an empty fragment %+v", fr)
			}
		}
		if err := j.Shutdown(); err != nil {
			t.Fatal(err)
		}
	})
}

var _ = fmt.Sprint
