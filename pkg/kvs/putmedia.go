package kvs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TimecodeType is the x-amzn-fragment-timecode-type of a PutMedia session.
type TimecodeType string

// Timecode types.
const (
	// Absolute: fragment timecodes are producer timestamps in milliseconds.
	Absolute TimecodeType = "ABSOLUTE"
	// Relative: fragment timecodes are relative to ProducerStart.
	Relative TimecodeType = "RELATIVE"
)

// DefaultResponseTimeout is PutMediaConfig.ResponseTimeout's default.
const DefaultResponseTimeout = 10 * time.Second

// PutMediaConfig configures one PutMedia session.
type PutMediaConfig struct {
	Endpoint    string // data endpoint from GetDataEndpoint(PUT_MEDIA)
	StreamName  string
	Region      string
	Credentials aws.CredentialsProvider
	// HTTPClient carries the session; nil means an HTTP/1.1 client whose
	// dial and TLS handshake are bounded by ConnectTimeout. A client must
	// not have an overall Timeout: the session lasts as long as the stream.
	HTTPClient *http.Client
	// UserAgent is the User-Agent header; it defaults to DefaultUserAgent.
	UserAgent string
	// TimecodeType defaults to Absolute.
	TimecodeType TimecodeType
	// ProducerStart is sent as x-amzn-producer-start-timestamp (seconds with
	// milliseconds, "%d.%03d"). It defaults to Now().
	ProducerStart time.Time
	// AckRequired is x-amzn-fragment-acknowledgment-required (1/0).
	AckRequired bool
	// ConnectTimeout bounds dial + TLS of the default client. It defaults
	// to 5 s.
	ConnectTimeout time.Duration
	// ResponseTimeout is added to ConnectTimeout to bound the wait for the
	// response status (the service answers once it has read the first
	// bytes). It defaults to 10 s.
	ResponseTimeout time.Duration
	// Now is the signing time (and ProducerStart's default). It defaults to
	// time.Now.
	Now func() time.Time
}

// ackBuffer is how many parsed acknowledgements wait for the consumer before
// the reader stops reading the network (TCP then pushes back on the
// service): three per fragment, so minutes of one-second fragments; the
// consumer reads them in its own goroutine, so a full buffer means it is
// stuck, and waiting is the right policy.
const ackBuffer = 1024

// maxAckLen bounds one acknowledgement object (real ones are about 150 bytes;
// this leaves room for future keys).
const maxAckLen = 8192

// maxErrorBody bounds how much of a non-200 answer is read.
const maxErrorBody = 4096

// errStatusTimeout is the session's cancel cause when no status arrived in
// time.
var errStatusTimeout = errors.New("no response status in time")

// PutMedia is one streaming upload: POST <Endpoint>/putMedia with a chunked
// body, and the acknowledgements of the same response, on a connection of
// its own (putconn.go).
//
// Write and CloseBody are called from one goroutine, which writes to the
// socket itself; Acks is read from another; Abort may be called from any
// goroutine, any number of times.
type PutMedia struct {
	endpoint string
	sctx     context.Context // the session; its cause says why it ended
	conn     net.Conn
	cw       *chunkWriter
	cancel   context.CancelCauseFunc
	acks     chan Ack
	done     chan struct{} // closed after acks is closed

	mu        sync.Mutex
	err       error
	abortOnce sync.Once
}

