package sink

import (
	"github.com/kvsgo/kvsgo/pkg/fragment"
	"github.com/kvsgo/kvsgo/pkg/kvs"
)

// The live edge. A writer that has sent everything of the fragment being
// built parks and leaves an edge: the fragment, how much of it is written,
// and the connection. The next Put that adds to that fragment writes the
// new bytes itself, without waiting for the network (kvs.PutMedia.TryWrite),
// instead of waking the writer: a live frame then costs one write and no
// goroutine hand-off. Whatever the kernel does not take at once is left to
// the writer, which is woken for it, so Put never waits for the network and
// a stalled connection still fills the store (and drops, when realtime)
// as before.
type edge struct {
	e     *entry // the open fragment the writer waits on (s.inflight)
	off   int    // bytes of e written
	pm    *kvs.PutMedia
	ss    *sessState
	busy  bool  // a Put is writing
	flush bool  // a Put left part of a chunk for the writer (Flush)
	err   error // a Put's write failed: the session's end
}

// edgeTakesLocked reports whether the frame just added to cur will be
// written by its Put (takeEdgeLocked), so that the writer need not wake.
func (s *Sink) edgeTakesLocked(cur *fragment.Fragment) bool {
	ed := s.edge
	return ed != nil && !ed.busy && !ed.flush && ed.err == nil && s.av == nil &&
		ed.e.frag == cur && len(ed.e.frag.Data) > ed.off
}

// takeEdgeLocked hands the unwritten bytes of the edge fragment to the
// calling Put, or returns nil.
func (s *Sink) takeEdgeLocked() (*edge, []byte) {
	ed := s.edge
	if ed == nil || !s.edgeTakesLocked(ed.e.frag) {
		return nil, nil
	}
	ed.busy = true
	d := ed.e.frag.Data
	return ed, d[ed.off:len(d):len(d)]
}

// writeEdge writes chunk, taken at the edge, without waiting; the writer is
// woken only when it has something to do: the rest of a chunk, a failure,
// or its own wake-up came while this Put was writing.
func (s *Sink) writeEdge(ed *edge, chunk []byte) {
	ok, done, err := ed.pm.TryWrite(chunk)
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ed.busy = false
	switch {
	case err != nil:
		ed.err = err
	case !ok:
		// Not possible on this connection: the writer writes it (the
		// edge is not left on such connections; this is a safeguard).
	default:
		ed.off += len(chunk)
		s.metrics.BytesSent += uint64(len(chunk))
		ed.ss.sentAny = true
		if done {
			s.writtenLocked(ed.e, ed.off, now)
		} else {
			ed.flush = true
		}
	}
	if err != nil || !ok || !done || s.edge != ed {
		s.wakeLocked()
	}
}

// leaveEdgeLocked is the writer taking its work back from the edge after
// a wake-up: it waits for a Put still writing, then returns the edge's
// offset, whether a Flush is due, and a Put's write error.
func (s *Sink) leaveEdgeLocked(ed *edge) (off int, flush bool, err error) {
	if s.edge == ed {
		s.edge = nil
	}
	for ed.busy {
		ch := s.changedLocked()
		s.mu.Unlock()
		<-ch // writeEdge wakes: s.edge is no longer ed
		s.mu.Lock()
	}
	return ed.off, ed.flush, ed.err
}

// flushEdge finishes the chunk a Put left in part, waiting for the
// network, then counts the frames it completed.
func (s *Sink) flushEdge(ed *edge) error {
	if err := ed.pm.Flush(); err != nil {
		return err
	}
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	s.writtenLocked(ed.e, ed.off, now)
	s.mu.Unlock()
	return nil
}

// edgeable reports whether a writer may leave an edge on pm's connection:
// realtime and near-realtime streams (offline input coalesces instead),
// single-track, on a connection that can write without waiting.
func (s *Sink) edgeable(pm *kvs.PutMedia) bool {
	return s.cfg.StreamingType != Offline && s.av == nil && pm.CanTryWrite()
}
