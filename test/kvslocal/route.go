package kvslocal

import (
	"net/http"
	"strings"
)

// One URL for every service, as LocalStack does it: a request goes to the
// service its SigV4 credential scope names (…/<date>/<region>/<service>/
// aws4_request). kinesisvideo is the endpoint itself; kms is its KMS
// (kmsapi.go); the others (iot and execute-api, iam, sts) are
// Config.Services, which test/kvslocal/iam supplies. Each service verifies
// the signature for its own name and answers in its own protocol: a
// request signed for one service cannot be replayed to another.

// Service is another AWS service served at the endpoint's URL.
type Service interface {
	// ServeAWS answers a request whose signature verified for the
	// service; body is the whole request body.
	ServeAWS(w http.ResponseWriter, r *http.Request, body []byte, call Call)
	// AuthError answers a request whose signature did not verify, in the
	// service's error shape.
	AuthError(w http.ResponseWriter, r *http.Request, body []byte, e *SigV4Error)
}

// Call is who made a verified request, and for which service.
type Call struct {
	AccessKeyID string
	// Service is the signing name of the credential scope (iot,
	// execute-api, iam, sts, kms).
	Service string
	// Principal is the caller's ARN as IAM names it: an IAM user, an
	// assumed role, or the endpoint's own user for Config.Credentials.
	Principal string
}

// scopeService is the service an Authorization header's credential scope
// names, or "" when there is none to read.
func scopeService(r *http.Request) string {
	_, rest, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ := strings.Cut(rest, ",")
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[3]
}

// EventSource is the eventSource CloudTrail gives a signing name's calls.
func EventSource(service string) string {
	switch service {
	case "execute-api", "iot":
		return "iot.amazonaws.com"
	case "":
		return auditEventSource
	}
	return service + ".amazonaws.com"
}

// service returns the Service a signing name routes to: KMS is built in.
func (s *Server) service(name string) Service {
	if name == "kms" {
		return kmsService{s}
	}
	return s.cfg.Services[name]
}

// serveOther verifies and answers a request for a service other than
// kinesisvideo.
func (s *Server) serveOther(w http.ResponseWriter, r *http.Request, body []byte, name string, svc Service) {
	NoteAuditCall(w, EventSource(name), "", nil)
	v := SigV4Verifier{Service: name, Now: s.cfg.Now, Lookup: s.credential}
	if name != "iam" && name != "sts" { // global services sign any region (us-east-1 on AWS)
		v.Region = s.cfg.Region
	}
	key, e := v.Verify(r, body, false)
	if e != nil {
		s.log.Info("request rejected", "service", name, "path", r.URL.Path, "error", e.Message)
		svc.AuthError(w, r, body, e)
		return
	}
	s.log.Debug("request", "service", name, "path", r.URL.Path, "access_key", key)
	svc.ServeAWS(w, r, body, Call{AccessKeyID: key, Service: name, Principal: s.principalARN(key)})
}

// principalARN is the caller's ARN: the Credential's, or the endpoint's
// own IAM user.
func (s *Server) principalARN(key string) string {
	if c, ok := s.credential(key); ok && c.ARN != "" {
		return c.ARN
	}
	return "arn:aws:iam::" + s.cfg.AccountID + ":user/" + s.userName()
}

// userName is the IAM user name of the endpoint's own credentials.
func (s *Server) userName() string {
	if s.cfg.UserName != "" {
		return s.cfg.UserName
	}
	return auditUserName
}

// servePublic answers an unsigned GET of one of Config.PublicFiles (the CA
// certificate the IoT walkthrough downloads); false if it is not one.
func (s *Server) servePublic(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet || r.Header.Get("Authorization") != "" {
		return false
	}
	b, ok := s.cfg.PublicFiles[r.URL.Path]
	if !ok {
		return false
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(b)
	return true
}