func (cfg *PutMediaConfig) fill() error {
	ep, err := checkURL(cfg.Endpoint)
	if err != nil {
		return fmt.Errorf("data endpoint: %w", err)
	}
	cfg.Endpoint = ep
	if err := ValidateStreamName(cfg.StreamName); err != nil {
		return err
	}
	if _, err := checkRegion("region", cfg.Region); err != nil {
		return err
	}
	if cfg.Credentials == nil {
		return errors.New("no credentials")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch cfg.TimecodeType {
	case "":
		cfg.TimecodeType = Absolute
	case Absolute, Relative:
	default:
		return fmt.Errorf("timecode type %q is neither ABSOLUTE nor RELATIVE", cfg.TimecodeType)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = DefaultResponseTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newDefaultClient(cfg.ConnectTimeout, false)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.ProducerStart.IsZero() {
		cfg.ProducerStart = cfg.Now()
	}
	if cfg.ProducerStart.UnixMilli() < 0 {
		return fmt.Errorf("producer start %v is before 1970", cfg.ProducerStart)
	}
	return nil
}

// producerStartHeader formats x-amzn-producer-start-timestamp.
func producerStartHeader(t time.Time) string {
	ms := t.UnixMilli()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// OpenPutMedia starts POST <Endpoint>/putMedia with a chunked body that
// begins with first (the MKV header: the service may answer only once it has
// body bytes), signed with SigV4 and the payload hash of the empty string,
// with Expect: 100-continue (the head and first are sent at once; a 100
// Continue is skipped). It returns once the response status is known: 200
// gives the session; any other status is an *APIError built from
// x-amzn-ErrorType and the JSON body (or an excerpt of an HTML or other
// body). Connecting is bounded by ConnectTimeout, the wait for the status by
// ConnectTimeout + ResponseTimeout, and both by ctx.
//
// The session lives until the response ends, Abort is called or ctx is
// done. An empty first is allowed, but against a server that waits for body
// bytes before answering it ends in the status timeout.
func OpenPutMedia(ctx context.Context, cfg PutMediaConfig, first []byte) (*PutMedia, error) {
	const op = "PutMedia"
	if err := cfg.fill(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w", op, context.Cause(ctx))
	}
	t, err := transportOf(cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req, err := putMediaRequest(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	head, err := requestHead(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	statusWait := cfg.ConnectTimeout + cfg.ResponseTimeout
	deadline := time.Now().Add(statusWait)
	dctx, dcancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	conn, err := dialPutMedia(dctx, t, req)
	dcancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", op, context.Cause(ctx))
		}
		return nil, transportError(op, cfg.Endpoint, err)
	}
	sctx, cancel := context.WithCancelCause(context.Background())
	p := &PutMedia{
		endpoint: cfg.Endpoint, sctx: sctx, conn: conn, cw: newChunkWriter(conn), cancel: cancel,
		acks: make(chan Ack, ackBuffer), done: make(chan struct{}),
	}
	// Whatever ends the session closes the connection: a blocked Write or
	// read returns.
	context.AfterFunc(sctx, func() { conn.Close() })
	stopCtx := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	fail := func(cause, err error) (*PutMedia, error) {
		stopCtx()
		cancel(cause)
		return nil, err
	}

	type result struct {
		resp *http.Response
		err  error
	}
	status := make(chan result, 1)
	br := bufio.NewReaderSize(conn, 16<<10)
	go func() {
		for {
			resp, err := http.ReadResponse(br, req)
			if err == nil && resp.StatusCode == http.StatusContinue {
				continue
			}
			status <- result{resp, err}
			return
		}
	}()
	// The head and the first bytes, bounded like the status: a server that
	// reads nothing must not hold this forever.
	conn.SetDeadline(deadline)
	werr := p.cw.write(head, first)
	var r result
	select {
	case r = <-status:
	case <-sctx.Done(): // ctx
		<-status
		return fail(context.Cause(sctx), fmt.Errorf("%s: %w", op, context.Cause(ctx)))
	}
	if r.err != nil {
		switch {
		case ctx.Err() != nil:
			return fail(context.Cause(ctx), fmt.Errorf("%s: %w", op, context.Cause(ctx)))
		case isTimeout(r.err):
			return fail(errStatusTimeout, timeoutError(op, cfg.Endpoint, "no response status", statusWait))
		case werr != nil:
			return fail(werr, transportError(op, cfg.Endpoint, werr))
		}
		return fail(r.err, transportError(op, cfg.Endpoint, r.err))
	}
	if r.resp.StatusCode != http.StatusOK {
		ae := responseError(op, r.resp) // bounded by the deadline, still set
		return fail(ae, ae)
	}
	if werr != nil { // a 200 to a request whose body could not be sent
		r.resp.Body.Close()
		return fail(werr, transportError(op, cfg.Endpoint, werr))
	}
	conn.SetDeadline(time.Time{})
	go p.readAcks(sctx, r.resp.Body, stopCtx)
	return p, nil
}

// putMediaRequest is the signed request (its head only: the body is
// written as chunks on the connection).
func putMediaRequest(ctx context.Context, cfg PutMediaConfig) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.Endpoint+"/putMedia", nil)
	if err != nil {
		return nil, err
	}
	ack := "0"
	if cfg.AckRequired {
		ack = "1"
	}
	h := req.Header
	h.Set("User-Agent", cfg.UserAgent)
	h.Set("x-amzn-stream-name", cfg.StreamName)
	h.Set("x-amzn-fragment-timecode-type", string(cfg.TimecodeType))
	h.Set("x-amzn-producer-start-timestamp", producerStartHeader(cfg.ProducerStart))
	h.Set("x-amzn-fragment-acknowledgment-required", ack)
	h.Set("Expect", "100-continue")
	// No "Connection: keep-alive" (the official producer signs one): HTTP/1.1
	// keeps the connection anyway, and HTTP/2 would drop a signed header.
	if err := sign(ctx, cfg.Credentials, req, EmptyPayloadHash, cfg.Region, cfg.Now()); err != nil {
		return nil, err
	}
	return req, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// responseError builds an *APIError from a non-200 answer: the code from
// x-amzn-ErrorType (namespace stripped), else from the body's __type/code;
// the message from the JSON body, or a short excerpt of whatever else the
// body was (an HTML error page, say).
func responseError(op string, resp *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	ae := &APIError{Op: op, StatusCode: resp.StatusCode}
	if t := resp.Header.Get("x-amzn-ErrorType"); t != "" {
		ae.Code, _, _ = strings.Cut(t, ":")
	}
	var j map[string]any
	if json.Unmarshal(body, &j) == nil && j != nil {
		for k, v := range j {
			s, _ := v.(string)
			switch strings.ToLower(k) {
			case "message":
				ae.Message = cleanMessage(s)
			case "__type", "code":
				if ae.Code == "" {
					if _, after, found := strings.Cut(s, "#"); found {
						s = after
					}
					s, _, _ = strings.Cut(s, ":")
					ae.Code = excerptText([]byte(s), 128)
				}
			}
		}
		return ae
	}
	ae.Message = bodyExcerpt(body)
	return ae
}

func (p *PutMedia) readAcks(sctx context.Context, body io.ReadCloser, stopCtx func() bool) {
	defer close(p.done)
	defer close(p.acks)
	defer func() {
		p.conn.Close() // first: closing a response body reads it to its end
		body.Close()
		stopCtx()
		// Later Writes fail at once instead of feeding a finished request
		// (a no-op after Abort or the caller's cancellation).
		if err := p.Err(); err != nil {
			p.cancel(err)
		} else {
			p.cancel(ErrResponseEnded)
		}
	}()
	d := NewAckDecoder(body, maxAckLen)
	for {
		a, err := d.Next()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
			case sctx.Err() != nil:
				p.setErr(p.cause(sctx))
			case errors.Is(err, io.ErrUnexpectedEOF):
				p.setErr(fmt.Errorf("PutMedia response from %s: the connection closed in the middle of an acknowledgement (truncated ack stream): %w", p.endpoint, err))
				p.cancel(err)
			default:
				p.setErr(fmt.Errorf("PutMedia response from %s: %w", p.endpoint, err))
				p.cancel(err)
			}
			return
		}
		select {
		case p.acks <- a:
		case <-sctx.Done():
			p.setErr(p.cause(sctx))
			return
		}
	}
}

// cause describes why sctx ended: ErrAborted, ErrResponseEnded, the
// session's error, or the caller's context.
func (p *PutMedia) cause(sctx context.Context) error {
	c := context.Cause(sctx)
	switch {
	case c == nil:
		return nil
	case errors.Is(c, ErrAborted):
		return ErrAborted
	case c == ErrResponseEnded:
		return c
	}
	if err := p.Err(); err != nil {
		return err
	}
	return fmt.Errorf("PutMedia: %w", c)
}

func (p *PutMedia) setErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// Write sends b as one chunk of the body, written to the socket by the
// calling goroutine; it blocks while the network pushes back. Once the
// session failed or the response ended it returns an error: the session's
// (see Err), ErrAborted or ErrResponseEnded.
func (p *PutMedia) Write(b []byte) (int, error) {
	if p.sctx.Err() != nil {
		return 0, p.writeErr(nil)
	}
	if len(b) == 0 {
		return 0, nil
	}
	if err := p.cw.write(nil, b); err != nil {
		return 0, p.writeErr(err)
	}
	return len(b), nil
}

// TryWrite sends b as one chunk without waiting for the network, where the
// connection allows it (plain TCP on Linux): ok false means it cannot, and
// nothing was written (use Write). With ok true, done false means the
// kernel took part or none of it: the rest goes out, waiting, with the next
// Write, Flush or CloseBody, and b must stay unchanged until then. Write,
// TryWrite, Flush and CloseBody are called from one goroutine at a time.
func (p *PutMedia) TryWrite(b []byte) (ok, done bool, err error) {
	if p.sctx.Err() != nil {
		return true, false, p.writeErr(nil)
	}
	ok, done, err = p.cw.try(b)
	if err != nil {
		return true, false, p.writeErr(err)
	}
	return ok, done, nil
}

// CanTryWrite reports whether TryWrite can write on this connection.
func (p *PutMedia) CanTryWrite() bool { return p.cw.tcp != nil && canTryWrite }

// Flush writes the rest of a chunk TryWrite left, waiting for the network.
func (p *PutMedia) Flush() error {
	if err := p.cw.flush(); err != nil {
		return p.writeErr(err)
	}
	return nil
}

func (p *PutMedia) writeErr(err error) error {
	if e := p.Err(); e != nil {
		return e
	}
	if p.sctx.Err() != nil {
		return p.cause(p.sctx)
	}
	return fmt.Errorf("PutMedia body to %s: %w", p.endpoint, err)
}

// CloseBody finishes the body (the terminating chunk). Acknowledgements
// keep coming until the service ends the response. After a clean end of the
// response it does nothing; after a failure it returns the session's error.
func (p *PutMedia) CloseBody() error {
	if p.sctx.Err() != nil {
		if err := p.writeErr(nil); err != ErrResponseEnded {
			return err
		}
		return nil // the response already ended cleanly: nothing left to finish
	}
	if err := p.cw.end(); err != nil {
		return p.writeErr(err)
	}
	return nil
}

// Acks delivers the acknowledgements; it is closed when the response ends or
// fails (then Err says why), on Abort and when ctx is done.
func (p *PutMedia) Acks() <-chan Ack { return p.acks }

// Err is, once Acks is closed, nil after a clean end of the response, else
// the cause: a network error, a malformed acknowledgement stream, ErrAborted,
// or the caller's context's cause. Before that it may already hold the cause.
func (p *PutMedia) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Abort cancels the request, closes the connection and waits until Acks is
// closed. It is idempotent and safe from any goroutine.
func (p *PutMedia) Abort() {
	p.abortOnce.Do(func() {
		p.cancel(ErrAborted)
		p.conn.Close()
	})
	<-p.done
}
