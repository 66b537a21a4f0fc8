package kvslocal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PutMedia (POST /putMedia): parameters in headers, the MKV body streamed
// (chunked, usually with Expect: 100-continue), newline-separated JSON acks
// streamed back on the same connection while the body is still arriving
// (local-aws.md §2.5, kvssink-observed.md §5.5–5.6).

// ack is one acknowledgement line, with the keys PIC's AckParser knows.
type ack struct {
	EventType        string `json:"EventType"`
	FragmentTimecode uint64 `json:"FragmentTimecode"`
	FragmentNumber   string `json:"FragmentNumber,omitempty"` // absent when no fragment is concerned
	ErrorID          int    `json:"ErrorId,omitempty"`
	ErrorCode        string `json:"ErrorCode,omitempty"`
}

// Ack event types.
const (
	ackBuffering = "BUFFERING"
	ackReceived  = "RECEIVED"
	ackPersisted = "PERSISTED"
	ackIdle      = "IDLE"
	ackError     = "ERROR"
)

// ackWriter writes acks from the ingest and IDLE keep-alives from a timer,
// one JSON object per line, flushing each. After the handler returns it must
// not be used: stopIdle waits for the timer goroutine.
type ackWriter struct {
	mu       sync.Mutex
	w        io.Writer
	rc       *http.ResponseController
	lastSent time.Time
	err      error
	stop     chan struct{}
	done     chan struct{}
}

func (a *ackWriter) write(line []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	if _, err := a.w.Write(line); err != nil {
		a.err = fmt.Errorf("writing an ack: %w", err)
		return a.err
	}
	if err := a.rc.Flush(); err != nil {
		a.err = fmt.Errorf("flushing an ack: %w", err)
	}
	a.lastSent = time.Now()
	return a.err
}

func (a *ackWriter) send(x ack) error {
	b, err := json.Marshal(x)
	if err != nil {
		return err
	}
	return a.write(append(b, '\n'))
}

// idle sends {"EventType":"IDLE"} whenever neither body data has arrived nor
// an ack was sent for interval.
func (a *ackWriter) idle(interval time.Duration, lastData *atomic.Int64) {
	defer close(a.done)
	t := time.NewTicker(interval / 4)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case now := <-t.C:
			a.mu.Lock()
			quiet := now.Sub(a.lastSent) >= interval
			a.mu.Unlock()
			if quiet && now.Sub(time.Unix(0, lastData.Load())) >= interval {
				if a.write([]byte(`{"EventType":"IDLE"}`+"\n")) != nil {
					return
				}
			}
		}
	}
}

// failed returns the error that stopped ack delivery, if any.
func (a *ackWriter) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *ackWriter) stopIdle() {
	close(a.stop)
	<-a.done
}

// recorder sits between the request body and the MKV reader and keeps the
// bytes the ingest has not stored yet, addressed by their offset in the
// body, so that fragments are stored exactly as received. It also notes
// when data last arrived (for IDLE acks) and how the body ended.
//
// It holds what arrived since the ingest last stored or dropped bytes: the
// element being read (at most one frame, or the segment head) plus one
// read. limit (a fragment's limit plus room for the head and one read)
// bounds it; past that the body is refused (4001), so a producer cannot make
// the endpoint buffer an endless element.
type recorder struct {
	src      io.Reader
	buf      []byte
	base     int64 // body offset of buf[0]
	lastData atomic.Int64
	err      error // the body's terminal error (io.EOF when it ended cleanly)
	limit    int
}

// errRecorderFull reports more unstored bytes than the recorder's limit.
var errRecorderFull = errors.New("more than a fragment's worth of bytes without a frame")

func (rc *recorder) Read(p []byte) (int, error) {
	if len(rc.buf) >= rc.limit {
		return 0, errRecorderFull
	}
	p = p[:min(len(p), rc.limit-len(rc.buf))]
	n, err := rc.src.Read(p)
	if n > 0 {
		rc.buf = append(rc.buf, p[:n]...)
		rc.lastData.Store(time.Now().UnixNano())
	}
	if err != nil && rc.err == nil {
		rc.err = err
	}
	return n, err
}

