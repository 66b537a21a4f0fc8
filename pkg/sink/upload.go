package sink

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/kvsgo/kvsgo/pkg/fragment"
	"github.com/kvsgo/kvsgo/pkg/kvs"
)

func randRead(b []byte) (int, error) { return crand.Read(b) }

func rnd(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n)
}

// Write coalescing (Offline): a chunk smaller than coalesceMin of a
// fragment still being built waits coalesceWait for more frames before it
// is written.
const (
	coalesceMin  = 64 << 10
	coalesceWait = 2 * time.Millisecond
)

// errSessionEnded means the session finished its work cleanly (EOS, a new
// header needs a new session, or the connection was rotated).
var errSessionEnded = errors.New("session ended")

// errReset is a connection ended by the watchdog (staleness, latency).
type errReset struct {
	reason resetReason
	detail string
}

func (e *errReset) Error() string { return fmt.Sprintf("%s: %s", e.reason, e.detail) }

// skipError is a non-retriable ERROR ack: the fragment is skipped and the
// stream goes on at once on a new connection (the service closed this one).
type skipError struct{ err error }

func (e *skipError) Error() string { return e.err.Error() }
func (e *skipError) Unwrap() error { return e.err }

// run is the owner goroutine: one PutMedia session at a time, reconnect with
// replay after a failure, until the stream is finished or fails.
func (s *Sink) run() {
	defer close(s.done)
	ctx := s.runCtx
	failures := 0
	var outageStart time.Time
	for {
		start, ok := s.waitForWork(ctx)
		if !ok {
			if rerr := s.refusedErr(false); rerr != nil && ctx.Err() == nil {
				s.fail(rerr) // finished with fragments lost (refused.go)
			}
			return
		}
		s.refreshEndpoint(ctx)
		progress := s.progress()
		err := s.session(ctx, start)
		if s.progress() != progress {
			failures, outageStart = 0, time.Time{}
		}
		var skip *skipError
		switch {
		case err == nil:
			if rerr := s.refusedErr(false); rerr != nil {
				s.fail(rerr) // loss is never silent (refused.go)
			}
			return // finished
		case errors.Is(err, errSessionEnded):
			failures, outageStart = 0, time.Time{}
			continue
		case ctx.Err() != nil:
			return
		case errors.As(err, &skip):
			if !s.cfg.RestartOnError {
				s.fail(err)
				return
			}
			if rerr := s.refusedErr(true); rerr != nil {
				s.fail(rerr) // MaxRefusedRun in a row (refused.go)
				return
			}
			continue
		}
		var fatal *fatalError
		if errors.As(err, &fatal) || !s.cfg.RestartOnError {
			s.fail(s.withPending(err))
			return
		}
		failures++
		now := s.cfg.Clock.Now()
		if outageStart.IsZero() {
			outageStart = now
		}
		s.mu.Lock()
		s.endpointStale = true
		connected := s.metrics.Connections > 0
		s.mu.Unlock()
		why, reason := "lost", "network"
		var ae *kvs.AckError
		if r := (*errReset)(nil); errors.As(err, &r) {
			why, reason = "reset", r.reason.String()
		} else if errors.As(err, &ae) {
			why, reason = "ended by an ERROR acknowledgement", "error-ack"
		}
		if !connected && failures >= maxConnectAttempts {
			s.fail(s.withPending(fmt.Errorf("giving up after %d failed PutMedia attempts: %w", failures, err)))
			return
		}
		if connected && now.Sub(outageStart) >= s.cfg.BufferDuration {
			s.fail(s.withPending(fmt.Errorf("giving up: no working PutMedia connection for %v (buffer-duration), %d attempts: %w", now.Sub(outageStart).Round(time.Millisecond), failures, err)))
			return
		}
		s.emit(Event{Kind: EventConnectionLost, Reason: reason, Message: fmt.Sprintf("PutMedia connection %s (attempt %d): %v", why, failures, err)})
		select {
		case <-s.cfg.Clock.After(backoff(failures, rnd)):
		case <-ctx.Done():
			return
		}
	}
}

// withPending adds the fragments not yet finally acknowledged to a terminal
// error.
func (s *Sink) withPending(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.allFinalLocked() && (s.eofrSent || !s.eos) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, s.pendingLocked())
}

