// Package kvslocal is a loopback Kinesis Video Streams endpoint that behaves
// like AWS on the wire, so that kvsgo and the official clients can be tested
// offline: the restJson1 control plane, SigV4 verification of every request
// with AWS's error shapes, PutMedia in full duplex with fragment
// acknowledgements and durable storage (PERSISTED only after fsync),
// GetMedia, ListFragments and GetMediaForFragmentList in the layout of the
// real service. cmd/kvslocal runs it standalone.
//
// It is test infrastructure: it listens where it is told (loopback), keeps
// everything under Config.Dir, and never logs secrets or signatures. It
// imports the standard library and pkg/mkv only: never the AWS SDK (its
// tests use the SDK as a client) nor the kvsgo packages it tests.
package kvslocal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"
)

// Credential is an identity the endpoint accepts. A non-empty SessionToken
// must come as X-Amz-Security-Token.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Expires, if set, is when the credential stops being accepted
	// (ExpiredTokenException), as temporary credentials do.
	Expires time.Time
	// ARN is the principal the audit log names: an IAM user
	// (arn:aws:iam::ACCOUNT:user/NAME) or an assumed role
	// (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION). Empty means the
	// endpoint's own IAM user.
	ARN string
}

// Faults are test hooks that make the endpoint misbehave on purpose.
type Faults struct {
	// WithholdAcks stops RECEIVED and PERSISTED acknowledgements (BUFFERING
	// and IDLE still flow), as a service that never confirms storage.
	WithholdAcks bool
	// WithholdPersisted stops PERSISTED acknowledgements only: fragments
	// are stored and acknowledged RECEIVED, never PERSISTED.
	WithholdPersisted bool
	// DropAfterBytes, when positive, closes a PutMedia connection (no
	// ERROR ack, no clean end) once that many body bytes have arrived,
	// as a network failure would (faults.go).
	DropAfterBytes int64
	// AckDelay holds each acknowledgement back this long before it is
	// sent (the ingest waits too, as a slow service would).
	AckDelay time.Duration
	// ErrorAck, when ID is non-zero, answers the Fragment-th fragment
	// (0-based, counted per PutMedia connection) with an ERROR ack of that
	// ErrorId instead of storing it, ending the connection.
	ErrorAck ErrorAck
	// Refuse closes every new request's TCP connection without answering.
	Refuse bool
	// ClockSkew is added to Config.Now: signatures, Date and server
	// timestamps all see the skewed clock.
	ClockSkew time.Duration
	// PauseReads stops reading PutMedia bodies while it is set: TCP then
	// pushes back on the producer, as a congested network does.
	PauseReads bool
}

// Config configures a Server. New fills the defaults.
type Config struct {
	Dir         string // durable storage root (required)
	Region      string // region clients sign for; default us-west-2
	AccountID   string // account in ARNs; default 123456789012
	Credentials []Credential
	Now         func() time.Time // clock for signatures, Date and timestamps; default time.Now
	Logger      *slog.Logger     // default: discard
	// CaptureBodies also keeps every PutMedia body verbatim as
	// Dir/captures/<stream>/<n>.mkv.
	CaptureBodies bool
	// IdleAckInterval is how long a PutMedia connection may receive no data
	// before an IDLE ack is sent (and between IDLE acks); default 3 s.
	IdleAckInterval time.Duration
	// GetMediaIdleTimeout ends a GetMedia response that has had no new
	// fragment for this long (a real client reads until EOF); default 3 s.
	GetMediaIdleTimeout time.Duration
	Faults              Faults
	// TLS, if set, serves HTTPS (HTTP/1.1 only) with this certificate, and
	// URL becomes https://localhost:PORT (tls.go). Default: plain HTTP.
	TLS *TLSConfig
	// AuditLog, if set, is a file to which a CloudTrail-shaped event of
	// every API call is appended as a JSON line (audit.go).
	AuditLog string
	// MasterKeyFile holds the master key of encryption at rest (kms.go):
	// 32 bytes, hex. It is created (0600) when absent and Dir holds no
	// keys yet. It defaults to Dir + ".master-key", beside Dir and never
	// inside it: Dir alone reveals no fragment.
	MasterKeyFile string
	// Authorizer, if set, is the endpoint's IAM: it supplies the
	// credentials it knows (its IAM users' long-term keys and the temporary
	// credentials it issued), and every request whose signature verified is
	// authorized by it before it runs (authz.go; test/kvslocal/iam).
	Authorizer Authorizer
	// Services are the other AWS services served at the same URL, by the
	// signing name of the credential scope (route.go): test/kvslocal/iam
	// supplies iot and execute-api, iam and sts. kms is built in.
	Services map[string]Service
	// PublicFiles are served to unsigned GETs by URL path, such as the CA
	// certificate the IoT walkthrough downloads with curl.
	PublicFiles map[string][]byte
	// UserName is the IAM user name of Credentials (the endpoint's own
	// keys) in the audit log and in GetCallerIdentity; default kvslocal.
	UserName string
}

