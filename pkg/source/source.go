package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/kvsgo/kvsgo/pkg/clock"
	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/e2ee/mkvstream"
	"github.com/kvsgo/kvsgo/pkg/kvs"
)

// Defaults of Config.
const (
	// DefaultCompletionTimeout bounds one control-plane call
	// (GetDataEndpoint, ListFragments).
	DefaultCompletionTimeout = 10 * time.Second
	// DefaultReconnectTimeout is how long the source keeps reconnecting
	// without receiving a frame before it gives up with the last error.
	DefaultReconnectTimeout = 30 * time.Second
	// DefaultGapThreshold: a fragment that starts this much later than
	// the previous one's last frame is reported as a gap.
	DefaultGapThreshold = 500 * time.Millisecond
	// DefaultBatch is how many fragments one GetMediaForFragmentList asks
	// for: about a minute of video in 2-second fragments, so that a
	// dropped connection costs little.
	DefaultBatch = 30
	// mismatchFrames: frames that must fail authentication (valid key
	// bundles, nothing opened) before decryption stops with a context
	// mismatch, as kvsdecrypt does: two seconds at 30 fps.
	mismatchFrames = 60
)

// Errors.
var (
	// ErrNoFragments: the archived range holds no fragment.
	ErrNoFragments = errors.New("source: no fragment in the time range")
	// ErrTracksChanged: a fragment declares other tracks (codec or
	// CodecPrivate) than the first one; one Matroska segment cannot carry
	// both.
	ErrTracksChanged = errors.New("source: the stream's tracks changed (another codec or CodecPrivate)")
	// ErrNoTracks: a fragment declares no track; it cannot be played.
	ErrNoTracks = errors.New("source: no tracks")
	// ErrBadMedia: the service sent Matroska this reader cannot carry (a
	// block of a track numbered outside 1..126).
	ErrBadMedia = errors.New("source: unsupported media")
	// ErrGaveUp wraps the last error after ReconnectTimeout without a
	// frame.
	ErrGaveUp = errors.New("source: gave up reconnecting")
	// ErrSettings: the Config is unusable.
	ErrSettings = errors.New("source: invalid settings")
)

// FragmentError is a fragment the service could not return: the error chunk
// of a GetMedia response (AWS_KINESISVIDEO_ERROR_CODE/_ID).
type FragmentError struct {
	Number string
	Code   string
	ID     int
}

func (e *FragmentError) Error() string {
	return fmt.Sprintf("source: the service could not return fragment %s: %s (error id %d)", e.Number, e.Code, e.ID)
}

// Retriable reports whether reading again may work: only the service's
// internal error (5000) is.
func (e *FragmentError) Retriable() bool { return e.ID == 5000 }

// Range is an archived time range.
type Range struct {
	Start, End time.Time
	// ServerTimestamps selects fragments by server timestamp instead of
	// producer timestamp.
	ServerTimestamps bool
}

// Config configures a Source.
type Config struct {
	StreamName  string
	Region      string
	Endpoint    string // control-plane base URL (kvs.ResolveEndpoint)
	Credentials kvs.CredentialsProvider
	// HTTPClient carries every request; nil means pkg/kvs's default.
	HTTPClient *http.Client
	// CompletionTimeout bounds one control-plane call. It defaults to
	// DefaultCompletionTimeout.
	CompletionTimeout time.Duration

	// Start is where live reading starts (GetMedia's StartSelector).
	// Ignored when Archive is set.
	Start kvs.StartSelector
	// Archive, when set, plays the fragments of a time range and ends.
	Archive *Range
	// IdleTimeout, live only: when positive, reading ends (cleanly) once
	// no new frame has come for this long; 0 reads until cancelled.
	IdleTimeout time.Duration
	// ReconnectTimeout: after a failure, the source reconnects (from the
	// last continuation token) until it has gone this long without a
	// frame, then returns the last error wrapped in ErrGaveUp. It defaults
	// to DefaultReconnectTimeout.
	ReconnectTimeout time.Duration
	// GapThreshold: see DefaultGapThreshold.
	GapThreshold time.Duration
	// Batch is the number of fragments per GetMediaForFragmentList; it
	// defaults to DefaultBatch (at most kvs.MaxFragmentList).
	Batch int

	// Decrypt, when set, decrypts an end-to-end encrypted stream
	// (mkvstream.Decrypt, as kvsdecrypt): frames that do not decrypt are
	// dropped and reported as EventDecryptDrop.
	Decrypt *e2ee.DecryptorConfig
	// Origin, when set, is the timecode (in the stream's timecode units)
	// that becomes 0 in the output; by default the first cluster's. A
	// reader that seeks passes the first run's Origin() to the next.
	Origin *uint64
	// SeekTo, archived only: start at the fragment that holds this output
	// stream time (counted from the range's first fragment), for a reader
	// that seeks; with the first run's Origin the times stay the same.
	SeekTo time.Duration
	// SkipHeader leaves out the EBML header and segment head (a seek
	// continues a segment the reader has already started).
	SkipHeader bool

	Clock  clock.Clock
	Logger *slog.Logger
	// OnEvent, if set, receives fragments, gaps, resumes and decryption
	// drops. It is called from the reading goroutines and must not block.
	OnEvent func(Event)
}

