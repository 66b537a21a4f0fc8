package iam

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
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
	// OwnUserName is the IAM user name of the KVS endpoint's own keys
	// (kvslocal.Config.UserName); default kvslocal.
	OwnUserName string
	// CA signs the certificates CreateKeysAndCertificate makes, and is
	// the CA the IoT walkthrough downloads; default: a new one.
	CA *CA
}

// Server holds the IAM/IoT state and issues temporary credentials. It is a
// kvslocal.Authorizer; Services serves its control planes (IoT, IAM, STS) at
// the KVS endpoint's URL, and StartIoT its credentials provider. Its state
// starts from a File and changes through the control planes; every change is
// effective on the next call.
type Server struct {
	account, region string
	now             func() time.Time
	log             *slog.Logger
	override        time.Duration

	issued atomic.Int64

	mu       sync.Mutex
	users    map[string]*user        // by name
	keys     map[string]*accessKey   // by access key id
	roles    map[string]*role        // by name
	managed  map[string]*managed     // by ARN
	aliases  map[string]*roleAlias   // by name
	iotPols  map[string]*iotPolicy   // by name
	certs    map[string]*certificate // by certificate id
	things   map[string]*thing       // by name
	types    map[string]*thingType   // by name
	sessions map[string]*session     // by access key id
	servers  []*http.Server
	ca       *CA                        // signs the certificates CreateKeysAndCertificate makes
	iotEP    string                     // the credentials provider, host:port (StartIoT)
	audit    func(kvslocal.AuditRecord) // SetAudit
	// ownARN is the principal of keys the Server does not know: the
	// endpoint's own (kvslocal.Config.Credentials), its IAM user.
	ownARN string
}

// session is a set of temporary credentials and the identity behind them.
// Its role's policies are looked up on every call: a policy change applies
// to credentials already issued, as in IAM.
type session struct {
	cred   kvslocal.Credential
	arn    string // arn:aws:sts::<account>:assumed-role/<role>/<session>
	userID string // AROA…:<session>
	role   string // role name
	vars   map[string]string
}

// New validates f and returns a Server.
func New(f *File, o Options) (*Server, error) {
	s := &Server{account: f.AccountID, region: f.Region, now: o.Now, log: o.Logger, ca: o.CA,
		users: map[string]*user{}, keys: map[string]*accessKey{}, roles: map[string]*role{}, managed: map[string]*managed{},
		aliases: map[string]*roleAlias{}, iotPols: map[string]*iotPolicy{}, certs: map[string]*certificate{},
		things: map[string]*thing{}, types: map[string]*thingType{}, sessions: map[string]*session{}}
	if o.OwnUserName == "" {
		o.OwnUserName = "kvslocal"
	}
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
	s.ownARN = s.userARN(o.OwnUserName)
	var err error
	if s.override, err = f.duration(); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	for name, p := range f.IoTPolicies {
		doc, _ := json.Marshal(p)
		s.iotPols[name] = &iotPolicy{name: name, doc: string(doc), p: p, created: now, modified: now}
	}
	for i := range f.Users {
		u := &f.Users[i]
		if u.Name == "" || u.AccessKeyID == "" || u.SecretAccessKey == "" {
			return nil, fmt.Errorf("iam: user %d needs name, accessKeyId and secretAccessKey", i)
		}
		nu := s.users[u.Name]
		if nu == nil {
			nu = &user{name: u.Name, id: userID(u.Name), path: "/", created: now}
			s.users[u.Name] = nu
		}
		for j, p := range u.Policies {
			nu.inline = append(nu.inline, newNamed(fmt.Sprintf("policy-%d", j+1), p))
		}
		s.keys[u.AccessKeyID] = &accessKey{id: u.AccessKeyID, secret: u.SecretAccessKey, user: u.Name, status: "Active", created: now}
	}
	for i := range f.Roles {
		r := &f.Roles[i]
		if r.Name == "" {
			return nil, fmt.Errorf("iam: role %d has no name", i)
		}
		if r.MaxSessionDuration == 0 {
			r.MaxSessionDuration = 3600
		}
		nr := &role{name: r.Name, id: roleID(r.Name), path: "/", created: now, trust: newNamed("", r.TrustPolicy), maxSession: r.MaxSessionDuration}
		for j, p := range r.Policies {
			nr.inline = append(nr.inline, newNamed(fmt.Sprintf("policy-%d", j+1), p))
		}
		s.roles[r.Name] = nr
	}
	for i := range f.RoleAliases {
		a := &f.RoleAliases[i]
		if a.Name == "" || a.RoleARN == "" {
			return nil, fmt.Errorf("iam: role alias %d needs roleAlias and roleArn", i)
		}
		if a.CredentialDurationSeconds == 0 {
			a.CredentialDurationSeconds = 3600
		}
		s.aliases[a.Name] = &roleAlias{name: a.Name, roleARN: a.RoleARN, duration: a.CredentialDurationSeconds, created: now, modified: now}
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
		status := strings.ToUpper(c.Status)
		if status == "" {
			status = CertActive
		}
		s.certs[id] = &certificate{id: id, pem: string(pemText), status: status, policies: c.Policies, created: now, modified: now}
		if c.PEMFile != "" {
			byFile[c.PEMFile] = id
		}
	}
	for i := range f.Things {
		t := f.Things[i]
		nt := &thing{name: t.Name, id: thingID(t.Name), typeName: t.TypeName, version: 1}
		for _, p := range t.Principals {
			switch {
			case byFile[p] != "":
				p = byFile[p]
			case strings.Contains(p, ":cert/"):
				p = p[strings.LastIndex(p, "/")+1:]
			}
			nt.principals = append(nt.principals, p)
		}
		s.things[t.Name] = nt
		if t.TypeName != "" && s.types[t.TypeName] == nil {
			s.types[t.TypeName] = &thingType{name: t.TypeName, id: thingID("type/" + t.TypeName), created: now}
		}
	}
	return s, nil
}