// Defaults.
const (
	DefaultRegion              = "us-west-2"
	DefaultAccountID           = "123456789012"
	DefaultIdleAckInterval     = 3 * time.Second
	DefaultGetMediaIdleTimeout = 3 * time.Second
	// maxControlBody bounds the body of every call but PutMedia: the
	// largest real request (50 tags) is a few KiB.
	maxControlBody = 1 << 20
	// headerTimeout and controlBodyTimeout bound slow clients: a real
	// request's headers and body (a few KiB) take milliseconds.
	headerTimeout      = 10 * time.Second
	controlBodyTimeout = 20 * time.Second
	// closeWait bounds how long Close waits for handlers to return once
	// their connections are closed.
	closeWait = 5 * time.Second
)

// Server is the endpoint.
type Server struct {
	cfg   Config
	log   *slog.Logger
	creds map[string]Credential
	store *store

	mu       sync.Mutex
	url      string
	srv      *http.Server
	faults   Faults
	closed   bool
	closing  chan struct{}
	handlers sync.WaitGroup  // PutMedia and GetMedia handlers
	active   map[string]bool // streams with a PutMedia connection

	maxFragment int64     // bytes per fragment (4001 beyond); a test seam
	audit       *auditLog // Config.AuditLog, or nil (audit.go)
	kms         *KMS      // encryption at rest (kms.go)
	// headerTimeout and bodyTimeout bound how long a client may take to
	// send its headers, and the body of a call other than PutMedia; test
	// seams.
	headerTimeout, bodyTimeout time.Duration
}

// New opens (or creates) the storage in cfg.Dir.
func New(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("kvslocal: Config.Dir is required")
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.AccountID == "" {
		cfg.AccountID = DefaultAccountID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.IdleAckInterval <= 0 {
		cfg.IdleAckInterval = DefaultIdleAckInterval
	}
	if cfg.GetMediaIdleTimeout <= 0 {
		cfg.GetMediaIdleTimeout = DefaultGetMediaIdleTimeout
	}
	st, err := openStore(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, creds: map[string]Credential{}, store: st, faults: cfg.Faults,
		closing: make(chan struct{}), active: map[string]bool{}, maxFragment: maxFragmentBytes,
		headerTimeout: headerTimeout, bodyTimeout: controlBodyTimeout}
	s.cfg.Now = s.skewed(cfg.Now) // Faults.ClockSkew (faults.go)
	st.now = s.cfg.Now            // retention (retention.go)
	for _, c := range cfg.Credentials {
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return nil, errors.New("kvslocal: a credential needs an access key ID and a secret access key")
		}
		s.creds[c.AccessKeyID] = c
	}
	if cfg.MasterKeyFile == "" {
		cfg.MasterKeyFile = filepath.Clean(cfg.Dir) + ".master-key"
		s.cfg.MasterKeyFile = cfg.MasterKeyFile
	}
	if s.kms, err = openKMS(cfg.Dir, cfg.MasterKeyFile, cfg.Region, cfg.AccountID, s.cfg.Now); err != nil {
		return nil, err
	}
	if cfg.AuditLog != "" {
		if s.audit, err = openAuditLog(cfg.AuditLog); err != nil {
			return nil, err
		}
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

// Start listens on addr (e.g. 127.0.0.1:0), serves in the background and
// returns the base URL.
func (s *Server) Start(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("kvslocal: %w", err)
	}
	srv, err := s.prepare(l)
	if err != nil {
		l.Close()
		return "", err
	}
	go s.serve(srv, l)
	return s.URL(), nil
}

// Serve serves on l until Close. It returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	srv, err := s.prepare(l)
	if err != nil {
		return err
	}
	return s.serve(srv, l)
}

