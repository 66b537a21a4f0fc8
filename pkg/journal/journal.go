// Package journal keeps a stream's fragments on disk until the service has
// them, so that a producer that crashes, is killed or loses power recovers
// every frame it had accepted and uploads it on its next start.
//
// A journal is one directory per stream, locked by the process that has it
// open. It holds segment files of checksummed records, appended in order:
// the Matroska header a fragment is sent with, the start of a fragment, its
// bytes frame by frame, its close, the service's acknowledgement that it
// received it (RECEIVED, before it is persisted), and the final
// acknowledgement of it ("done"). A segment file is deleted once every fragment with bytes
// in it is done. Recovery reads the records back to the last one whose
// checksum holds: a write torn at any byte loses at most the frame it was
// writing, and a fragment is never handed back with bytes that were not
// written as they were appended.
//
// Records are written by a goroutine of the journal, so that a slow disk
// (an SD card) does not stall the caller; Options.Block chooses between
// waiting for room (offline uploads) and letting the disk fall behind, at
// the cost of the fragments it could not keep (live streams).
//
// It imports the standard library only.
package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Record layout: length (uint32, of type+payload), CRC-32C (Castagnoli) of
// type+payload, type (1 byte), payload. Integers are big-endian.
const (
	recOpen  = 2 // fragment u64, timecode u64, start i64, keyframe u8, Matroska header bytes
	recData  = 3 // fragment u64, offset u64, frames u32, last i64, bytes
	recClose = 4 // fragment u64
	recDone  = 5 // fragment u64
	// recReceived: the service acknowledged the fragment RECEIVED (not yet
	// PERSISTED): resent after a crash, the stream may hold it twice.
	recReceived = 6 // fragment u64

	recOverhead = 9
	// maxRecord bounds one record: a frame of a fragment (at most 50 MB)
	// plus the record's fields.
	maxRecord = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors.
var (
	// ErrLocked: another process (or another element of this one) has the
	// stream's journal open.
	ErrLocked = errors.New("journal: the stream's directory is in use by another producer")
	// ErrFull: the journal holds Options.MaxBytes.
	ErrFull = errors.New("journal: the storage bound is reached")
	// ErrFailed wraps the write error that stopped the journal.
	ErrFailed = errors.New("journal: writing to disk failed")
	// ErrClosed: the journal was closed.
	ErrClosed = errors.New("journal: closed")
	// ErrDamaged: bytes read back (Read) are not what was written: the
	// file was changed, truncated or removed by someone else.
	ErrDamaged = errors.New("journal: a record read back is damaged")
	// ErrNotWritten: Read of a fragment whose bytes are not all on disk.
	ErrNotWritten = errors.New("journal: the fragment is not (completely) on disk")
)

// Options configures a journal.
type Options struct {
	// Dir is the stream's directory; it is created if missing.
	Dir string
	// MaxBytes bounds the files on disk. Required.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file starts. It
	// defaults to 8 MiB (or MaxBytes/4 if that is less).
	SegmentBytes int64
	// QueueBytes bounds the records waiting to be written. It defaults to
	// 4 MiB.
	QueueBytes int64
	// Block makes appends wait for room in the queue. Without it an append
	// that finds the queue full is not written, and neither is the rest of
	// its fragment (Lagging reports how many fragments that cost).
	Block bool
	// WriteWait bounds how long an append waits for its record to be
	// written when Block is off. It defaults to 20 ms.
	WriteWait time.Duration
	// KeepBytes bounds the bytes of recovered fragments that Open returns
	// in Fragment.Data, oldest fragments first (whole fragments); the
	// others come back with Data nil, to be read with Read when they are
	// needed. 0 returns every fragment's bytes.
	KeepBytes int64
	// NoSync skips the fsyncs at each fragment close (tests).
	NoSync bool
	// OpenFile opens segment files; default os.OpenFile. Tests slow it down
	// or make it fail.
	OpenFile func(name string, flag int, perm os.FileMode) (File, error)
}

// File is what the journal writes to.
type File interface {
	io.Writer
	io.ReaderAt
	Sync() error
	Close() error
	Truncate(size int64) error
}

// Fragment is a fragment read back from the journal.
type Fragment struct {
	ID       uint64
	Header   []byte // the Matroska header it is sent with
	Timecode uint64
	Start    time.Duration
	Last     time.Duration
	Frames   int
	Keyframe bool
	// Data holds the fragment's complete frames as they were appended;
	// nil if Options.KeepBytes left them on disk (Read returns them).
	Data []byte
	// Size is the length of the fragment's complete frames.
	Size int
	// Closed reports whether the producer closed the fragment; an open one
	// ends at its last complete frame.
	Closed bool
	// Received reports that the service had acknowledged the fragment
	// RECEIVED (not PERSISTED): the stream may already hold it.
	Received bool
}

type segment struct {
	n         uint64
	path      string
	size      int64
	frags     map[uint64]bool // fragments with records here
	dirSynced bool            // its directory entry is on disk
}

type fragState struct {
	segs      []uint64
	done      bool
	gapped    bool  // a record of it was not written: nothing more is
	recovered bool  // read back by Open: its bytes are on disk
	off       int64 // bytes queued so far
	lastSeq   uint64
	// extents are its data records in the files, in order (Read).
	extents []extent
}

// extent is a data record in a segment file: where it starts and its
// length, framing included.
type extent struct {
	seg uint64
	off int64
	n   int
}

// Journal is safe for concurrent use.
type Journal struct {
	opts Options
	lock *os.File

	mu       sync.Mutex
	cond     *sync.Cond
	queue    [][]byte // encoded records waiting for the writer
	queued   int64
	segs     []*segment
	cur      *segment
	curFile  File
	onDisk   int64
	frags    map[uint64]*fragState
	nextFrag uint64
	err      error
	closed   bool
	lagging  int
	enqSeq   uint64 // records queued since Open
	doneSeq  uint64 // records written (or given up on after a failure)
	behind   bool   // a bounded wait ran out: appends do not wait until the queue drains
	written  int64  // bytes written, records included (write amplification)
	syncs    int
	writer   chan struct{}
}

// Open opens (creating it if need be) the journal in opts.Dir, takes its
// lock and reads back the fragments that are not done, oldest first.
// Damaged records are reported in warnings, never returned as data.
func Open(opts Options) (*Journal, []Fragment, []string, error) {
	if opts.MaxBytes <= 0 {
		return nil, nil, nil, fmt.Errorf("journal: MaxBytes must be positive")
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = min(8<<20, max(opts.MaxBytes/4, 64<<10))
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = 4 << 20
	}
	if opts.WriteWait <= 0 {
		opts.WriteWait = 20 * time.Millisecond
	}
	if opts.OpenFile == nil {
		opts.OpenFile = func(name string, flag int, perm os.FileMode) (File, error) { return os.OpenFile(name, flag, perm) }
	}
	if fi, err := os.Stat(opts.Dir); err == nil && !fi.IsDir() {
		return nil, nil, nil, fmt.Errorf("journal: %s is not a directory", opts.Dir)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, nil, nil, fmt.Errorf("journal: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(opts.Dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("journal: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil, nil, fmt.Errorf("%w: %s", ErrLocked, opts.Dir)
		}
		return nil, nil, nil, fmt.Errorf("journal: locking %s: %w", opts.Dir, err)
	}
	j := &Journal{opts: opts, lock: lock, frags: map[uint64]*fragState{}, writer: make(chan struct{})}
	j.cond = sync.NewCond(&j.mu)
	frags, warnings, err := j.recover()
	if err != nil {
		lock.Close()
		return nil, nil, nil, err
	}
	if err := j.newSegment(); err != nil {
		lock.Close()
		return nil, nil, nil, err
	}
	go j.write()
	return j, frags, warnings, nil
}

func segName(n uint64) string { return fmt.Sprintf("%016d.kvsj", n) }

// recover reads every segment, keeps the fragments not done and deletes
// segments that hold nothing else.
func (j *Journal) recover() ([]Fragment, []string, error) {
	nums, err := segmentNumbers(j.opts.Dir)
	if err != nil {
		return nil, nil, err
	}
	rec := &recovery{keepBytes: j.opts.KeepBytes, byID: map[uint64]*Fragment{}, extents: map[uint64][]extent{}, keep: map[uint64]bool{}}
	var warnings []string
	for i, n := range nums {
		seg, recs, warning := j.readSegment(n, i == len(nums)-1)
		if warning != "" {
			warnings = append(warnings, warning)
		}
		if seg == nil {
			continue
		}
		for _, r := range recs {
			rec.apply(seg, r)
		}
		j.segs = append(j.segs, seg)
		j.onDisk += seg.size
	}
	j.nextFrag = max(j.nextFrag, rec.nextFrag)
	out := rec.pending()
	j.adopt(rec)
	j.dropDoneSegments(nil)
	sort.SliceStable(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out, warnings, nil
}

// segmentNumbers lists the segments in dir, in order.
func segmentNumbers(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var nums []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".kvsj") || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, ".kvsj"), 10, 64)
		if err != nil {
			continue
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	return nums, nil
}

