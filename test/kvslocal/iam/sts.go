package iam

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// STS over awsquery (form in, XML out): AssumeRole and GetCallerIdentity,
// SigV4-verified for the service "sts" with any of the users' keys or the
// temporary credentials issued here.

const stsNS = "https://sts.amazonaws.com/doc/2011-06-15/"

// StartSTS serves STS over plain HTTP on addr and returns its base URL (for
// AWS_ENDPOINT_URL_STS or credentials.Options.STSEndpoint).
func (s *Server) StartSTS(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("iam: %w", err)
	}
	s.serve(l, http.HandlerFunc(s.serveAuditedSTS), func(l net.Listener) net.Listener { return l })
	return "http://" + l.Addr().String(), nil
}

// stsRecorder keeps what the audit event of a call on the STS port needs.
type stsRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *stsRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *stsRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.status >= 400 && r.body.Len() < 4096 {
		r.body.Write(p)
	}
	return r.ResponseWriter.Write(p)
}

// serveAuditedSTS serves the STS port and reports each call to SetAudit's
// function, as the endpoint's URL reports its own.
func (s *Server) serveAuditedSTS(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &stsRecorder{ResponseWriter: w}
	s.serveSTS(rec, r)
	form, _ := url.ParseQuery(string(body))
	ev := kvslocal.AuditRecord{Source: "sts.amazonaws.com", Name: form.Get("Action"), UserAgent: r.UserAgent(), PrincipalType: "Unknown"}
	ev.SourceIP, _, _ = net.SplitHostPort(r.RemoteAddr)
	if _, rest, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
		key, _, _ := strings.Cut(rest, "/")
		if arn, _, _, known := s.identity(key); known {
			ev.PrincipalARN, ev.PrincipalType = arn, "IAMUser"
			if strings.Contains(arn, ":assumed-role/") {
				ev.PrincipalType = "AssumedRole"
			}
		}
	}
	if rec.status >= 400 {
		var x struct {
			Error struct{ Code, Message string }
		}
		xml.Unmarshal(rec.body.Bytes(), &x)
		ev.ErrorCode, ev.ErrorMsg = x.Error.Code, x.Error.Message
	}
	if ev.Name == "AssumeRole" {
		ev.Params = map[string]any{"roleArn": form.Get("RoleArn"), "roleSessionName": form.Get("RoleSessionName")}
	}
	s.auditf(ev)
}

type stsError struct {
	status        int
	code, message string
}

func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost {
		writeSTSError(w, stsError{400, "InvalidAction", "STS takes POST / with a form body."})
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeSTSError(w, stsError{400, "MalformedQueryString", "The request body is not a form."})
		return
	}
	akid, e := s.verifySTS(r, body)
	if e != nil {
		s.log.Info("sts: rejected", "error", e.code)
		writeSTSError(w, *e)
		return
	}
	s.stsAction(w, akid, form)
}

// stsAction answers a verified STS call.
func (s *Server) stsAction(w http.ResponseWriter, akid string, form url.Values) {
	arn, _, _, ok := s.identity(akid)
	switch form.Get("Action") {
	case "GetCallerIdentity":
		uid := akid
		s.mu.Lock()
		if k, found := s.keys[akid]; found {
			uid = userID(k.user)
		} else if ss, found := s.sessions[akid]; found {
			uid = ss.userID
		}
		s.mu.Unlock()
		if !ok { // the endpoint's own key: the account's administrator user
			arn = s.ownARN
		}
		writeXML(w, "GetCallerIdentity", struct {
			Arn     string
			UserId  string
			Account string
		}{arn, uid, s.account})
	case "AssumeRole":
		s.assumeRole(w, akid, arn, form)
	default:
		writeSTSError(w, stsError{400, "InvalidAction", fmt.Sprintf("Could not find operation %s for version 2011-06-15", form.Get("Action"))})
	}
}

