package sink

import (
	"errors"
	"fmt"
	"path/filepath"
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
}

// journalMargin is how far the journal may exceed StorageSize: record
// framing, and segment files kept until their oldest fragment is done.
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
		Block: s.cfg.StreamingType == Offline,
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
		e := &entry{hdr: hdr, putAt: s.cfg.Clock.Now(), jid: f.ID, journaled: len(f.Data), recovered: true,
			frag: &fragment.Fragment{Seq: uint64(i), Timecode: f.Timecode, Start: f.Start, Last: f.Last, Frames: f.Frames,
				Keyframe: f.Keyframe, Data: f.Data, Closed: true}}
		s.entries = append(s.entries, e)
		s.stored += int64(len(f.Data))
		rep.Fragments++
		rep.Frames += f.Frames
		rep.To = max(rep.To, f.Last)
	}
	s.builder.SetNextSeq(uint64(len(frags)))
	return rep, nil
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

// journalDoneLocked marks e's fragment as needing no recovery.
func (s *Sink) journalDoneLocked(e *entry) {
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

// closeJournal writes what is queued and releases the journal; fragments
// not done stay on disk for the next run.
func (s *Sink) closeJournal() {
	s.mu.Lock()
	j := s.journal
	s.journal = nil
	s.mu.Unlock()
	if j != nil {
		if err := j.Shutdown(); err != nil {
			s.emit(Event{Kind: EventWarning, Message: fmt.Sprintf("storage-path: %v", err)})
		}
	}
}