// readSegment reads segment n and returns its whole records. Where it is
// damaged, the records after the damage are ignored; the last segment
// (last) is instead truncated there, since its end is where a write was
// torn. warning, if not empty, says what was lost; seg is nil if the
// segment could not be read at all.
func (j *Journal) readSegment(n uint64, last bool) (seg *segment, recs []record, warning string) {
	seg = &segment{n: n, path: filepath.Join(j.opts.Dir, segName(n)), frags: map[uint64]bool{}}
	b, err := os.ReadFile(seg.path)
	if err != nil {
		return nil, nil, fmt.Sprintf("journal: %s cannot be read (%v): its fragments are lost", seg.path, err)
	}
	good, recs, bad := scan(b)
	if bad != "" {
		if last {
			// The last segment ends where a write was torn.
			if err := os.Truncate(seg.path, good); err != nil {
				warning = fmt.Sprintf("journal: truncating the torn end of %s: %v", seg.path, err)
			}
		} else {
			warning = fmt.Sprintf("journal: %s is damaged at byte %d (%s): the records after it are ignored", seg.path, good, bad)
		}
	}
	seg.size = good
	return seg, recs, warning
}

// recovery is what recover has learnt from the records read so far.
type recovery struct {
	keepBytes int64 // Options.KeepBytes
	byID      map[uint64]*Fragment
	extents   map[uint64][]extent
	keep      map[uint64]bool // fragments whose bytes are returned (KeepBytes)
	kept      int64
	order     []uint64 // fragment IDs in the order they were opened
	nextFrag  uint64   // above every fragment ID seen
}

