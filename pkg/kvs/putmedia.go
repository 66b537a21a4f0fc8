package kvs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	Absolute TimecodeType = "ABSOLUTE"
	Relative TimecodeType = "RELATIVE"
)

// PutMediaConfig configures one PutMedia session.
type PutMediaConfig struct {
	Endpoint    string // data endpoint from GetDataEndpoint
	StreamName  string
	Region      string
	Credentials aws.CredentialsProvider
	HTTPClient  *http.Client
	UserAgent   string
	// TimecodeType defaults to Absolute.
	TimecodeType TimecodeType
	// ProducerStart is sent as x-amzn-producer-start-timestamp.
	ProducerStart time.Time
	AckRequired   bool
	// ConnectTimeout bounds the wait for the response status (dial, TLS and
	// the service's answer to the first bytes); default 5 s, plus 10 s.
	ConnectTimeout time.Duration
	Now            func() time.Time
}

// ackBuffer is how many parsed acknowledgements wait for the consumer before
// the reader stops reading the network: three per fragment, so minutes of
// fragments at 1 s each; the consumer reads them in its own goroutine.
const ackBuffer = 1024

// maxAckLen bounds one acknowledgement object (real ones are ~150 bytes).
const maxAckLen = 8192

// PutMedia is one streaming upload. Write and CloseBody are called from one
// goroutine, Acks from another.
type PutMedia struct {
	pw     *io.PipeWriter
	cancel context.CancelFunc
	acks   chan Ack
	mu     sync.Mutex
	err    error
	once   sync.Once
}

// OpenPutMedia starts POST <Endpoint>/putMedia with a chunked body that
// begins with first, and returns once the service answered 200; any other
// answer is an *APIError.
func OpenPutMedia(ctx context.Context, cfg PutMediaConfig, first []byte) (*PutMedia, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TimecodeType == "" {
		cfg.TimecodeType = Absolute
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.ProducerStart.IsZero() {
		cfg.ProducerStart = cfg.Now()
	}
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel) // the session outlives ctx only once open
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(sctx, http.MethodPost, cfg.Endpoint+"/putMedia", pr)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("PutMedia: %w", err)
	}
	req.ContentLength = -1
	ack := "0"
	if cfg.AckRequired {
		ack = "1"
	}
	ps := cfg.ProducerStart.UnixMilli()
	h := req.Header
	h.Set("User-Agent", cfg.UserAgent)
	h.Set("x-amzn-stream-name", cfg.StreamName)
	h.Set("x-amzn-fragment-timecode-type", string(cfg.TimecodeType))
	h.Set("x-amzn-producer-start-timestamp", fmt.Sprintf("%d.%03d", ps/1000, ps%1000))
	h.Set("x-amzn-fragment-acknowledgment-required", ack)
	h.Set("Expect", "100-continue")
	h.Set("Connection", "keep-alive")
	if err := sign(ctx, cfg.Credentials, req, EmptyPayloadHash, cfg.Region, cfg.Now()); err != nil {
		cancel()
		return nil, fmt.Errorf("PutMedia: %w", err)
	}

	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := cfg.HTTPClient.Do(req)
		done <- result{resp, err}
	}()
	go func() { // the first bytes; an early failure closes the pipe reader
		if _, err := pw.Write(first); err != nil {
			pw.CloseWithError(err)
		}
	}()
	timeout := time.NewTimer(cfg.ConnectTimeout + 10*time.Second)
	defer timeout.Stop()
	var r result
	select {
	case r = <-done:
	case <-timeout.C:
		cancel()
		pw.CloseWithError(errors.New("PutMedia: no response"))
		return nil, fmt.Errorf("PutMedia to %s: no response within %v", cfg.Endpoint, cfg.ConnectTimeout+10*time.Second)
	case <-ctx.Done():
		cancel()
		pw.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}
	if r.err != nil {
		cancel()
		pw.CloseWithError(r.err)
		return nil, fmt.Errorf("PutMedia to %s: %w", cfg.Endpoint, unwrapURL(r.err))
	}
	if r.resp.StatusCode != http.StatusOK {
		defer r.resp.Body.Close()
		cancel()
		pw.CloseWithError(errors.New("PutMedia rejected"))
		return nil, responseError("PutMedia", r.resp)
	}
	stop()
	p := &PutMedia{pw: pw, cancel: cancel, acks: make(chan Ack, ackBuffer)}
	go p.readAcks(r.resp.Body)
	return p, nil
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && strings.HasPrefix(err.Error(), "Post ") {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// responseError builds an *APIError from a non-200 answer: the code from
// x-amzn-ErrorType (namespace stripped), the message from a JSON body, or an
// excerpt of whatever else the body was (an HTML error page, say).
func responseError(op string, resp *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	ae := &APIError{Op: op, StatusCode: resp.StatusCode}
	if t := resp.Header.Get("x-amzn-ErrorType"); t != "" {
		ae.Code, _, _ = strings.Cut(t, ":")
	}
	var j map[string]any
	if json.Unmarshal(body, &j) == nil {
		for k, v := range j {
			s, _ := v.(string)
			switch strings.ToLower(k) {
			case "message":
				ae.Message = s
			case "__type", "code":
				if ae.Code == "" {
					_, after, found := strings.Cut(s, "#")
					if found {
						s = after
					}
					ae.Code = s
				}
			}
		}
		return ae
	}
	text := strings.Join(strings.Fields(string(body)), " ")
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	ae.Message = text
	return ae
}

func (p *PutMedia) readAcks(body io.ReadCloser) {
	defer close(p.acks)
	defer body.Close()
	d := NewAckDecoder(body, maxAckLen)
	for {
		a, err := d.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				p.setErr(fmt.Errorf("PutMedia response: %w", err))
			}
			return
		}
		p.acks <- a
	}
}

func (p *PutMedia) setErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// Write sends bytes of the body.
func (p *PutMedia) Write(b []byte) (int, error) {
	n, err := p.pw.Write(b)
	if err != nil {
		if e := p.Err(); e != nil {
			return n, e
		}
		return n, fmt.Errorf("PutMedia body: %w", err)
	}
	return n, nil
}

// CloseBody ends the body; acknowledgements keep coming until the service
// ends the response.
func (p *PutMedia) CloseBody() error { return p.pw.Close() }

// Acks delivers the acknowledgements; it is closed when the response ends.
func (p *PutMedia) Acks() <-chan Ack { return p.acks }

// Err is the cause of an abnormal end (nil after a clean one).
func (p *PutMedia) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Abort cancels the request and closes the connection. It is idempotent.
func (p *PutMedia) Abort() {
	p.once.Do(func() {
		p.cancel()
		p.pw.CloseWithError(errors.New("PutMedia aborted"))
	})
}