// bytes returns the recorded bytes [from, to).
func (rc *recorder) bytes(from, to int64) []byte {
	return rc.buf[from-rc.base : to-rc.base]
}

// trim drops the bytes before offset to.
func (rc *recorder) trim(to int64) {
	n := int(to - rc.base)
	if n <= 0 {
		return
	}
	rest := rc.buf[n:]
	if cap(rc.buf) > 1<<20 && len(rest) < cap(rc.buf)/4 {
		rc.buf = append(make([]byte, 0, max(len(rest), 64<<10)), rest...) // give a big frame's room back
	} else {
		rc.buf = rc.buf[:copy(rc.buf, rest)]
	}
	rc.base = to
}

// captureWriter tees the body to a capture file; a failing capture is
// logged once and then ignored, never failing the upload.
type captureWriter struct {
	s      *Server
	w      io.Writer
	failed bool
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if !c.failed {
		if _, err := c.w.Write(p); err != nil {
			c.failed = true
			c.s.log.Error("capturing the PutMedia body", "error", err)
		}
	}
	return len(p), nil
}

// putMediaParams are the request headers, validated.
type putMediaParams struct {
	stream    streamMeta
	acks      bool
	relative  bool
	start     time.Time
	haveStart bool
	caller    string // the access key that signed the request (kms:GenerateDataKey is its)
}

func (s *Server) putMediaParams(r *http.Request) (putMediaParams, *apiError) {
	var p putMediaParams
	ref := streamRef{StreamName: r.Header.Get("x-amzn-stream-name"), StreamARN: r.Header.Get("x-amzn-stream-arn")}
	m, e := s.store.get(ref)
	if e != nil {
		return p, e
	}
	p.stream = m
	switch v := r.Header.Get("x-amzn-fragment-acknowledgment-required"); v {
	case "1", "":
		p.acks = true
	case "0":
	default:
		return p, newErr("InvalidArgumentException", fmt.Sprintf("x-amzn-fragment-acknowledgment-required %q is not 0 or 1.", v))
	}
	switch v := r.Header.Get("x-amzn-fragment-timecode-type"); v {
	case "ABSOLUTE":
	case "RELATIVE":
		p.relative = true
	default:
		return p, newErr("InvalidArgumentException", fmt.Sprintf("x-amzn-fragment-timecode-type %q is not ABSOLUTE or RELATIVE.", v))
	}
	if v := r.Header.Get("x-amzn-producer-start-timestamp"); v != "" {
		t, err := parseEpochSeconds(v)
		if err != nil {
			return p, newErr("InvalidArgumentException", fmt.Sprintf("x-amzn-producer-start-timestamp %q is not epoch seconds.", v))
		}
		p.start, p.haveStart = t, true
	} else if p.relative {
		return p, newErr("InvalidArgumentException", "RELATIVE fragment timecodes need x-amzn-producer-start-timestamp.")
	}
	return p, nil
}

// parseEpochSeconds parses "1795393362.595" exactly (no float rounding).
func parseEpochSeconds(v string) (time.Time, error) {
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s < 0 || len(frac) > 9 {
		return time.Time{}, fmt.Errorf("bad timestamp %q", v)
	}
	var ns int64
	if frac != "" {
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil || f < 0 {
			return time.Time{}, fmt.Errorf("bad timestamp %q", v)
		}
		for i := len(frac); i < 9; i++ {
			f *= 10
		}
		ns = f
	}
	return time.Unix(s, ns), nil
}

// acquire allows one PutMedia connection per stream at a time; the service
// throttles the newest with ConnectionLimitExceededException.
func (s *Server) acquire(stream string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[stream] {
		return false
	}
	s.active[stream] = true
	return true
}

func (s *Server) release(stream string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, stream)
}