// apply applies record r of segment seg.
func (rc *recovery) apply(seg *segment, r record) {
	switch r.typ {
	case recOpen:
		rc.nextFrag = max(rc.nextFrag, r.id+1)
		if _, dup := rc.byID[r.id]; dup {
			return
		}
		rc.byID[r.id] = &Fragment{ID: r.id, Header: r.data, Timecode: r.timecode, Start: r.start, Last: r.start, Keyframe: r.key}
		rc.keep[r.id] = rc.keepBytes <= 0 || rc.kept < rc.keepBytes
		rc.order = append(rc.order, r.id)
		seg.frags[r.id] = true
	case recData:
		rc.data(seg, r)
	case recClose:
		if f := rc.byID[r.id]; f != nil {
			f.Closed = true
		}
	case recDone:
		if f := rc.byID[r.id]; f != nil {
			f.Frames = -1 // done
			if rc.keep[r.id] {
				rc.kept -= int64(len(f.Data))
				f.Data, rc.keep[r.id] = nil, false
			}
		}
	case recReceived:
		if f := rc.byID[r.id]; f != nil {
			f.Received = true
		}
	}
}

// data applies a data record r of segment seg.
func (rc *recovery) data(seg *segment, r record) {
	f := rc.byID[r.id]
	if f == nil || int64(f.Size) != r.off {
		// A gap (the disk fell behind) or bytes of a fragment whose start
		// was lost: keep what is whole.
		if f != nil {
			f.Closed = true
		}
		return
	}
	if f.Closed && r.off != 0 {
		return
	}
	if rc.keep[r.id] {
		f.Data = append(f.Data, r.data...)
		rc.kept += int64(len(r.data))
	}
	f.Size += len(r.data)
	f.Frames, f.Last = int(r.frames), r.last
	rc.extents[r.id] = append(rc.extents[r.id], extent{seg: seg.n, off: r.pos, n: r.n})
	seg.frags[r.id] = true
}