// EventKind tells what an Event reports.
type EventKind int

// Event kinds.
const (
	// EventFragment: a fragment was received and its frames emitted.
	// Number, Producer, Server, Time (where it starts in the output) and,
	// live, MillisBehindNow (-1 when the service did not say) are set.
	EventFragment EventKind = iota
	// EventGap: the next fragment starts GapTo, the last frame was at
	// GapFrom (output stream time).
	EventGap
	// EventResume: the source reconnects after Err; Token is the
	// continuation token (or the fragment number, archived) it resumes
	// after, Attempt counts the reconnections since the last frame.
	EventResume
	// EventDecryptDrop: frames or key bundles that did not decrypt; Err is
	// the latest cause, Dropped the frames dropped so far, Report the
	// decryption report.
	EventDecryptDrop
)

func (k EventKind) String() string {
	switch k {
	case EventFragment:
		return "fragment"
	case EventGap:
		return "gap"
	case EventResume:
		return "resume"
	case EventDecryptDrop:
		return "decrypt-drop"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one report of a Source.
type Event struct {
	Kind            EventKind
	Number          string        // fragment number
	Producer        time.Time     // producer timestamp of the fragment
	Server          time.Time     // server timestamp of the fragment
	Time            time.Duration // output stream time of the fragment's cluster
	MillisBehindNow int64         // live: how far behind the stream's head (ms), -1 if unknown
	GapFrom, GapTo  time.Duration
	Token           string
	Attempt         int
	Err             error
	Dropped         int
	Report          *mkvstream.Report
}

// Source reads one stream. Run it once; for another position make another
// Source.
type Source struct {
	cfg Config
	ctl *kvs.Control

	mu       sync.Mutex
	origin   *uint64
	list     []kvs.FragmentInfo // archived: the range's fragments, once listed
	segStart int64              // archived: where the output segment's data starts
}

// New validates cfg and fills its defaults.
func New(cfg Config) (*Source, error) {
	if err := kvs.ValidateStreamName(cfg.StreamName); err != nil {
		return nil, fmt.Errorf("%w: stream-name: %v", ErrSettings, err)
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("%w: no credentials", ErrSettings)
	}
	if cfg.CompletionTimeout <= 0 {
		cfg.CompletionTimeout = DefaultCompletionTimeout
	}
	if cfg.ReconnectTimeout <= 0 {
		cfg.ReconnectTimeout = DefaultReconnectTimeout
	}
	if cfg.GapThreshold <= 0 {
		cfg.GapThreshold = DefaultGapThreshold
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	cfg.Batch = min(cfg.Batch, kvs.MaxFragmentList)
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Archive != nil {
		a := cfg.Archive
		if a.Start.IsZero() || a.End.IsZero() {
			return nil, fmt.Errorf("%w: an archived range needs a start and an end time", ErrSettings)
		}
		if !a.End.After(a.Start) {
			return nil, fmt.Errorf("%w: the archived range ends (%s) before it starts (%s)", ErrSettings,
				a.End.UTC().Format(time.RFC3339Nano), a.Start.UTC().Format(time.RFC3339Nano))
		}
	} else if err := checkSelector(cfg.Start); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSettings, err)
	}
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: cfg.Endpoint, Region: cfg.Region, Credentials: cfg.Credentials,
		HTTPClient: cfg.HTTPClient, CallTimeout: cfg.CompletionTimeout, Clock: cfg.Clock})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	s := &Source{cfg: cfg, ctl: ctl}
	if cfg.Origin != nil {
		o := *cfg.Origin
		s.origin = &o
	}
	return s, nil
}