func (s *Server) assumeRole(w http.ResponseWriter, akid, caller string, form url.Values) {
	roleARN, name := form.Get("RoleArn"), form.Get("RoleSessionName")
	if !sessionNameRE.MatchString(name) {
		writeSTSError(w, stsError{400, "ValidationError", "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"})
		return
	}
	if caller == "" {
		caller = s.ownARN
	}
	denied := stsError{403, "AccessDenied", fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller, roleARN)}
	s.mu.Lock()
	defer s.mu.Unlock()
	role := s.roleByARNLocked(roleARN)
	if role == nil {
		writeSTSError(w, denied)
		return
	}
	ctx := map[string]string{}
	if x := form.Get("ExternalId"); x != "" {
		ctx["sts:ExternalId"] = x
	}
	trusted := trusts(role.trust.p, "sts:AssumeRole", caller, false, ctx, s.account)
	if trusted && !trustsExplicitly(role.trust.p, caller) {
		// The trust policy names the account: the caller's own policies
		// must allow the call too.
		if _, pols, vars, known := s.identityLocked(akid); known {
			trusted = Evaluate(pols, Request{Action: "sts:AssumeRole", Resource: roleARN, Context: vars}) == Allowed
		}
	}
	if !trusted {
		writeSTSError(w, denied)
		return
	}
	d := time.Hour
	if v := form.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 900 || n > role.maxSession {
			writeSTSError(w, stsError{400, "ValidationError", fmt.Sprintf("The requested DurationSeconds exceeds the MaxSessionDuration set for this role, or is below 900: %s", v)})
			return
		}
		d = time.Duration(n) * time.Second
	}
	ss := s.issueLocked(role, name, d, nil)
	s.log.Info("sts: role assumed", "role", roleARN, "session", name, "access_key", ss.cred.AccessKeyID[:4]+"****", "expires", ss.cred.Expires)
	type creds struct {
		AccessKeyId     string
		SecretAccessKey string
		SessionToken    string
		Expiration      string
	}
	type user struct {
		AssumedRoleId string
		Arn           string
	}
	writeXML(w, "AssumeRole", struct {
		Credentials     creds
		AssumedRoleUser user
	}{creds{ss.cred.AccessKeyID, ss.cred.SecretAccessKey, ss.cred.SessionToken, ss.cred.Expires.UTC().Format("2006-01-02T15:04:05Z")},
		user{ss.userID, ss.arn}})
}

func trustsExplicitly(p Policy, caller string) bool {
	for _, st := range p.Statement {
		if st.Principal != nil && st.Effect == "Allow" && (st.Principal.Any || contains(st.Principal.AWS, caller) || contains(st.Principal.AWS, "*")) {
			return true
		}
	}
	return false
}

func writeXML(w http.ResponseWriter, op string, result any) {
	type meta struct {
		RequestId string
	}
	out := struct {
		XMLName          xml.Name
		NS               string `xml:"xmlns,attr"`
		Result           any    `xml:"placeholder"`
		ResponseMetadata meta
	}{XMLName: xml.Name{Local: op + "Response"}, NS: stsNS, Result: result, ResponseMetadata: meta{requestID()}}
	b, err := xml.Marshal(out)
	if err != nil {
		writeSTSError(w, stsError{500, "InternalFailure", "encoding the answer"})
		return
	}
	b = []byte(strings.ReplaceAll(string(b), "placeholder>", op+"Result>"))
	w.Header().Set("Content-Type", "text/xml")
	w.Write(append([]byte(xml.Header), b...))
}

func writeSTSError(w http.ResponseWriter, e stsError) {
	typ := "Sender"
	if e.status >= 500 {
		typ = "Receiver"
	}
	type inner struct {
		Type, Code, Message string
	}
	out := struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		NS        string   `xml:"xmlns,attr"`
		Error     inner
		RequestId string
	}{NS: stsNS, Error: inner{typ, e.code, e.message}, RequestId: requestID()}
	b, _ := xml.Marshal(out)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	w.Write(append([]byte(xml.Header), b...))
}

// verifySTS checks a SigV4 signature (header form) for the service sts,
// in any region, with kvslocal's verifier, and answers failures in STS's
// error shapes.
func (s *Server) verifySTS(r *http.Request, body []byte) (string, *stsError) {
	v := kvslocal.SigV4Verifier{Service: "sts", Lookup: s.Credential, Now: s.now}
	akid, e := v.Verify(r, body, false)
	if e == nil {
		return akid, nil
	}
	switch e.Failure {
	case kvslocal.SigV4MissingAuth:
		return "", &stsError{400, "MissingAuthenticationToken", "Request is missing Authentication Token"}
	case kvslocal.SigV4Incomplete:
		return "", &stsError{400, "IncompleteSignature", e.Message}
	case kvslocal.SigV4UnknownKey:
		return "", &stsError{403, "InvalidClientTokenId", e.Message}
	case kvslocal.SigV4ExpiredToken:
		return "", &stsError{400, "ExpiredToken", e.Message}
	}
	return "", &stsError{403, "SignatureDoesNotMatch", e.Message}
}