// pending returns the fragments not done, in the order they were opened;
// a fragment with no frame counts as done.
func (rc *recovery) pending() []Fragment {
	var out []Fragment
	for _, id := range rc.order {
		f := rc.byID[id]
		if f.Frames < 0 {
			continue
		}
		if f.Frames == 0 || f.Size == 0 {
			f.Frames = -1
			continue
		}
		out = append(out, *f)
	}
	return out
}

// adopt gives the journal the state of the recovered fragments: they are
// the caller's now, and it marks them done as it finishes with them; their
// records stay until then. Segments forget the fragments that are done.
func (j *Journal) adopt(rc *recovery) {
	for _, seg := range j.segs {
		for id := range seg.frags {
			f := rc.byID[id]
			if f == nil || f.Frames < 0 {
				delete(seg.frags, id)
				continue
			}
			st := j.frags[id]
			if st == nil {
				st = &fragState{off: int64(f.Size), gapped: true, recovered: true, extents: rc.extents[id]}
				j.frags[id] = st
			}
			st.segs = append(st.segs, seg.n)
		}
	}
}

type record struct {
	pos      int64 // offset of the record in its file
	n        int   // length of the record, framing included
	typ      byte
	id       uint64
	timecode uint64
	start    time.Duration
	key      bool
	off      int64
	frames   uint32
	last     time.Duration
	data     []byte
}

// scan decodes records from b up to the first that is torn or damaged; it
// returns the length of the good prefix and why it stopped ("" at the end).
func scan(b []byte) (int64, []record, string) {
	var out []record
	off := 0
	for off < len(b) {
		if len(b)-off < recOverhead {
			return int64(off), out, "a torn record head"
		}
		n := int(binary.BigEndian.Uint32(b[off:]))
		sum := binary.BigEndian.Uint32(b[off+4:])
		if n < 1 || n > maxRecord {
			return int64(off), out, fmt.Sprintf("a record length of %d", n)
		}
		if len(b)-off-8 < n {
			return int64(off), out, "a torn record"
		}
		body := b[off+8 : off+8+n]
		if crc32.Checksum(body, castagnoli) != sum {
			return int64(off), out, "a checksum mismatch"
		}
		r, ok := decode(body)
		if !ok {
			return int64(off), out, fmt.Sprintf("a malformed record of type %d", body[0])
		}
		r.pos, r.n = int64(off), 8+n
		out = append(out, r)
		off += 8 + n
	}
	return int64(off), out, ""
}