func (s *Server) putMedia(w http.ResponseWriter, r *http.Request, id identity) {
	p, e := s.putMediaParams(r)
	if e != nil {
		writeError(w, e)
		return
	}
	p.caller = id.AccessKeyID
	name := p.stream.Name
	if !s.acquire(name) {
		writeError(w, newErr("ConnectionLimitExceededException", fmt.Sprintf("Too many concurrent PutMedia connections on stream %s.", name)))
		return
	}
	defer s.release(name)
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		writeError(w, newErr("InternalFailure", "full-duplex HTTP is not available: "+err.Error()))
		return
	}
	var body io.Reader = s.faultBody(r.Body) // Faults.DropAfterBytes (faults.go)
	defer s.dropIfFaulted(body)
	if s.cfg.CaptureBodies {
		if f, err := s.captureFile(name); err != nil {
			s.log.Error("creating the capture file", "stream", name, "error", err)
		} else {
			defer f.Close()
			body = io.TeeReader(body, &captureWriter{s: s, w: f})
		}
	}
	// The first read answers Expect: 100-continue. Only then the 200 goes
	// out (sending it first would make curl wait a second for the 100).
	first := make([]byte, 32<<10)
	n, err := body.Read(first)
	if n == 0 && err != nil && err != io.EOF {
		s.log.Info("PutMedia body unreadable", "stream", name, "error", err)
		return
	}
	rec := &recorder{src: io.MultiReader(bytes.NewReader(first[:n]), body), limit: int(s.maxFragment) + 2<<20}
	rec.lastData.Store(time.Now().UnixNano())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc.Flush()

	acks := &ackWriter{w: w, rc: rc, lastSent: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	if p.acks {
		go acks.idle(s.cfg.IdleAckInterval, &rec.lastData)
	} else {
		close(acks.done)
	}
	defer acks.stopIdle()

	in := newIngest(s, p, rec, acks)
	s.log.Info("PutMedia started", "stream", name, "relative", p.relative, "acks", p.acks)
	in.run()
}

// ingestError ends a PutMedia with an ERROR ack.
type ingestError struct {
	id     int
	code   string
	tc     uint64
	number string // the fragment concerned, when it has one
	msg    string
}

func (e *ingestError) Error() string { return fmt.Sprintf("%d %s: %s", e.id, e.code, e.msg) }

// ERROR ack codes (kvssink.md §4.3).
const (
	errFragmentSize     = 4001
	errFragmentDuration = 4002
	errTimecode         = 4004
	errInvalidMKV       = 4006
	errStreamNotActive  = 4008
	errMetadataLimit    = 4009
	errTrackMismatch    = 4010
	errFramesMissing    = 4011
	errTooManyTracks    = 4012
	errArchival         = 5001
)

var errorCodes = map[int]string{
	errFragmentSize:     "MAX_FRAGMENT_SIZE_REACHED",
	errFragmentDuration: "MAX_FRAGMENT_DURATION_REACHED",
	errTimecode:         "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS",
	errInvalidMKV:       "INVALID_MKV_DATA",
	errStreamNotActive:  "STREAM_NOT_ACTIVE",
	errMetadataLimit:    "FRAGMENT_METADATA_LIMIT_REACHED",
	errTrackMismatch:    "TRACK_NUMBER_MISMATCH",
	errFramesMissing:    "FRAMES_MISSING_FOR_TRACK",
	errTooManyTracks:    "MORE_THAN_ALLOWED_TRACKS_FOUND",
	errArchival:         "FRAGMENT_ARCHIVAL_ERROR",
}

func ingestErr(id int, tc uint64, format string, args ...any) *ingestError {
	return &ingestError{id: id, code: errorCodes[id], tc: tc, msg: fmt.Sprintf(format, args...)}
}

// clientGone reports a body that ended with a network error, not a clean
// end: the producer went away and nobody reads acks any more.
func clientGone(rec *recorder) bool {
	return rec.err != nil && !errors.Is(rec.err, io.EOF)
}
