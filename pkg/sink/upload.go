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

// Retry budget of the upload: a PutMedia connection that cannot be
// (re-)established gives up after maxConnectAttempts consecutive failures,
// with exponential backoff from backoffMin up to backoffMax (full jitter).
// With the defaults that is at most ~5 attempts within ~10 s plus the
// connection timeouts, so a dead endpoint becomes an element error instead of
// an endless retry.
const (
	maxConnectAttempts = 5
	backoffMin         = 200 * time.Millisecond
	backoffMax         = 5 * time.Second
	// responseDrain bounds the wait for the service to end the response
	// after the body is complete.
	responseDrain = 10 * time.Second
)

// errSessionEnded means the session finished its work cleanly (EOS, or a new
// header needs a new session).
var errSessionEnded = errors.New("session ended")

// run is the owner goroutine: one PutMedia session at a time, reconnect with
// replay after a failure, until the stream is finished or fails.
func (s *Sink) run() {
	defer close(s.done)
	ctx := s.runCtx
	failures := 0
	for {
		start, ok := s.waitForWork(ctx)
		if !ok {
			return
		}
		err := s.session(ctx, start)
		switch {
		case err == nil:
			return // finished
		case errors.Is(err, errSessionEnded):
			failures = 0
			continue
		case ctx.Err() != nil:
			return
		}
		var fatal *fatalError
		if errors.As(err, &fatal) || !s.cfg.RestartOnError {
			s.fail(err)
			return
		}
		failures++
		s.emit(Event{Kind: EventConnectionLost, Message: fmt.Sprintf("PutMedia connection lost (attempt %d of %d): %v", failures, maxConnectAttempts, err)})
		if failures >= maxConnectAttempts {
			s.fail(fmt.Errorf("giving up after %d failed PutMedia attempts: %w", failures, err))
			return
		}
		d := backoffMin << (failures - 1)
		if d > backoffMax {
			d = backoffMax
		}
		d = d/2 + rand.N(d/2+1)
		select {
		case <-s.cfg.Clock.After(d):
		case <-ctx.Done():
			return
		}
	}
}

// fatalError ends the stream without retry.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// waitForWork returns the index of the first entry that needs sending, or
// false when the stream is finished (or ctx is done).
func (s *Sink) waitForWork(ctx context.Context) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		s.trimLocked()
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
		ch := s.changed
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
	for n < len(s.entries) && s.finalLocked(s.entries[n]) && s.entries[n].frag.Closed {
		s.stored -= int64(len(s.entries[n].frag.Data))
		n++
	}
	if n > 0 {
		s.entries = append(s.entries[:0], s.entries[n:]...)
		if s.stored < 0 || len(s.entries) == 0 {
			s.stored = 0
		}
		s.wakeLocked()
	}
}