func decode(body []byte) (record, bool) {
	r := record{typ: body[0]}
	p := body[1:]
	u64 := func() uint64 { v := binary.BigEndian.Uint64(p); p = p[8:]; return v }
	switch r.typ {
	case recOpen:
		if len(p) < 25 {
			return r, false
		}
		r.id, r.timecode, r.start = u64(), u64(), time.Duration(u64())
		r.key = p[0] == 1
		r.data = slices.Clone(p[1:])
	case recData:
		if len(p) < 28 {
			return r, false
		}
		r.id, r.off = u64(), int64(u64())
		r.frames = binary.BigEndian.Uint32(p)
		p = p[4:]
		r.last = time.Duration(u64())
		r.data = slices.Clone(p)
	case recClose, recDone, recReceived:
		if len(p) != 8 {
			return r, false
		}
		r.id = u64()
	default:
		return r, false
	}
	return r, true
}

func encode(typ byte, fields []uint64, tail []byte, extra ...byte) []byte {
	n := 1 + 8*len(fields) + len(extra) + len(tail)
	b := make([]byte, 8, 8+n)
	b = append(b, typ)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint64(b, f)
	}
	b = append(b, extra...)
	b = append(b, tail...)
	seal(b)
	return b
}

// seal fills in the length and checksum of an encoded record.
func seal(b []byte) {
	binary.BigEndian.PutUint32(b, uint32(len(b)-8))
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(b[8:], castagnoli))
}

// Start records the start of a fragment that is sent with the Matroska
// header hdr and returns its id.
func (j *Journal) Start(hdr []byte, timecode uint64, start time.Duration, keyframe bool) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	id := j.nextFrag
	j.nextFrag++
	st := &fragState{}
	j.frags[id] = st
	k := byte(0)
	if keyframe {
		k = 1
	}
	return id, j.enqueueLocked(encode(recOpen, []uint64{id, timecode, uint64(start)}, hdr, k), st)
}

// Append records the next bytes of fragment id: whole frames, frames the
// fragment's count after them and last its greatest PTS.
func (j *Journal) Append(id uint64, data []byte, frames int, last time.Duration) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.frags[id]
	if st == nil {
		return fmt.Errorf("journal: unknown fragment %d", id)
	}
	if st.gapped {
		return nil
	}
	rec := make([]byte, 8, 8+1+28+len(data))
	rec = append(rec, recData)
	rec = binary.BigEndian.AppendUint64(rec, id)
	rec = binary.BigEndian.AppendUint64(rec, uint64(st.off))
	rec = binary.BigEndian.AppendUint32(rec, uint32(frames))
	rec = binary.BigEndian.AppendUint64(rec, uint64(last))
	rec = append(rec, data...)
	seal(rec)
	st.off += int64(len(data))
	return j.enqueueLocked(rec, st)
}

// Close records that fragment id is complete; the journal syncs the file.
func (j *Journal) Close(id uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.frags[id]
	if st == nil || st.gapped {
		return nil
	}
	return j.enqueueLocked(encode(recClose, []uint64{id}, nil), st)
}

// Received records that the service acknowledged fragment id RECEIVED but
// not yet PERSISTED: if it is recovered, it is resent and the stream may
// hold it twice (Fragment.Received).
func (j *Journal) Received(id uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.frags[id]
	if st == nil || st.done {
		return nil
	}
	j.lagAware(encode(recReceived, []uint64{id}, nil))
	return j.err
}

// Done records that fragment id needs no recovery any more (the service
// acknowledged it, or it was dropped and reported); segment files that
// hold nothing else are deleted.
func (j *Journal) Done(id uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.frags[id]
	if st == nil || st.done {
		return nil
	}
	st.done = true
	j.lagAware(encode(recDone, []uint64{id}, nil))
	return j.err
}

