package iam

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// Defaults.
const (
	DefaultAccountID          = kvslocal.DefaultAccountID
	DefaultRegion             = kvslocal.DefaultRegion
	DefaultCredentialDuration = time.Hour
	iotServicePrincipal       = "credentials.iot.amazonaws.com"
)

// Options are a Server's environment.
type Options struct {
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default: discard
}

// Server holds the IAM/IoT state and issues temporary credentials. It is a
// kvslocal.Authorizer; StartIoT and StartSTS serve its two endpoints.
type Server struct {
	account, region string
	now             func() time.Time
	log             *slog.Logger
	override        time.Duration

	users   map[string]*User        // by access key id
	roles   map[string]*Role        // by ARN
	aliases map[string]*RoleAlias   // by name
	iotPols map[string]Policy       // by name
	certs   map[string]*certificate // by certificate id
	things  map[string]*Thing       // by name

	issued atomic.Int64

	mu       sync.Mutex
	sessions map[string]*session // by access key id
	servers  []*http.Server
}

type certificate struct {
	id       string
	active   bool
	policies []string
}

// session is a set of temporary credentials and the identity behind them.
type session struct {
	cred     kvslocal.Credential
	arn      string // arn:aws:sts::<account>:assumed-role/<role>/<session>
	userID   string // AROA…:<session>
	policies []Policy
	vars     map[string]string
}