// session runs one PutMedia connection starting at entry index start.
func (s *Sink) session(ctx context.Context, start int) error {
	s.mu.Lock()
	var hdr *header
	if start < len(s.entries) {
		hdr = s.entries[start].hdr
	} else if len(s.entries) > 0 {
		hdr = s.entries[len(s.entries)-1].hdr
	}
	producerStart := s.producerStart
	s.mu.Unlock()
	if hdr == nil {
		return errSessionEnded
	}
	tcType := kvs.TimecodeType("ABSOLUTE")
	if !s.cfg.AbsoluteFragmentTimes && s.cfg.StreamingType != Offline {
		tcType = "RELATIVE"
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pm, err := kvs.OpenPutMedia(sctx, kvs.PutMediaConfig{
		Endpoint: s.dataEndpoint, StreamName: s.cfg.StreamName, Region: s.cfg.Region,
		Credentials: s.cfg.Credentials, HTTPClient: s.cfg.HTTPClient, UserAgent: s.cfg.UserAgent,
		TimecodeType: tcType, ProducerStart: producerStart, AckRequired: s.cfg.FragmentAcks,
		ConnectTimeout: s.cfg.ConnectionTimeout, Now: s.cfg.Clock.Now,
	}, hdr.bytes)
	if err != nil {
		if errors.Is(err, kvs.ErrAccessDenied) || errors.Is(err, kvs.ErrStreamNotFound) {
			return &fatalError{fmt.Errorf("PutMedia to %s: %w", s.dataEndpoint, err)}
		}
		return fmt.Errorf("PutMedia to %s: %w", s.dataEndpoint, err)
	}
	defer pm.Abort()
	s.emit(Event{Kind: EventConnected, Message: fmt.Sprintf("PutMedia connected to %s", s.dataEndpoint)})

	werr := make(chan error, 1)
	go func() { werr <- s.write(sctx, pm, hdr, start) }()

	acks := pm.Acks()
	var drainDeadline <-chan time.Time
	writing := true
	for {
		s.mu.Lock()
		changed := s.changed
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
			if err := s.handleAck(a); err != nil {
				return err
			}
		case err := <-werr:
			writing = false
			if err != nil && !errors.Is(err, errSessionEnded) {
				if e := pm.Err(); e != nil {
					return e
				}
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
// It returns errSessionEnded after the end-of-stream tag or before a fragment
// that needs another header.
func (s *Sink) write(ctx context.Context, pm *kvs.PutMedia, hdr *header, start int) error {
	s.mu.Lock()
	var next uint64
	if start < len(s.entries) {
		next = s.entries[start].frag.Seq
	} else {
		next = ^uint64(0)
	}
	s.mu.Unlock()
	off := 0
	for {
		s.mu.Lock()
		e := s.entryLocked(next)
		if e == nil && s.eos {
			if s.nextPendingLocked(next) == nil {
				s.mu.Unlock()
				if _, err := pm.Write(fragment.EndOfFragmentTags()); err != nil {
					return err
				}
				s.mu.Lock()
				s.eofrSent = true
				s.wakeLocked()
				s.mu.Unlock()
				return errSessionEnded
			}
			e = s.nextPendingLocked(next)
			next, off = e.frag.Seq, 0
		}
		if e != nil && (e.state == stateFailed || e.state >= stateReceived) {
			next, off = e.frag.Seq+1, 0
			s.mu.Unlock()
			continue
		}
		if e != nil && e.hdr != hdr {
			s.mu.Unlock()
			// The next fragment needs another header: end this session with
			// an end-of-fragment tag so the last fragment is acknowledged.
			if _, err := pm.Write(fragment.EndOfFragmentTags()); err != nil {
				return err
			}
			return errSessionEnded
		}
		var chunk []byte
		closed := false
		if e != nil {
			chunk = e.frag.Data[off:len(e.frag.Data):len(e.frag.Data)]
			closed = e.frag.Closed
		}
		ch := s.changed
		s.mu.Unlock()
		if len(chunk) > 0 {
			if _, err := pm.Write(chunk); err != nil {
				return err
			}
			off += len(chunk)
			continue
		}
		if e != nil && closed {
			s.mu.Lock()
			e.sent = true
			s.wakeLocked()
			s.mu.Unlock()
			next, off = e.frag.Seq+1, 0
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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
func (s *Sink) handleAck(a kvs.Ack) error {
	ev := Event{Kind: EventAck, AckType: string(a.EventType), FragmentTimecode: a.FragmentTimecode, FragmentNumber: a.FragmentNumber}
	if a.EventType == "IDLE" {
		return nil
	}
	s.mu.Lock()
	var e *entry
	for _, x := range s.entries {
		if x.frag.Timecode == a.FragmentTimecode {
			e = x
		}
	}
	var result error
	switch a.EventType {
	case "BUFFERING":
		if e != nil && e.state < stateBuffering {
			e.state = stateBuffering
		}
	case "RECEIVED":
		if e != nil && e.state < stateReceived {
			e.state = stateReceived
		}
	case "PERSISTED":
		if e != nil {
			e.state = statePersisted
		}
	case "ERROR":
		info := kvs.LookupAckError(a.ErrorID)
		ev = Event{Kind: EventStreamError, AckType: "ERROR", FragmentTimecode: a.FragmentTimecode, FragmentNumber: a.FragmentNumber,
			ErrorID: a.ErrorID, ErrorName: info.Name, Message: fmt.Sprintf("the service rejected fragment at timecode %d", a.FragmentTimecode)}
		if !info.Retriable && e != nil {
			e.state = stateFailed // never resent
		}
		result = &kvs.AckError{Ack: a}
		if !info.Retriable && !s.cfg.RestartOnError {
			result = &fatalError{result}
		}
	}
	s.trimLocked()
	s.wakeLocked()
	s.mu.Unlock()
	s.emit(ev)
	return result
}