func (s *Sink) progress() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// refreshEndpoint looks the data endpoint up again when the cached one is
// older than DataEndpointTTL or a connection to it failed. A failed lookup
// keeps the old endpoint (the connection attempt then decides).
func (s *Sink) refreshEndpoint(ctx context.Context) {
	s.mu.Lock()
	stale := s.endpointStale || s.cfg.Clock.Now().Sub(s.endpointAt) >= s.cfg.DataEndpointTTL
	s.mu.Unlock()
	if !stale || s.ctl == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectionTimeout+s.cfg.CompletionTimeout)
	defer cancel()
	ep, err := s.ctl.GetDataEndpoint(cctx, s.cfg.StreamName, "PUT_MEDIA")
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.log.Debug("GetDataEndpoint failed; keeping the cached endpoint", "err", err)
		return
	}
	s.dataEndpoint, s.endpointAt, s.endpointStale = ep, s.cfg.Clock.Now(), false
}

// fatalError ends the stream without retry.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// waitForWork returns the index of the first entry that needs sending, or
// false when the stream is finished (or ctx is done).
func (s *Sink) waitForWork(ctx context.Context) (int, bool) {
	s.mu.Lock()
	defer s.unlockAndFlush()
	for {
		s.trimLocked()
		s.expireReplayLocked()
		for i, e := range s.entries {
			if e.state < stateReceived && !(e.sent && !s.cfg.FragmentAcks) {
				return i, true
			}
		}
		if s.eos && (s.eofrSent || len(s.entries) == 0) && s.allFinalLocked() {
			return 0, false
		}
		if s.eos && !s.eofrSent && len(s.entries) > 0 {
			return len(s.entries), true // only the end-of-stream tag is left to send
		}
		ch := s.changedLocked()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.mu.Lock()
			return 0, false
		}
		s.mu.Lock()
	}
}

// expireReplayLocked drops fragments that were sent on an earlier
// connection without being received, when they lie more than
// ReplayDuration before the newest frame (Realtime and NearRealtime only):
// the replay after a reconnect goes at most that far back.
func (s *Sink) expireReplayLocked() {
	if s.cfg.StreamingType == Offline || !s.cfg.FragmentAcks || len(s.entries) == 0 {
		return
	}
	newest := s.entries[len(s.entries)-1].frag.Last
	for i := 0; i < len(s.entries); i++ {
		e := s.entries[i]
		if e.state >= stateReceived || e.state == stateFailed {
			continue
		}
		if !e.tried || !e.frag.Closed || newest-e.frag.Last <= s.cfg.ReplayDuration {
			break
		}
		s.removeLocked(i, "replay-duration", "sent but not acknowledged before the connection failed, and older than replay-duration")
		i--
	}
}

func (s *Sink) allFinalLocked() bool {
	for _, e := range s.entries {
		if !s.finalLocked(e) {
			return false
		}
	}
	return true
}

// trimLocked drops finally acknowledged fragments from the front of the store.
func (s *Sink) trimLocked() {
	n := 0
	for n < len(s.entries) && s.finalLocked(s.entries[n]) && s.entries[n].frag.Closed && s.entries[n] != s.inflight {
		s.stored -= int64(s.entries[n].size())
		n++
	}
	for _, e := range s.entries[:n] {
		s.journalDoneLocked(e)
		if !e.recovered {
			s.builder.Recycle(e.frag) // acknowledged and not being written
		}
	}
	if n > 0 {
		s.entries = append(s.entries[:0], s.entries[n:]...)
		if s.stored < 0 || len(s.entries) == 0 {
			s.stored = 0
		}
		s.wakeLocked()
	}
}

// sessState is what the session, its writer and the ack handler share;
// guarded by Sink.mu.
type sessState struct {
	hdr    *header
	rotate bool // end at the next fragment boundary (connection rotation)
	// unackedSince is when the writer started a fragment with no BUFFERING
	// ack since (zero when none is waiting): the staleness clock.
	unackedSince time.Time
	sentAny      bool
}