// lagAware queues a record that must not be dropped for lack of room (a
// done or received marker: small, one per fragment). With Block it waits
// for room; without, it goes over QueueBytes rather than wait for a slow
// disk: the caller (an acknowledgement, under the producer's lock) must
// not stall a live stream.
func (j *Journal) lagAware(rec []byte) {
	for j.opts.Block && !j.closed && j.err == nil && j.queued+int64(len(rec)) > j.opts.QueueBytes && len(j.queue) > 0 {
		j.cond.Wait()
	}
	if j.closed || j.err != nil {
		return
	}
	j.queue = append(j.queue, rec)
	j.queued += int64(len(rec))
	j.enqSeq++
	j.cond.Broadcast()
}

func (j *Journal) enqueueLocked(rec []byte, st *fragState) error {
	if j.closed {
		return ErrClosed
	}
	if j.err != nil {
		return j.err
	}
	if j.onDisk+j.queued+int64(len(rec)) > j.opts.MaxBytes {
		if st != nil {
			st.gapped = true
		}
		return ErrFull
	}
	for j.queued+int64(len(rec)) > j.opts.QueueBytes && len(j.queue) > 0 {
		if !j.opts.Block {
			if st != nil && !st.gapped {
				st.gapped = true
				j.lagging++
			}
			return nil
		}
		j.cond.Wait()
		if j.closed {
			return ErrClosed
		}
		if j.err != nil {
			return j.err
		}
	}
	j.queue = append(j.queue, rec)
	j.queued += int64(len(rec))
	j.enqSeq++
	if st != nil {
		st.lastSeq = j.enqSeq
	}
	j.cond.Broadcast()
	return j.awaitLocked(j.enqSeq)
}

// awaitLocked waits until the record numbered seq is written, so that a
// record appended has reached the file (the page cache: it survives the
// process being killed) when the append returns. Without Block the wait is
// bounded by WriteWait; once it ran out the journal stops waiting until the
// writer has caught up, so a slow disk never holds the caller for long.
func (j *Journal) awaitLocked(seq uint64) error {
	if !j.opts.Block && j.behind {
		return nil
	}
	timedOut := false
	var t *time.Timer
	if !j.opts.Block {
		t = time.AfterFunc(j.opts.WriteWait, func() {
			j.mu.Lock()
			timedOut = true
			j.cond.Broadcast()
			j.mu.Unlock()
		})
		defer t.Stop()
	}
	for j.doneSeq < seq && j.err == nil && !j.closed {
		if timedOut {
			j.behind = true
			return nil
		}
		j.cond.Wait()
	}
	return j.err
}

// write is the journal's writer goroutine. It writes queued records in
// runs, one write per run, starting a new segment file when the current one
// reached SegmentBytes, and syncs after a run that closes a fragment.
func (j *Journal) write() {
	defer close(j.writer)
	j.mu.Lock()
	defer j.mu.Unlock()
	var wbuf []byte
	for {
		for len(j.queue) == 0 && !j.closed {
			j.cond.Wait()
		}
		if len(j.queue) == 0 && j.closed {
			return
		}
		if j.err != nil {
			for _, rec := range j.queue {
				j.queued -= int64(len(rec))
			}
			j.doneSeq += uint64(len(j.queue))
			j.queue = nil
			j.cond.Broadcast()
			continue
		}
		if j.cur.size >= j.opts.SegmentBytes {
			if err := j.newSegmentLocked(); err != nil {
				j.err = err
				continue
			}
		}
		// The run: records up to the end of the queue or the segment.
		room := j.opts.SegmentBytes - j.cur.size
		var run [][]byte
		var size int64
		syncNeeded := false
		for _, rec := range j.queue {
			if len(run) > 0 && size+int64(len(rec)) > room {
				break
			}
			run = append(run, rec)
			size += int64(len(rec))
			syncNeeded = syncNeeded || rec[8] == recClose
		}
		j.queue = j.queue[len(run):]
		f, seg := j.curFile, j.cur
		dirSynced := seg.dirSynced
		j.mu.Unlock()
		buf := wbuf[:0] // the writer's own: reused from run to run
		for _, rec := range run {
			buf = append(buf, rec...)
		}
		if cap(buf) <= 16<<20 {
			wbuf = buf
		}
		n, err := f.Write(buf)
		if err == nil && syncNeeded && !j.opts.NoSync {
			err = f.Sync()
			if err == nil && !dirSynced {
				// A new file's name reaches the disk with its directory.
				err = syncDir(j.opts.Dir)
			}
		}
		j.mu.Lock()
		j.queued -= size
		j.doneSeq += uint64(len(run))
		if len(j.queue) == 0 {
			j.behind = false
		}
		seg.size += int64(n)
		j.onDisk += int64(n)
		j.written += int64(n)
		if syncNeeded && err == nil {
			j.syncs++
			seg.dirSynced = !j.opts.NoSync
		}
		pos := seg.size - int64(n)
		for _, rec := range run {
			if pos+int64(len(rec)) > seg.size {
				break // not written
			}
			j.noteLocked(seg, rec, pos)
			pos += int64(len(rec))
		}
		if err != nil && j.err == nil {
			j.err = fmt.Errorf("%w: %s: %w", ErrFailed, seg.path, err)
		}
		j.dropDoneSegments(seg)
		j.cond.Broadcast()
	}
}

