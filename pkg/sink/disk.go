package sink

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/kvsgo/kvsgo/pkg/fragment"
	"github.com/kvsgo/kvsgo/pkg/journal"
)

// The disk-backed store (Config.StoragePath): every fragment the store
// holds is also appended, frame by frame, to a journal in
// <StoragePath>/stream-<name>/, and marked done when it leaves the store.
// On Start the fragments an earlier run left there (a crash, a kill, a
// power cut) are put back at the front of the store, with the header they
// were built for, and are uploaded first, on their own connection(s),
// while new frames are accepted behind them.

// Recovered describes the fragments an earlier run left in the journal.
type Recovered struct {
	Fragments, Frames int
	// From and To are the stream times (epoch) of the first and last
	// recovered frame.
	From, To time.Duration
	// Received counts the recovered fragments that the service had
	// acknowledged RECEIVED but not PERSISTED before the earlier run
	// ended: they are resent, and the stream may hold them twice.
	// ReceivedTimecodes are their fragment timecodes.
	Received          int
	ReceivedTimecodes []uint64
}

// journalBytes bounds the journal's files: StorageSize and a margin for record
// framing and segment files kept until their oldest fragment is done.
func journalBytes(storage int64) int64 { return storage + storage/8 + 16<<20 }

// JournalDir is the directory of a stream's journal under storagePath.
// Streams of several elements share storagePath without mixing.
func JournalDir(storagePath, stream string) string {
	return filepath.Join(storagePath, "stream-"+stream)
}

