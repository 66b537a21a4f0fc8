package iam

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
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
	s.serve(l, http.HandlerFunc(s.serveSTS), func(l net.Listener) net.Listener { return l })
	return "http://" + l.Addr().String(), nil
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
	arn, _, _, _ := s.identity(akid)
	switch form.Get("Action") {
	case "GetCallerIdentity":
		uid := akid
		if u, ok := s.users[akid]; ok {
			uid = userID(u.Name)
		} else {
			s.mu.Lock()
			uid = s.sessions[akid].userID
			s.mu.Unlock()
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
	denied := stsError{403, "AccessDenied", fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller, roleARN)}
	role, ok := s.roles[roleARN]
	if !ok {
		writeSTSError(w, denied)
		return
	}
	ctx := map[string]string{}
	if x := form.Get("ExternalId"); x != "" {
		ctx["sts:ExternalId"] = x
	}
	trusted := trusts(role.TrustPolicy, "sts:AssumeRole", caller, false, ctx, s.account)
	if trusted && !trustsExplicitly(role.TrustPolicy, caller) {
		// The trust policy names the account: the caller's own policies
		// must allow the call too.
		_, pols, vars, _ := s.identity(akid)
		trusted = Evaluate(pols, Request{Action: "sts:AssumeRole", Resource: roleARN, Context: vars}) == Allowed
	}
	if !trusted {
		writeSTSError(w, denied)
		return
	}
	d := time.Hour
	if v := form.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 900 || n > role.MaxSessionDuration {
			writeSTSError(w, stsError{400, "ValidationError", fmt.Sprintf("The requested DurationSeconds exceeds the MaxSessionDuration set for this role, or is below 900: %s", v)})
			return
		}
		d = time.Duration(n) * time.Second
	}
	ss := s.issue(role, name, d, nil)
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

// verifySTS checks a SigV4 signature (header form) for the service sts.
func (s *Server) verifySTS(r *http.Request, body []byte) (string, *stsError) {
	auth := r.Header.Get("Authorization")
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != "AWS4-HMAC-SHA256" {
		return "", &stsError{400, "MissingAuthenticationToken", "Request is missing Authentication Token"}
	}
	f := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok {
			f[k] = v
		}
	}
	scope := strings.Split(f["Credential"], "/")
	if len(scope) != 5 || scope[3] != "sts" || scope[4] != "aws4_request" || f["SignedHeaders"] == "" || f["Signature"] == "" {
		return "", &stsError{400, "IncompleteSignature", "The request signature does not conform to AWS standards."}
	}
	c, ok := s.Credential(scope[0])
	if !ok || c.SessionToken != r.Header.Get("X-Amz-Security-Token") {
		return "", &stsError{403, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	stamp := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", stamp)
	now := s.now()
	if err != nil || len(scope[1]) != 8 || scope[1] != stamp[:8] || t.Sub(now).Abs() > 5*time.Minute {
		return "", &stsError{403, "SignatureDoesNotMatch", "Signature expired or not yet current, or its date is malformed."}
	}
	if !c.Expires.IsZero() && !now.Before(c.Expires) {
		return "", &stsError{400, "ExpiredToken", "The security token included in the request is expired"}
	}
	signed := strings.Split(f["SignedHeaders"], ";")
	var ch strings.Builder
	for _, h := range signed {
		vals := r.Header.Values(h)
		if h == "host" {
			vals = []string{r.Host}
		} else if h == "content-length" && len(vals) == 0 {
			vals = []string{strconv.Itoa(len(body))}
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		ch.WriteString(h + ":" + strings.Join(vals, ",") + "\n")
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" || payload != "UNSIGNED-PAYLOAD" {
		payload = sha256Hex(body)
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	creq := strings.Join([]string{r.Method, path, canonicalQuery(r.URL), ch.String(), f["SignedHeaders"], payload}, "\n")
	sts := "AWS4-HMAC-SHA256\n" + stamp + "\n" + strings.Join(scope[1:], "/") + "\n" + sha256Hex([]byte(creq))
	k := hmacSHA256([]byte("AWS4"+c.SecretAccessKey), scope[1])
	for _, p := range scope[2:] {
		k = hmacSHA256(k, p)
	}
	if !hmac.Equal([]byte(hex.EncodeToString(hmacSHA256(k, sts))), []byte(f["Signature"])) {
		return "", &stsError{403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	}
	return scope[0], nil
}

func canonicalQuery(u *url.URL) string {
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range q[k] {
			parts = append(parts, url.QueryEscape(k)+"="+strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
		}
	}
	return strings.Join(parts, "&")
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