// noteLocked records which fragments have records in seg, and where
// their data records are (rec was written at pos).
func (j *Journal) noteLocked(seg *segment, rec []byte, pos int64) {
	id := binary.BigEndian.Uint64(rec[9:])
	st := j.frags[id]
	if st == nil {
		return
	}
	if rec[8] == recData {
		st.extents = append(st.extents, extent{seg: seg.n, off: pos, n: len(rec)})
	}
	seg.frags[id] = true
	if len(st.segs) == 0 || st.segs[len(st.segs)-1] != seg.n {
		st.segs = append(st.segs, seg.n)
	}
}

// dropDoneSegments deletes the oldest segment files (never the one being
// written) while all of their fragments are done, and forgets done
// fragments with no file left. Files go oldest first, so a done record is
// never deleted before the records of the fragment it ends.
func (j *Journal) dropDoneSegments(_ *segment) {
	n := 0
	for _, seg := range j.segs {
		if (seg == j.cur && j.curFile != nil) || !j.allDoneLocked(seg) {
			break
		}
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			break
		}
		j.onDisk -= seg.size
		n++
	}
	if n == 0 {
		return
	}
	gone := map[uint64]bool{}
	for _, seg := range j.segs[:n] {
		gone[seg.n] = true
	}
	j.segs = slices.Delete(j.segs, 0, n)
	for id, st := range j.frags {
		if !st.done {
			continue
		}
		st.segs = slices.DeleteFunc(st.segs, func(x uint64) bool { return gone[x] })
		if len(st.segs) == 0 {
			delete(j.frags, id)
		}
	}
}

func (j *Journal) allDoneLocked(seg *segment) bool {
	for id := range seg.frags {
		if st := j.frags[id]; st != nil && !st.done {
			return false
		}
	}
	return true
}

// syncDir syncs a directory: the names of the files created in it.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (j *Journal) newSegment() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.newSegmentLocked()
}

func (j *Journal) newSegmentLocked() error {
	n := uint64(0)
	for _, s := range j.segs {
		n = max(n, s.n+1)
	}
	seg := &segment{n: n, path: filepath.Join(j.opts.Dir, segName(n)), frags: map[uint64]bool{}}
	f, err := j.opts.OpenFile(seg.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	if j.curFile != nil {
		j.curFile.Close()
	}
	j.cur, j.curFile = seg, f
	j.segs = append(j.segs, seg)
	return nil
}

// Written reports whether every record of fragment id appended so far is
// in its file (a fragment read back by Open is), so that Read returns its
// bytes.
func (j *Journal) Written(id uint64) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.frags[id]
	if st == nil || st.done {
		return false
	}
	if st.recovered {
		return true
	}
	return !st.gapped && j.err == nil && j.doneSeq >= st.lastSeq
}