// freshCredentials makes sure a new connection is not signed with the set
// of credentials the previous connection was rotated away from: a cache
// (which reports its credentials as expiring ExpiryWindow early) may still
// hand it out. Such a cache is invalidated so that it fetches the next set:
// one fetch, one rotation per set.
func (s *Sink) freshCredentials(ctx context.Context) {
	s.mu.Lock()
	from := s.rotatedFrom
	s.mu.Unlock()
	if from.IsZero() {
		return
	}
	c, err := s.cfg.Credentials.Retrieve(ctx)
	if err != nil || !c.CanExpire || c.Expires.After(from) {
		return
	}
	if inv, ok := s.cfg.Credentials.(interface{ Invalidate() }); ok {
		s.log.Debug("the credentials are the set the last connection was rotated away from: fetching the next set before connecting")
		inv.Invalidate()
	}
}

// expiredToken reports whether the service refused a connection because
// its credentials had expired (a token revoked early, a clock off, a
// refresh missed), and if so drops the cached credentials so that the next
// attempt fetches new ones, as the official SDK does. Any other denial
// stays fatal. The retry budget bounds a source that keeps handing out
// expired credentials.
func (s *Sink) expiredToken(err error) bool {
	var ae *kvs.APIError
	if !errors.As(err, &ae) || (ae.Code != "ExpiredTokenException" && ae.Code != "ExpiredToken") {
		return false
	}
	inv, ok := s.cfg.Credentials.(interface{ Invalidate() })
	if !ok {
		return false
	}
	s.log.Info("the service says the credentials expired: fetching new ones before reconnecting")
	inv.Invalidate()
	return true
}