func (s *Server) prepare(l net.Listener) (*http.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("kvslocal: server closed")
	}
	if s.srv != nil {
		return nil, errors.New("kvslocal: already serving")
	}
	s.url = "http://" + l.Addr().String()
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.headerTimeout, // headers must arrive promptly (slow clients)
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if err := s.setupTLS(s.srv, l); err != nil { // tls.go
		s.srv = nil
		return nil, err
	}
	return s.srv, nil
}

func (s *Server) serve(srv *http.Server, l net.Listener) error {
	go s.sweep() // retention.go
	if err := srv.Serve(tlsListener(srv, l)); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("kvslocal: %w", err)
	}
	return nil
}

// URL is the base URL clients use (also what GetDataEndpoint returns).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Close stops serving: it closes the listener and every connection (an
// unfinished fragment is dropped, never acknowledged) and waits for the
// handlers to return. The storage stays in Dir for the next New.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	s.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
		return errors.New("kvslocal: handlers still running after Close")
	}
	if s.audit != nil {
		if aerr := s.audit.close(); err == nil {
			err = aerr
		}
	}
	return err
}

// ServeHTTP verifies the signature of every request, then dispatches by
// path, as the service does. Every response carries Date from the
// endpoint's clock (SDKs correct clock skew from it) and a request ID.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.refused(w) { // Faults.Refuse (faults.go)
		return
	}
	w = s.auditStart(w, r) // Config.AuditLog (audit.go)
	defer s.auditEnd(w)
	w.Header().Set("Date", s.cfg.Now().UTC().Format(http.TimeFormat))
	w.Header().Set("x-amzn-RequestId", newRequestID())
	if s.servePublic(w, r) { // route.go
		return
	}
	name := scopeService(r)
	svc := s.service(name)
	streaming := r.URL.Path == "/putMedia" && svc == nil
	var body []byte
	if !streaming {
		// A client that dribbles its body must not hold a handler.
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.bodyTimeout))
		b, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
		if err != nil {
			writeError(w, newErr("SerializationException", "Could not read the request body."))
			return
		}
		if len(b) > maxControlBody {
			writeError(w, newErr("RequestEntityTooLargeException", fmt.Sprintf("The request body is larger than %d bytes.", maxControlBody)))
			return
		}
		body = b
		auditBody(w, body)
	}
	if svc != nil {
		s.serveOther(w, r, body, name, svc) // route.go
		return
	}
	id, e := s.verify(r, body, streaming)
	if e != nil {
		s.log.Info("request rejected", "path", r.URL.Path, "error", e.code)
		writeError(w, e)
		return
	}
	s.log.Debug("request", "path", r.URL.Path, "access_key", id.AccessKeyID)
	if e := s.authorize(r, body, id); e != nil { // authz.go
		s.log.Info("request denied", "path", r.URL.Path, "error", e.code)
		writeError(w, e)
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, newErr("UnknownOperationException", fmt.Sprintf("%s %s is not an operation of this service.", r.Method, r.URL.Path)))
		return
	}
	switch r.URL.Path {
	case "/putMedia":
		s.track(w, func() { s.putMedia(w, r, id) })
	case "/getMedia":
		s.track(w, func() { s.getMedia(w, r, body) })
	case "/getMediaForFragmentList":
		s.track(w, func() { s.getMediaForFragmentList(w, body) })
	case "/listFragments":
		s.listFragments(w, body)
	default:
		op, ok := controlOps[r.URL.Path]
		if !ok {
			writeError(w, newErr("UnknownOperationException", fmt.Sprintf("%s is not an operation of this service.", r.URL.Path)))
			return
		}
		out, e := op(s, body)
		if e != nil {
			writeError(w, e)
			return
		}
		writeJSON(w, out)
	}
}

// track runs a long-lived handler so that Close can wait for it.
func (s *Server) track(w http.ResponseWriter, fn func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, newErr("InternalFailure", "The endpoint is shutting down."))
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()
	fn()
}