// checkSelector is GetMedia's validation, ahead of the first request.
func checkSelector(sel kvs.StartSelector) error {
	switch sel.Type {
	case "EARLIEST", "NOW":
	case "FRAGMENT_NUMBER":
		if !isDigits(sel.AfterFragmentNumber) {
			return fmt.Errorf("start-selector FRAGMENT_NUMBER needs a fragment number (1 to %d digits), not %q", kvs.MaxFragmentNumberLen, sel.AfterFragmentNumber)
		}
	case "PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP":
		if sel.StartTimestamp.IsZero() {
			return fmt.Errorf("start-selector %s needs a start time", sel.Type)
		}
	case "CONTINUATION_TOKEN":
		if sel.ContinuationToken == "" {
			return errors.New("start-selector CONTINUATION_TOKEN needs a continuation token")
		}
	default:
		return fmt.Errorf("unknown start selector %q (NOW, EARLIEST, FRAGMENT_NUMBER, PRODUCER_TIMESTAMP, SERVER_TIMESTAMP, CONTINUATION_TOKEN)", sel.Type)
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" || len(s) > kvs.MaxFragmentNumberLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Origin is the timecode that became 0 in the output (nil before the first
// cluster).
func (s *Source) Origin() *uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.origin == nil {
		return nil
	}
	o := *s.origin
	return &o
}

func (s *Source) event(ev Event) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(ev)
	}
}

// errStopped ends the inner stages when Run returns first.
var errStopped = errors.New("source: stopped")

// Run reads the stream and calls emit with the output, one Matroska
// segment, in order: the header, then every cluster start and frame. emit
// must not keep the slice; an error from it ends Run with that error.
// Run returns nil at the end of an archived range or after IdleTimeout
// (live), the cause of ctx when it is cancelled, and otherwise the error
// that ended reading.
func (s *Source) Run(ctx context.Context, emit func([]byte) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(errStopped)
	var wg sync.WaitGroup
	defer wg.Wait()

	pr, pw := io.Pipe()
	var fetchErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		f := &fetcher{s: s, w: pw}
		fetchErr = f.run(ctx)
		pw.CloseWithError(fetchErr) // nil: EOF
	}()
	defer pr.CloseWithError(errStopped)
	var r io.Reader = pr
	var decErr error
	if s.cfg.Decrypt != nil {
		dr, dw := io.Pipe()
		defer dr.CloseWithError(errStopped)
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := mkvstream.Options{Live: true, MismatchAfter: mismatchFrames,
				OnProblem: func(err error, rep *mkvstream.Report) error {
					s.event(Event{Kind: EventDecryptDrop, Err: err, Dropped: rep.Dropped(), Report: rep})
					return nil
				}}
			_, decErr = mkvstream.Decrypt(dw, pr, *s.cfg.Decrypt, opts)
			pr.CloseWithError(errStopped) // stop the fetcher if decryption ended first
			dw.CloseWithError(decErr)
		}()
		r = dr
	}
	j := &joiner{s: s, emit: emit}
	err := j.run(r)
	cancel(errStopped)
	pr.CloseWithError(errStopped)
	wg.Wait()
	switch {
	case ctx.Err() != nil && context.Cause(ctx) != errStopped:
		return context.Cause(ctx)
	case fetchErr != nil && !errors.Is(fetchErr, errStopped):
		return fetchErr
	case decErr != nil && !errors.Is(decErr, errStopped):
		return decErr
	}
	return err
}