// session runs one PutMedia connection starting at entry index start.
func (s *Sink) session(ctx context.Context, start int) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := s.connect(sctx, start)
	if c == nil {
		return err
	}
	pm, hdr := c.pm, c.hdr
	defer pm.Abort()
	ss := &sessState{hdr: hdr}
	wd, rot := s.newWatchdog(sctx)
	werr := make(chan error, 1)
	go func() { werr <- s.write(sctx, pm, ss, start) }()
	writing := true
	defer func() {
		// One writer at a time: this session's must be gone before the
		// next one starts, or its exit (which clears s.inflight) could
		// release the next writer's fragment while it is being sent.
		if writing {
			cancel()
			pm.Abort()
			<-werr
		}
	}()

	acks := pm.Acks()
	var drainDeadline <-chan time.Time
	tick := s.cfg.Clock.After(watchdogTick)
	for {
		// While the writer runs, store changes (a frame per Put) are its
		// business; the session waits on them only to notice the end.
		var changed <-chan struct{}
		s.mu.Lock()
		if !writing {
			changed = s.changedLocked()
		}
		done := !writing && s.sessionDoneLocked(hdr)
		s.mu.Unlock()
		if done && drainDeadline == nil {
			if err := pm.CloseBody(); err != nil {
				return err
			}
			drainDeadline = s.cfg.Clock.After(responseDrain)
		}
		select {
		case a, ok := <-acks:
			if !ok {
				if err := pm.Err(); err != nil {
					return err
				}
				if drainDeadline != nil {
					return s.endResult()
				}
				return errors.New("the service ended the PutMedia response early")
			}
			if err := s.handleAck(a, ss); err != nil {
				return err
			}
		case err := <-werr:
			writing = false
			if err != nil && !errors.Is(err, errSessionEnded) {
				return s.writeFailed(pm, ss, err)
			}
		case <-tick:
			tick = s.cfg.Clock.After(watchdogTick)
			if err := s.checkWatchdog(wd, ss, rot); err != nil {
				return err
			}
		case <-changed:
		case <-drainDeadline:
			return s.endResult()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// responseGrace is how long a session whose body write failed waits for
// the response to end: its account of the failure (an ERROR ack, a
// truncated acknowledgement) comes an instant after the connection broke.
const responseGrace = 500 * time.Millisecond

// writeFailed ends a session whose body could not be written: the
// acknowledgements still in flight are applied, and the response's own
// error, when it has one within responseGrace, is the session's.
func (s *Sink) writeFailed(pm *kvs.PutMedia, ss *sessState, err error) error {
	grace := s.cfg.Clock.After(responseGrace)
	for {
		select {
		case a, ok := <-pm.Acks():
			if !ok {
				if e := pm.Err(); e != nil {
					return e
				}
				return err
			}
			if aerr := s.handleAck(a, ss); aerr != nil {
				return aerr
			}
		case <-grace:
			if e := pm.Err(); e != nil {
				return e
			}
			return err
		}
	}
}

// conn is an open PutMedia session and the header it started with.
type conn struct {
	pm  *kvs.PutMedia
	hdr *header
}

// connect opens a PutMedia connection for the fragments from entry index
// start, sending their header, and reports it. A nil conn comes with the
// error that ends the session (errSessionEnded when there is nothing to
// send).
func (s *Sink) connect(sctx context.Context, start int) (*conn, error) {
	s.mu.Lock()
	var hdr *header
	var resumeTC uint64
	if start < len(s.entries) {
		hdr = s.entries[start].hdr
		resumeTC = s.entries[start].frag.Timecode
	} else if len(s.entries) > 0 {
		hdr = s.entries[len(s.entries)-1].hdr
	}
	producerStart := s.producerStart
	endpoint := s.dataEndpoint
	s.mu.Unlock()
	if hdr == nil {
		return nil, errSessionEnded
	}
	tcType := kvs.TimecodeType("ABSOLUTE")
	if !s.cfg.AbsoluteFragmentTimes && s.cfg.StreamingType != Offline {
		tcType = "RELATIVE"
	}
	s.freshCredentials(sctx)
	pm, err := kvs.OpenPutMedia(sctx, kvs.PutMediaConfig{
		Endpoint: endpoint, StreamName: s.cfg.StreamName, Region: s.cfg.Region,
		Credentials: s.cfg.Credentials, HTTPClient: s.cfg.HTTPClient, Net: s.cfg.Net, UserAgent: s.cfg.UserAgent,
		TimecodeType: tcType, ProducerStart: producerStart, AckRequired: s.cfg.FragmentAcks,
		ConnectTimeout: s.cfg.ConnectionTimeout, Now: s.cfg.Clock.Now,
	}, hdr.bytes)
	if err != nil {
		if s.expiredToken(err) {
			return nil, err // retried, signed with the credentials fetched again
		}
		if errors.Is(err, kvs.ErrAccessDenied) || errors.Is(err, kvs.ErrStreamNotFound) || kvs.IsTLSError(err) {
			return nil, &fatalError{err}
		}
		return nil, err
	}
	s.mu.Lock()
	s.metrics.Connections++
	restored := s.metrics.Connections > 1
	s.mu.Unlock()
	msg := fmt.Sprintf("PutMedia connected to %s", endpoint)
	if restored {
		msg = fmt.Sprintf("PutMedia connection restored to %s, resending from fragment timecode %d", endpoint, resumeTC)
	}
	s.emit(Event{Kind: EventConnected, FragmentTimecode: resumeTC, Restored: restored, Message: msg})
	return &conn{pm: pm, hdr: hdr}, nil
}

// rotation is what a connection's planned rotation is for: the expiry of
// the credentials it was signed with, when forCreds.
type rotation struct {
	forCreds bool
	expires  time.Time
}

// newWatchdog arms a new connection's watchdog: staleness, latency, and a
// rotation before MaxConnectionDuration or the credentials' expiry.
func (s *Sink) newWatchdog(sctx context.Context) (*watchdog, rotation) {
	now := s.cfg.Clock.Now()
	var expires time.Time
	canExpire := false
	if c, err := s.cfg.Credentials.Retrieve(sctx); err == nil {
		expires, canExpire = c.Expires, c.CanExpire
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A set no later than the one the last rotation left (the source had
	// no newer one) is not rotated for again: one rotation per set.
	rotateAt, forCreds := rotationAt(now, s.cfg.MaxConnectionDuration, expires, canExpire && expires.After(s.rotatedFrom), s.cfg.CredentialGrace, rnd)
	wd := &watchdog{staleness: s.cfg.ConnectionStaleness, rotateAt: rotateAt,
		opened: now, lastReset: s.lastLatencyReset}
	if s.cfg.StreamingType != Offline && s.cfg.FragmentAcks {
		wd.maxLatency = s.cfg.MaxLatency
	}
	if !s.cfg.FragmentAcks {
		wd.staleness = 0
	}
	return wd, rotation{forCreds: forCreds, expires: expires}
}

// checkWatchdog runs the watchdog at a tick: an error resets the
// connection; a due rotation ends it at the next fragment boundary.
func (s *Sink) checkWatchdog(wd *watchdog, ss *sessState, rot rotation) error {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	r := wd.check(now, ss.unackedSince, s.oldestUnreceivedLocked())
	switch r {
	case resetRotate:
		ss.rotate = true
		wd.rotateAt = time.Time{}
		if rot.forCreds {
			s.rotatedFrom = rot.expires
		}
		s.wakeLocked()
	case resetLatency:
		s.lastLatencyReset = now
	}
	s.mu.Unlock()
	switch r {
	case resetStale:
		return &errReset{r, fmt.Sprintf("no BUFFERING acknowledgement for %v", s.cfg.ConnectionStaleness)}
	case resetLatency:
		return &errReset{r, fmt.Sprintf("the oldest fragment not received by the service waited more than %v", s.cfg.MaxLatency)}
	case resetRotate:
		s.log.Info("rotating the PutMedia connection at the next fragment boundary")
	}
	return nil
}

// oldestUnreceivedLocked is when the oldest fragment the service has not
// yet received was started (zero if none).
func (s *Sink) oldestUnreceivedLocked() time.Time {
	for _, e := range s.entries {
		if e.state < stateReceived {
			return e.putAt
		}
	}
	return time.Time{}
}

// endResult is what a cleanly closed session means: finished at EOS, or
// ended so that the next session can send a new header.
func (s *Sink) endResult() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trimLocked()
	if s.eos && s.eofrSent && s.allFinalLocked() {
		return nil
	}
	return errSessionEnded
}

// sessionDoneLocked: everything this session sent is finally acknowledged
// and the writer stopped (end of stream, or a header change).
func (s *Sink) sessionDoneLocked(hdr *header) bool {
	for _, e := range s.entries {
		if e.hdr == hdr && e.sent && !s.finalLocked(e) {
			return false
		}
	}
	return true
}

// write streams fragment bytes as they are produced, from entry start on.
// It returns errSessionEnded after the end-of-stream tag, before a fragment
// that needs another header, and at the first fragment boundary after a
// rotation was asked for.
func (s *Sink) write(ctx context.Context, pm *kvs.PutMedia, ss *sessState, start int) error {
	w := &writer{s: s, ctx: ctx, pm: pm, ss: ss, next: ^uint64(0)}
	s.mu.Lock()
	if start < len(s.entries) {
		w.next = s.entries[start].frag.Seq
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight = nil
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		w.countLocked()
		st := w.stepLocked()
		s.mu.Unlock()
		if done, err := w.do(st); done {
			return err
		}
	}
}

// writer is one session's writer: where it is in the store, and what it
// wrote since it last held the lock.
type writer struct {
	s         *Sink
	ctx       context.Context
	pm        *kvs.PutMedia
	ss        *sessState
	next      uint64 // the fragment being written or to write next (^0: none yet)
	off       int    // bytes of it written
	coalesced bool   // the current chunk already waited for more frames
	wrote     int    // bytes written since the lock was last held
	wroteTo   *entry
	wroteAt   time.Time
}

// writeAction is what the writer does next, decided under the lock.
type writeAction int

const (
	actAgain     writeAction = iota // look again (the fragment was skipped)
	actEnd                          // end the session after the end-of-fragment tag (or at once, if nothing was sent)
	actEndStream                    // the end of the stream: the end-of-fragment tag, then end
	actUnspill                      // read the fragment's bytes back from disk
	actChunk                        // write chunk
	actSent                         // the fragment is closed and written
	actWait                         // wait for the store to change
)

type writeStep struct {
	act    writeAction
	e      *entry
	chunk  []byte
	closed bool
	ch     <-chan struct{}
	ed     *edge
	tags   bool // actEnd: send the end-of-fragment tag first
	starve bool // actWait: a Put waits for the offline window (store.go)
}

// countLocked accounts for the bytes written since the lock was last held.
func (w *writer) countLocked() {
	if w.wrote == 0 {
		return
	}
	w.s.metrics.BytesSent += uint64(w.wrote)
	w.ss.sentAny = true
	w.wrote = 0
	w.s.writtenLocked(w.wroteTo, w.off, w.wroteAt)
}

// stepLocked decides the next step from the store.
func (w *writer) stepLocked() writeStep {
	s, ss := w.s, w.ss
	e := s.entryLocked(w.next)
	if e == nil {
		// Dropped from the store, or not produced yet: go on with the
		// first entry after it, if any.
		if n := s.nextPendingLocked(w.next); n != nil && w.off == 0 {
			e, w.next = n, n.frag.Seq
		}
	}
	switch {
	case e == nil && w.off == 0 && ss.rotate:
		return writeStep{act: actEnd, tags: ss.sentAny}
	case e == nil && s.eos:
		return writeStep{act: actEndStream}
	case e != nil && w.off == 0 && (e.state == stateFailed || e.state >= stateReceived):
		w.next = e.frag.Seq + 1
		return writeStep{act: actAgain}
	case e != nil && w.off == 0 && (e.hdr != ss.hdr || ss.rotate):
		// The next fragment needs another header, or the connection is
		// rotated: end this session with an end-of-fragment tag so the
		// last fragment is acknowledged.
		return writeStep{act: actEnd, tags: true}
	case e != nil && w.off == 0 && e.spilled > 0:
		return writeStep{act: actUnspill, e: e}
	}
	st := writeStep{e: e}
	if e != nil {
		if w.off == 0 {
			e.tried = true
			s.inflight = e
			if ss.unackedSince.IsZero() {
				ss.unackedSince = s.cfg.Clock.Now()
			}
		}
		st.chunk = e.frag.Data[w.off:len(e.frag.Data):len(e.frag.Data)]
		st.closed = e.frag.Closed
	}
	switch {
	case len(st.chunk) > 0:
		st.act = actChunk
	case e != nil && st.closed:
		st.act = actSent
	default:
		st.act, st.ch = actWait, s.changedLocked() // nothing to do until the store changes
		st.starve = s.windowWaits > 0
		if e != nil && s.edgeable(w.pm) {
			st.ed = &edge{e: e, off: w.off, pm: w.pm, ss: ss} // the next Put writes (edge.go)
			s.edge = st.ed
		}
	}
	return st
}

// do carries a step out; done: the session's writing is over, with err.
func (w *writer) do(st writeStep) (done bool, err error) {
	s := w.s
	if st.act == actSent || st.act == actWait {
		w.coalesced = false
	}
	switch st.act {
	case actAgain:
	case actEnd:
		if st.tags {
			if _, err := w.pm.Write(fragment.EndOfFragmentTags()); err != nil {
				return true, err
			}
		}
		return true, errSessionEnded
	case actEndStream:
		if _, err := w.pm.Write(fragment.EndOfFragmentTags()); err != nil {
			return true, err
		}
		s.mu.Lock()
		s.eofrSent = true
		s.wakeLocked()
		s.mu.Unlock()
		return true, errSessionEnded
	case actUnspill:
		s.unspill(st.e) // disk.go: its bytes are read back from disk
	case actChunk:
		return w.writeChunk(st)
	case actSent:
		s.mu.Lock()
		if !st.e.sent {
			s.metrics.FragmentsSent++
		}
		st.e.sent = true
		s.inflight = nil
		s.wakeLocked()
		s.mu.Unlock()
		w.next, w.off = st.e.frag.Seq+1, 0
	case actWait:
		return w.wait(st)
	}
	return false, nil
}

// writeChunk writes the unwritten bytes of a fragment, after waiting a
// moment for more when the input is a file read faster than real time.
func (w *writer) writeChunk(st writeStep) (bool, error) {
	if len(st.chunk) < coalesceMin && !st.closed && !w.coalesced && w.s.cfg.StreamingType == Offline {
		// Frames come back to back: wait a moment so that they go out in
		// one write (one chunk, one wake-up) instead of one each. A live
		// source writes each frame as it comes: its frames are apart, and
		// its latency counts.
		w.coalesced = true
		select {
		case <-w.s.cfg.Clock.After(coalesceWait):
			return false, nil
		case <-w.ctx.Done():
			return true, w.ctx.Err()
		}
	}
	w.coalesced = false
	if _, err := w.pm.Write(st.chunk); err != nil {
		return true, err
	}
	w.off += len(st.chunk)
	w.wrote, w.wroteTo, w.wroteAt = len(st.chunk), st.e, w.s.cfg.Clock.Now()
	return false, nil
}

// wait waits for the store to change; a Put may meanwhile have written at
// the live edge (edge.go), whose progress the writer takes back.
func (w *writer) wait(st writeStep) (bool, error) {
	s := w.s
	var starved <-chan time.Time
	if st.starve {
		starved = s.cfg.Clock.After(windowStarve)
	}
	select {
	case <-st.ch:
	case <-starved:
		s.mu.Lock()
		s.growWindowLocked()
		s.mu.Unlock()
	case <-w.ctx.Done():
		if st.ed != nil {
			s.mu.Lock()
			s.leaveEdgeLocked(st.ed)
			s.mu.Unlock()
		}
		return true, w.ctx.Err()
	}
	if st.ed == nil {
		return false, nil
	}
	s.mu.Lock()
	off, flush, err := s.leaveEdgeLocked(st.ed)
	s.mu.Unlock()
	if err != nil {
		return true, err
	}
	w.off = off
	if flush {
		if err := s.flushEdge(st.ed); err != nil {
			return true, err
		}
	}
	return false, nil
}

func (s *Sink) entryLocked(seq uint64) *entry {
	for _, e := range s.entries {
		if e.frag.Seq == seq {
			return e
		}
	}
	return nil
}

// nextPendingLocked returns the first entry at or after seq, if any.
func (s *Sink) nextPendingLocked(seq uint64) *entry {
	for _, e := range s.entries {
		if e.frag.Seq >= seq && seq != ^uint64(0) {
			return e
		}
	}
	return nil
}

// handleAck applies one acknowledgement. It returns an error to end the
// session (ERROR acks: the service closes the connection after one).
// Acknowledgements for fragments not in the store (never sent, or already
// trimmed), duplicates and out-of-order ones never move a fragment back.
func (s *Sink) handleAck(a kvs.Ack, ss *sessState) error {
	ev := Event{Kind: EventAck, AckType: string(a.EventType), FragmentTimecode: a.FragmentTimecode, FragmentNumber: a.FragmentNumber}
	if a.EventType == kvs.AckIdle {
		return nil
	}
	s.mu.Lock()
	var e *entry
	for _, x := range s.entries {
		if x.frag.Timecode == a.FragmentTimecode {
			e = x
		}
	}
	if e == nil && a.EventType != kvs.AckErrorEvent {
		s.log.Debug("acknowledgement for a fragment not in the store", "type", a.EventType, "timecode", a.FragmentTimecode)
	}
	var result error
	before := e != nil && s.finalLocked(e)
	switch a.EventType {
	case kvs.AckBuffering:
		ss.unackedSince = time.Time{}
		if e != nil && e.state < stateBuffering {
			e.state = stateBuffering
		}
	case kvs.AckReceived:
		if e != nil && e.state < stateReceived {
			e.state = stateReceived
			s.acked++
			s.refused.run = 0
		}
	case kvs.AckPersisted:
		if e != nil && e.state != stateFailed && e.state < statePersisted {
			if e.state < stateReceived {
				s.acked++
			}
			e.state = statePersisted
			s.refused.run = 0
		}
	case kvs.AckErrorEvent:
		info := kvs.LookupAckError(a.ErrorID)
		what := "it is resent on a new connection"
		if !info.Retriable {
			what = "it is skipped"
		}
		ev = Event{Kind: EventStreamError, AckType: "ERROR", FragmentTimecode: a.FragmentTimecode, FragmentNumber: a.FragmentNumber,
			ErrorID: a.ErrorID, ErrorName: info.Name, Retriable: info.Retriable,
			Message: fmt.Sprintf("the service rejected the fragment at timecode %d: %s", a.FragmentTimecode, what)}
		result = &kvs.AckError{Ack: a}
		if !info.Retriable {
			if e != nil && e.state != stateFailed {
				e.state = stateFailed // never resent
				s.refused.refused(a.ErrorID, info.Name, e.frag.Frames)
			}
			result = &skipError{result}
		}
	}
	if e != nil && !before && s.finalLocked(e) && e.state != stateFailed {
		s.metrics.FragmentsAcked++
	}
	if e != nil && a.EventType == kvs.AckReceived {
		s.journalReceivedLocked(e) // disk.go
	}
	s.trimLocked()
	s.wakeLocked()
	s.mu.Unlock()
	s.emit(ev)
	return result
}