// Read reads the bytes of fragment id back from its files, checking each
// record's checksum: the caller may drop a fragment from memory once
// Written reports it on disk, and read it back when it needs it. It reads
// without holding the journal's lock: appends go on meanwhile.
func (j *Journal) Read(id uint64) ([]byte, error) {
	j.mu.Lock()
	st := j.frags[id]
	if st == nil || st.done || (!st.recovered && (st.gapped || j.doneSeq < st.lastSeq)) {
		j.mu.Unlock()
		return nil, fmt.Errorf("%w: fragment %d", ErrNotWritten, id)
	}
	exts := slices.Clone(st.extents)
	size := st.off
	open := j.opts.OpenFile
	j.mu.Unlock()
	data := make([]byte, 0, size)
	files := map[uint64]File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, x := range exts {
		f := files[x.seg]
		if f == nil {
			path := filepath.Join(j.opts.Dir, segName(x.seg))
			var err error
			if f, err = open(path, os.O_RDONLY, 0); err != nil {
				return nil, fmt.Errorf("%w: fragment %d: %w", ErrDamaged, id, err)
			}
			files[x.seg] = f
		}
		b := make([]byte, x.n)
		if _, err := f.ReadAt(b, x.off); err != nil {
			return nil, fmt.Errorf("%w: fragment %d: %s at %d: %w", ErrDamaged, id, segName(x.seg), x.off, err)
		}
		_, recs, bad := scan(b)
		if bad != "" || len(recs) != 1 || recs[0].typ != recData || recs[0].id != id || recs[0].off != int64(len(data)) {
			return nil, fmt.Errorf("%w: fragment %d: %s at byte %d", ErrDamaged, id, segName(x.seg), x.off)
		}
		data = append(data, recs[0].data...)
	}
	if int64(len(data)) != size {
		return nil, fmt.Errorf("%w: fragment %d: %d bytes read back, %d written", ErrDamaged, id, len(data), size)
	}
	return data, nil
}

// Err returns the error that stopped the journal, if any.
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Stats are the journal's counters.
type Stats struct {
	OnDisk  int64 // bytes in segment files
	Written int64 // bytes written since Open, record framing included
	Syncs   int   // fsyncs of segment files
	Lagging int   // fragments not kept whole because the disk fell behind
	Pending int64 // bytes queued for the writer
}

// Stats returns the journal's counters.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return Stats{OnDisk: j.onDisk, Written: j.written, Syncs: j.syncs, Lagging: j.lagging, Pending: j.queued}
}

// Flush waits until every queued record is written (or the journal failed).
func (j *Journal) Flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.doneSeq < j.enqSeq && j.err == nil { // the queue empties before its run is written
		j.cond.Wait()
	}
	return j.err
}

// Shutdown writes what is queued, closes the files and releases the lock.
// Fragments not done stay on disk for the next Open.
func (j *Journal) Shutdown() error { return j.ShutdownContext(context.Background()) }

// ShutdownContext is Shutdown bounded by ctx: a disk that does not finish
// writing returns ctx's error, and the files are closed and the lock
// released when (if) it does.
func (j *Journal) ShutdownContext(ctx context.Context) error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.cond.Broadcast()
	j.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- j.finish() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: the disk did not finish writing: %w", ErrFailed, ctx.Err())
	}
}

// finish waits for the writer, then closes the files and the lock.
func (j *Journal) finish() error {
	<-j.writer
	j.mu.Lock()
	defer j.mu.Unlock()
	var err error
	if j.curFile != nil {
		if !j.opts.NoSync {
			j.curFile.Sync()
		}
		err = j.curFile.Close()
		j.curFile = nil
	}
	j.dropDoneSegments(nil) // the current file too, now that it is closed
	j.lock.Close()
	if j.err != nil {
		return j.err
	}
	return err
}