// New validates f and returns a Server.
func New(f *File, o Options) (*Server, error) {
	s := &Server{account: f.AccountID, region: f.Region, now: o.Now, log: o.Logger,
		users: map[string]*User{}, roles: map[string]*Role{}, aliases: map[string]*RoleAlias{}, iotPols: f.IoTPolicies,
		certs: map[string]*certificate{}, things: map[string]*Thing{}, sessions: map[string]*session{}}
	if s.account == "" {
		s.account = DefaultAccountID
	}
	if s.region == "" {
		s.region = DefaultRegion
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.iotPols == nil {
		s.iotPols = map[string]Policy{}
	}
	var err error
	if s.override, err = f.duration(); err != nil {
		return nil, err
	}
	for i := range f.Users {
		u := &f.Users[i]
		if u.Name == "" || u.AccessKeyID == "" || u.SecretAccessKey == "" {
			return nil, fmt.Errorf("iam: user %d needs name, accessKeyId and secretAccessKey", i)
		}
		s.users[u.AccessKeyID] = u
	}
	for i := range f.Roles {
		r := &f.Roles[i]
		if r.Name == "" {
			return nil, fmt.Errorf("iam: role %d has no name", i)
		}
		if r.MaxSessionDuration == 0 {
			r.MaxSessionDuration = 3600
		}
		s.roles[s.RoleARN(r.Name)] = r
	}
	for i := range f.RoleAliases {
		a := &f.RoleAliases[i]
		if a.Name == "" || a.RoleARN == "" {
			return nil, fmt.Errorf("iam: role alias %d needs roleAlias and roleArn", i)
		}
		if a.CredentialDurationSeconds == 0 {
			a.CredentialDurationSeconds = 3600
		}
		s.aliases[a.Name] = a
	}
	byFile := map[string]string{}
	for i, c := range f.Certificates {
		pemText := []byte(c.PEM)
		if c.PEMFile != "" {
			if pemText, err = os.ReadFile(c.PEMFile); err != nil {
				return nil, fmt.Errorf("iam: certificate %d: %w", i, err)
			}
		}
		id, err := certificateIDFromPEM(pemText)
		if err != nil {
			return nil, fmt.Errorf("iam: certificate %d: %w", i, err)
		}
		for _, p := range c.Policies {
			if _, ok := s.iotPols[p]; !ok {
				return nil, fmt.Errorf("iam: certificate %d: no IoT policy %q", i, p)
			}
		}
		s.certs[id] = &certificate{id: id, active: c.Status == "" || strings.EqualFold(c.Status, "ACTIVE"), policies: c.Policies}
		if c.PEMFile != "" {
			byFile[c.PEMFile] = id
		}
	}
	for i := range f.Things {
		t := &f.Things[i]
		for k, p := range t.Principals {
			switch {
			case byFile[p] != "":
				t.Principals[k] = byFile[p]
			case strings.Contains(p, ":cert/"):
				t.Principals[k] = p[strings.LastIndex(p, "/")+1:]
			}
		}
		s.things[t.Name] = t
	}
	return s, nil
}

// RoleARN is a role's ARN in this account.
func (s *Server) RoleARN(name string) string { return "arn:aws:iam::" + s.account + ":role/" + name }

// RoleAliasARN is a role alias's ARN, as IoT policies name it.
func (s *Server) RoleAliasARN(alias string) string {
	return "arn:aws:iot:" + s.region + ":" + s.account + ":rolealias/" + alias
}

// Credential returns the long-term key of a user or temporary credentials
// this server issued (kvslocal.Authorizer).
func (s *Server) Credential(accessKeyID string) (kvslocal.Credential, bool) {
	if u, ok := s.users[accessKeyID]; ok {
		return kvslocal.Credential{AccessKeyID: u.AccessKeyID, SecretAccessKey: u.SecretAccessKey,
			ARN: "arn:aws:iam::" + s.account + ":user/" + u.Name}, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.sessions[accessKeyID]; ok {
		c := ss.cred
		c.ARN = ss.arn
		return c, true
	}
	return kvslocal.Credential{}, false
}

// Authorize evaluates the caller's identity policies (kvslocal.Authorizer).
// Keys this server does not know (kvslocal.Config.Credentials) act as the
// account's root and are always allowed.
func (s *Server) Authorize(r kvslocal.AuthzRequest) error {
	arn, policies, vars, ok := s.identity(r.AccessKeyID)
	if !ok {
		return nil
	}
	d := Evaluate(policies, Request{Action: r.Action, Resource: r.Resource, Context: vars})
	s.log.Debug("authorize", "principal", arn, "action", r.Action, "resource", r.Resource, "decision", d.String())
	switch d {
	case Allowed:
		return nil
	case ExplicitDeny:
		return fmt.Errorf("User: %s is not authorized to perform: %s on resource: %s with an explicit deny in an identity-based policy", arn, r.Action, r.Resource)
	}
	return fmt.Errorf("User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action", arn, r.Action, r.Resource, r.Action)
}

// identity returns who holds an access key: ARN, policies and context keys.
func (s *Server) identity(akid string) (string, []Policy, map[string]string, bool) {
	if u, ok := s.users[akid]; ok {
		arn := "arn:aws:iam::" + s.account + ":user/" + u.Name
		return arn, u.Policies, map[string]string{"aws:username": u.Name, "aws:PrincipalArn": arn, "aws:PrincipalAccount": s.account}, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.sessions[akid]; ok {
		return ss.arn, ss.policies, ss.vars, true
	}
	return "", nil, nil, false
}

// issue mints temporary credentials for a role session.
func (s *Server) issue(role *Role, sessionName string, d time.Duration, vars map[string]string) *session {
	if s.override > 0 {
		d = s.override
	}
	now := s.now().UTC().Truncate(time.Second)
	ss := &session{
		cred: kvslocal.Credential{AccessKeyID: "ASIA" + randomID(16), SecretAccessKey: randomSecret(30), SessionToken: randomSecret(180),
			Expires: now.Add(d)},
		arn:      "arn:aws:sts::" + s.account + ":assumed-role/" + role.Name + "/" + sessionName,
		userID:   roleID(role.Name) + ":" + sessionName,
		policies: role.Policies,
		vars:     map[string]string{},
	}
	for k, v := range vars {
		ss.vars[k] = v
	}
	ss.vars["aws:PrincipalArn"] = s.RoleARN(role.Name)
	ss.vars["aws:PrincipalAccount"] = s.account
	ss.vars["aws:userid"] = ss.userID
	s.issued.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, old := range s.sessions { // forget credentials that expired long ago
		if now.Sub(old.cred.Expires) > time.Hour {
			delete(s.sessions, k)
		}
	}
	s.sessions[ss.cred.AccessKeyID] = ss
	return ss
}

// Issued counts the temporary credentials issued so far (IoT and STS).
func (s *Server) Issued() int { return int(s.issued.Load()) }

// Close stops the IoT and STS endpoints.
func (s *Server) Close() error {
	s.mu.Lock()
	srvs := s.servers
	s.servers = nil
	s.mu.Unlock()
	var errs []error
	for _, h := range srvs {
		errs = append(errs, h.Close())
	}
	return errors.Join(errs...)
}

func (s *Server) serve(l net.Listener, h http.Handler, wrap func(net.Listener) net.Listener) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	srv.SetKeepAlivesEnabled(true)
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	go srv.Serve(wrap(l))
}

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base32.StdEncoding.EncodeToString(b)[:n]
}

func randomSecret(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func roleID(name string) string {
	h := sha256.Sum256([]byte("role/" + name))
	return "AROA" + strings.ToUpper(base32.StdEncoding.EncodeToString(h[:])[:17])
}

func userID(name string) string {
	h := sha256.Sum256([]byte("user/" + name))
	return "AIDA" + strings.ToUpper(base32.StdEncoding.EncodeToString(h[:])[:17])
}

func requestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