// SetAudit reports the credentials provider's issuances and refusals to fn
// (kvslocal.Server.Audit), which the endpoint's URL does not see.
func (s *Server) SetAudit(fn func(kvslocal.AuditRecord)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit = fn
}

func (s *Server) auditf(r kvslocal.AuditRecord) {
	s.mu.Lock()
	fn := s.audit
	s.mu.Unlock()
	if fn != nil {
		fn(r)
	}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[accessKeyID]; ok && k.status == "Active" {
		return kvslocal.Credential{AccessKeyID: k.id, SecretAccessKey: k.secret, ARN: s.userARN(k.user)}, true
	}
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

// identity returns who holds an access key: ARN, current policies (inline
// and attached) and context keys.
func (s *Server) identity(akid string) (string, []Policy, map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.identityLocked(akid)
}

func (s *Server) identityLocked(akid string) (string, []Policy, map[string]string, bool) {
	if k, ok := s.keys[akid]; ok {
		u := s.users[k.user]
		arn := s.userARN(k.user)
		var pols []Policy
		if u != nil {
			pols = s.policiesLocked(u.inline, u.attached)
		}
		return arn, pols, map[string]string{"aws:username": k.user, "aws:PrincipalArn": arn, "aws:PrincipalAccount": s.account, "aws:userid": userID(k.user)}, true
	}
	if ss, ok := s.sessions[akid]; ok {
		var pols []Policy
		if r := s.roles[ss.role]; r != nil {
			pols = s.policiesLocked(r.inline, r.attached)
		}
		return ss.arn, pols, ss.vars, true
	}
	return "", nil, nil, false
}

// policiesLocked gathers inline and attached managed policies.
func (s *Server) policiesLocked(inline []namedPolicy, attached []string) []Policy {
	var out []Policy
	for _, p := range inline {
		out = append(out, p.p)
	}
	for _, a := range attached {
		if m := s.managed[a]; m != nil {
			out = append(out, m.p)
		}
	}
	return out
}

func (s *Server) userARN(name string) string { return "arn:aws:iam::" + s.account + ":user/" + name }

// issue mints temporary credentials for a role session. Called with s.mu
// held.
func (s *Server) issueLocked(r *role, sessionName string, d time.Duration, vars map[string]string) *session {
	if s.override > 0 {
		d = s.override
	}
	now := s.now().UTC().Truncate(time.Second)
	ss := &session{
		cred: kvslocal.Credential{AccessKeyID: "ASIA" + randomID(16), SecretAccessKey: randomSecret(30), SessionToken: randomSecret(180),
			Expires: now.Add(d)},
		arn:    "arn:aws:sts::" + s.account + ":assumed-role/" + r.name + "/" + sessionName,
		userID: r.id + ":" + sessionName,
		role:   r.name,
		vars:   map[string]string{},
	}
	for k, v := range vars {
		ss.vars[k] = v
	}
	ss.vars["aws:PrincipalArn"] = s.RoleARN(r.name)
	ss.vars["aws:PrincipalAccount"] = s.account
	ss.vars["aws:userid"] = ss.userID
	s.issued.Add(1)
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
