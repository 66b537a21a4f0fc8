// Package kvslocal is a loopback Kinesis Video Streams endpoint that behaves
// like AWS on the wire: the restJson1 control plane, SigV4 verification of
// every request, PutMedia in full duplex with fragment acknowledgements and
// durable storage (PERSISTED only after fsync), and GetMedia in the layout
// of the real service. Tests and the demo run against it; it is also a
// standalone program (cmd/kvslocal).
package kvslocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Credential is an identity the endpoint accepts.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// Faults are test hooks that make the endpoint misbehave on purpose.
type Faults struct {
	// WithholdAcks stops RECEIVED and PERSISTED acknowledgements (BUFFERING
	// and IDLE still flow), as a service that never confirms storage.
	WithholdAcks bool
}

// Config configures a Server.
type Config struct {
	Dir         string // durable storage root (required)
	Region      string // default us-west-2
	AccountID   string // default 123456789012
	Credentials []Credential
	Now         func() time.Time // default time.Now; tests skew it
	Logger      *slog.Logger
	// CaptureBodies keeps every PutMedia body verbatim in
	// Dir/captures/<stream>/<n>.mkv.
	CaptureBodies bool
	// IdleAckInterval is how often IDLE acks are sent while no data
	// arrives; default 3 s.
	IdleAckInterval time.Duration
	// GetMediaIdleTimeout ends a GetMedia response that has had no new
	// fragment for this long; default 3 s.
	GetMediaIdleTimeout time.Duration
	Faults              Faults
}

// Server is the endpoint.
type Server struct {
	cfg   Config
	log   *slog.Logger
	creds map[string]Credential
	store *store

	mu       sync.Mutex
	url      string
	srv      *http.Server
	ln       net.Listener
	faults   Faults
	closing  chan struct{}
	active   map[string]bool // streams with a PutMedia connection
	captures int
}

// New opens (or creates) the storage in cfg.Dir.
func New(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("kvslocal: Config.Dir is required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-west-2"
	}
	if cfg.AccountID == "" {
		cfg.AccountID = "123456789012"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.IdleAckInterval <= 0 {
		cfg.IdleAckInterval = 3 * time.Second
	}
	if cfg.GetMediaIdleTimeout <= 0 {
		cfg.GetMediaIdleTimeout = 3 * time.Second
	}
	st, err := openStore(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, creds: map[string]Credential{}, store: st, faults: cfg.Faults, closing: make(chan struct{})}
	for _, c := range cfg.Credentials {
		s.creds[c.AccessKeyID] = c
	}
	return s, nil
}

// SetFaults changes the fault hooks while serving.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

func (s *Server) getFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Start listens on addr (e.g. 127.0.0.1:0) and serves in the background. It
// returns the base URL.
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.url = "http://" + ln.Addr().String()
	s.mu.Unlock()
	go s.Serve(ln)
	return s.URL(), nil
}

// Serve serves on l until Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	s.ln = l
	s.url = "http://" + l.Addr().String()
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second, // slowloris: headers must arrive promptly
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	srv := s.srv
	s.mu.Unlock()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// URL is the base URL clients use (also what GetDataEndpoint returns).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Close stops serving and closes the storage.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
	s.mu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}
	return s.store.close()
}

// maxControlBody bounds control-plane request bodies.
const maxControlBody = 1 << 20

// ServeHTTP verifies the signature and dispatches by path, as the service
// does (there is no X-Amz-Target on these APIs).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", s.cfg.Now().UTC().Format(http.TimeFormat))
	w.Header().Set("x-amzn-RequestId", newRequestID())
	if r.Method != http.MethodPost {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "")
		return
	}
	var body []byte
	if r.URL.Path != "/putMedia" {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, "SerializationException", "could not read the request body")
			return
		}
		if len(b) > maxControlBody {
			writeError(w, http.StatusRequestEntityTooLarge, "InvalidArgumentException", fmt.Sprintf("request body larger than %d bytes", maxControlBody))
			return
		}
		body = b
	}
	id, aerr := s.verify(r, body)
	if aerr != nil {
		s.log.Info("rejected request", "path", r.URL.Path, "error", aerr.code)
		writeError(w, aerr.status, aerr.code, aerr.msg)
		return
	}
	switch r.URL.Path {
	case "/putMedia":
		s.putMedia(w, r, id)
	case "/getMedia":
		s.getMedia(w, r, body)
	case "/listFragments":
		s.listFragments(w, r, body)
	default:
		s.control(w, r, body)
	}
}
