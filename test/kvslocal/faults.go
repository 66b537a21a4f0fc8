package kvslocal

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// The fault hooks of Faults, wired into the request path with one call
// each: Refuse in ServeHTTP, ClockSkew in New (around Config.Now),
// DropAfterBytes in putMedia, AckDelay and ErrorAck in the ingest.
// WithholdAcks and WithholdPersisted live in ingest.ack.

// ErrorAck makes the endpoint answer one fragment with an ERROR ack.
type ErrorAck struct {
	ID       int // ErrorId to send (e.g. 5001); 0 disables the fault
	Fragment int // which fragment of a PutMedia connection, from 0
}

// skewed returns a clock that is base plus the current Faults.ClockSkew.
func (s *Server) skewed(base func() time.Time) func() time.Time {
	return func() time.Time { return base().Add(s.getFaults().ClockSkew) }
}

// refused closes the connection of r without an answer when
// Faults.Refuse is set, and reports whether it did.
func (s *Server) refused(w http.ResponseWriter) bool {
	if !s.getFaults().Refuse {
		return false
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2, a test recorder): abort the response,
		// which also closes the connection without a status.
		panic(http.ErrAbortHandler)
	}
	conn.Close()
	return true
}

// errDropped is the body error of a connection dropped by
// Faults.DropAfterBytes; the ingest takes it for a producer gone away.
var errDropped = errors.New("kvslocal: connection dropped by Faults.DropAfterBytes")

// dropReader passes at most left bytes of a PutMedia body, then fails.
type dropReader struct {
	r     io.Reader
	left  int64
	fired bool
}

func (d *dropReader) Read(p []byte) (int, error) {
	if d.left <= 0 {
		d.fired = true
		return 0, errDropped
	}
	if int64(len(p)) > d.left {
		p = p[:d.left]
	}
	n, err := d.r.Read(p)
	d.left -= int64(n)
	return n, err
}

// faultBody wraps a PutMedia body for Faults.DropAfterBytes and
// Faults.PauseReads.
func (s *Server) faultBody(r io.Reader) io.Reader {
	r = &pauseReader{r: r, s: s}
	if n := s.getFaults().DropAfterBytes; n > 0 {
		return &dropReader{r: r, left: n}
	}
	return r
}

// pauseReader reads nothing while Faults.PauseReads is set (checked every
// 5 ms), or until the server closes.
type pauseReader struct {
	r io.Reader
	s *Server
}

func (p *pauseReader) Read(b []byte) (int, error) {
	for p.s.getFaults().PauseReads {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-p.s.closing:
			return 0, errDropped
		}
	}
	return p.r.Read(b)
}

// dropIfFaulted, deferred by putMedia, closes the connection abruptly
// (no final chunk, as a network failure) once a dropReader has fired. The
// handler's other deferred calls have run by then.
func (s *Server) dropIfFaulted(body io.Reader) {
	if d, ok := body.(*dropReader); ok && d.fired {
		s.log.Info("PutMedia connection dropped (fault)")
		panic(http.ErrAbortHandler)
	}
}

// delayAck waits Faults.AckDelay (or until the server closes).
func (s *Server) delayAck() {
	d := s.getFaults().AckDelay
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.closing:
	}
}

// injectedError returns the ERROR that Faults.ErrorAck asks for when f is
// that fragment of the connection. It counts the fragments completed.
func (in *ingest) injectedError(f *fragmentState) *ingestError {
	n := in.finished
	in.finished++
	fa := in.s.getFaults().ErrorAck
	if fa.ID == 0 || fa.Fragment != n {
		return nil
	}
	ie := &ingestError{id: fa.ID, code: errorCodes[fa.ID], tc: f.tc, number: f.number, msg: "injected by Faults.ErrorAck"}
	return ie
}