// openJournal opens the journal and puts what it recovered in the store.
// It returns the recovery report (nil if nothing was recovered).
// ErrLocked is an error: another producer streams the same stream from
// the same directory. Any other failure is a warning, and the stream goes
// on with the in-memory store.
func (s *Sink) openJournal() (*Recovered, error) {
	dir := JournalDir(s.cfg.StoragePath, s.cfg.StreamName)
	j, frags, warnings, err := journal.Open(journal.Options{
		Dir: dir, MaxBytes: journalBytes(s.cfg.StorageSize),
		// Offline waits for the disk as it waits for the service; a live
		// stream never stalls on a slow disk.
		Block:    s.cfg.StreamingType == Offline,
		OpenFile: s.cfg.StorageOpenFile,
		// Recovered fragments beyond the memory bound stay on disk until
		// they are sent.
		KeepBytes: s.cfg.StorageMemory,
	})
	for _, w := range warnings {
		s.emit(Event{Kind: EventWarning, Message: "storage-path: " + w})
	}
	if errors.Is(err, journal.ErrLocked) {
		return nil, fmt.Errorf("%w: storage-path: %w (another element or process is streaming %s from it)", ErrSettings, err, s.cfg.StreamName)
	}
	if err != nil {
		s.emit(Event{Kind: EventWarning, Message: fmt.Sprintf("storage-path: %v: fragments are kept in memory only", err)})
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal = j
	if len(frags) == 0 {
		return nil, nil
	}
	rep := &Recovered{From: frags[0].Start}
	var hdr *header
	for i, f := range frags {
		if hdr == nil || string(hdr.bytes) != string(f.Header) {
			hdr = &header{bytes: f.Header}
		}
		e := &entry{hdr: hdr, putAt: s.cfg.Clock.Now(), jid: f.ID, journaled: f.Size, recovered: true, jreceived: f.Received,
			frag: &fragment.Fragment{Seq: uint64(i), Timecode: f.Timecode, Start: f.Start, Last: f.Last, Frames: f.Frames,
				Keyframe: f.Keyframe, Data: f.Data, Closed: true}}
		if f.Data == nil { // left on disk: read back when it is sent
			e.spilled, e.spilledTo = f.Size, j
			s.spilledBytes += int64(f.Size)
		}
		s.entries = append(s.entries, e)
		s.stored += int64(f.Size)
		rep.Fragments++
		rep.Frames += f.Frames
		rep.To = max(rep.To, f.Last)
		if f.Received {
			rep.Received++
			rep.ReceivedTimecodes = append(rep.ReceivedTimecodes, f.Timecode)
		}
	}
	s.builder.SetNextSeq(uint64(len(frags)))
	s.spillLocked(0) // what memory cannot hold waits on disk
	return rep, nil
}

// reportRecovered emits EventRecovered, and a warning when fragments the
// service had acknowledged RECEIVED are resent.
func (s *Sink) reportRecovered(rep *Recovered) {
	s.emit(Event{Kind: EventRecovered, Recovered: rep, Message: fmt.Sprintf(
		"recovered %d frame(s) in %d fragment(s) that an earlier run left in storage-path (stream time %v to %v): they are uploaded first",
		rep.Frames, rep.Fragments, time.Unix(0, int64(rep.From)).UTC().Format(time.RFC3339Nano), time.Unix(0, int64(rep.To)).UTC().Format(time.RFC3339Nano))})
	if rep.Received > 0 {
		s.emit(Event{Kind: EventWarning, Message: fmt.Sprintf(
			"storage-path: %d recovered fragment(s) had been acknowledged RECEIVED (not PERSISTED) before the earlier run ended: they are resent, and the stream may hold them twice (fragment timecodes %v)",
			rep.Received, rep.ReceivedTimecodes)})
	}
}

// journalLocked appends what the fragment of e gained since the last call
// (whole frames), starting the fragment in the journal first. A journal
// that failed is dropped with one warning: the store keeps every fragment
// in memory as before.
func (s *Sink) journalLocked(e *entry) {
	if s.journal == nil || e.recovered {
		return
	}
	var err error
	if !e.jstarted {
		e.jstarted = true
		e.jid, err = s.journal.Start(e.hdr.bytes, e.frag.Timecode, e.frag.Start, e.frag.Keyframe)
	}
	if err == nil && len(e.frag.Data) > e.journaled {
		err = s.journal.Append(e.jid, e.frag.Data[e.journaled:], e.frag.Frames, e.frag.Last)
		e.journaled = len(e.frag.Data)
	}
	if err == nil && e.frag.Closed && !e.jclosed {
		e.jclosed = true
		err = s.journal.Close(e.jid)
	}
	s.journalErrLocked(err)
}

// journalReceivedLocked records that the service acknowledged e's fragment
// RECEIVED; it matters only while the fragment is not final (PERSISTED is
// awaited): recovered after a crash, it is resent and reported as one the
// stream may hold twice.
func (s *Sink) journalReceivedLocked(e *entry) {
	if s.journal == nil || e.jreceived || (!e.jstarted && !e.recovered) || s.finalLocked(e) {
		return
	}
	e.jreceived = true
	s.journalErrLocked(s.journal.Received(e.jid))
}

// journalDoneLocked marks e's fragment as needing no recovery.
func (s *Sink) journalDoneLocked(e *entry) {
	if e.spilled > 0 {
		s.spilledBytes -= int64(e.spilled)
		e.spilled, e.spilledTo = 0, nil
	}
	if s.journal == nil || (!e.jstarted && !e.recovered) {
		return
	}
	s.journalErrLocked(s.journal.Done(e.jid))
}

func (s *Sink) journalErrLocked(err error) {
	switch {
	case err == nil:
	case errors.Is(err, journal.ErrFull):
		if !s.journalFullWarned {
			s.journalFullWarned = true
			s.queue(Event{Kind: EventWarning, Message: fmt.Sprintf("storage-path: the files reached their bound (storage-size %d MiB): fragments beyond it are kept in memory only until acknowledgements free room", s.cfg.StorageSize>>20)})
		}
	default:
		j := s.journal
		s.journal = nil
		s.queue(Event{Kind: EventWarning, Message: fmt.Sprintf("storage-path: %v: the stream goes on with the in-memory store only (every fragment not yet acknowledged is still held in memory)", err)})
		go j.Shutdown()
	}
	if s.journal != nil && !s.journalLagWarned && s.journal.Stats().Lagging > 0 {
		s.journalLagWarned = true
		s.queue(Event{Kind: EventWarning, Message: "storage-path: the disk is slower than the stream: fragments it cannot keep up with are held in memory only (they are not recovered after a crash)"})
	}
}

// reasonMemory is the Dropped reason when the store's memory
// (StorageMemory) is full and no fragment in it is on disk yet.
const reasonMemory = "storage-memory"

// size is the length of e's fragment, in memory or spilled.
func (e *entry) size() int { return len(e.frag.Data) + e.spilled }

// memoryFullLocked reports whether n more bytes exceed StorageMemory (with
// a StoragePath) once every fragment that can leave memory has (spill),
// and a fragment in memory could make room (the store's usual policy then
// drops it or waits). The fragment being built and the one being sent
// never count: memory exceeds StorageMemory by them rather than stall.
func (s *Sink) memoryFullLocked(n int64) bool {
	if s.cfg.StoragePath == "" {
		return false
	}
	s.spillLocked(n)
	if s.stored-s.spilledBytes+n <= s.cfg.StorageMemory {
		return false
	}
	for _, e := range s.entries {
		if !e.frag.Closed {
			break
		}
		if e != s.inflight && e.spilled == 0 && len(e.frag.Data) > 0 {
			return true
		}
	}
	return false
}

// spillLocked drops from memory the bytes of the oldest fragments that are
// safely on disk (closed, every byte written to the journal) until n more
// bytes fit in StorageMemory. The fragment being sent stays.
func (s *Sink) spillLocked(n int64) {
	if s.journal == nil {
		return
	}
	for _, e := range s.entries {
		if s.stored-s.spilledBytes+n <= s.cfg.StorageMemory || !e.frag.Closed {
			return
		}
		if e == s.inflight || e.spilled > 0 || len(e.frag.Data) == 0 {
			continue
		}
		if !e.recovered && !(e.jclosed && e.journaled == len(e.frag.Data)) {
			continue
		}
		if !s.journal.Written(e.jid) {
			continue
		}
		e.spilled, e.spilledTo = len(e.frag.Data), s.journal
		s.spilledBytes += int64(e.spilled)
		if !e.recovered {
			s.builder.Recycle(e.frag) // its buffer serves a new fragment
		}
		e.frag.Data = nil
	}
}

// unspill reads the bytes of a spilled fragment back from disk, without
// holding s.mu. A fragment that cannot be read back (its file was damaged
// or removed by someone else) is dropped and reported.
func (s *Sink) unspill(e *entry) {
	s.mu.Lock()
	j, id := e.spilledTo, e.jid
	s.mu.Unlock()
	var data []byte
	err := journal.ErrClosed
	if j != nil {
		data, err = j.Read(id)
	}
	s.mu.Lock()
	defer s.unlockAndFlush()
	i := slices.Index(s.entries, e)
	if i < 0 || e.spilled == 0 {
		return // dropped, or read back by someone else, meanwhile
	}
	if err != nil {
		s.queue(Event{Kind: EventWarning, Message: fmt.Sprintf("storage-path: a fragment could not be read back from disk (%v): it is dropped", err)})
		s.removeLocked(i, "storage-path", fmt.Sprintf("storage-path: the fragment could not be read back from disk: %v", err))
		return
	}
	s.spillLocked(int64(len(data))) // room for it: the fragments sent before it may leave
	s.spilledBytes -= int64(e.spilled)
	e.spilled, e.spilledTo = 0, nil
	e.frag.Data = data
}

// closeJournal writes what is queued and releases the journal; fragments
// not done stay on disk for the next run.
func (s *Sink) closeJournal() {
	s.mu.Lock()
	j := s.journal
	s.journal = nil
	s.mu.Unlock()
	if j == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.cfg.Clock.After(journalCloseWait):
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := j.ShutdownContext(ctx); err != nil {
		s.emit(Event{Kind: EventWarning, Message: fmt.Sprintf("storage-path: %v (what it had not written is recovered only as far as it got)", err)})
	}
}

// journalCloseWait bounds how long Close waits for the disk to write what
// is queued: a disk that hangs must not hang the element's shutdown.
const journalCloseWait = 10 * time.Second
