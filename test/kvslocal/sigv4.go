package kvslocal

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Server-side SigV4 verification (local-aws.md §4). The canonical request is
// rebuilt from the client's own SignedHeaders list, so producer-style
// signing of connection, transfer-encoding and user-agent verifies as well
// as the SDKs' and the CLI's. Nothing here logs or returns a secret or a
// signature.

const (
	emptySHA256   = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	maxClockSkew  = 5 * time.Minute
	amzDateLayout = "20060102T150405Z"
	sigAlgorithm  = "AWS4-HMAC-SHA256"
	signingName   = "kinesisvideo"
)

// identity is who signed a request.
type identity struct {
	AccessKeyID string
}

// SigV4Verifier checks header-form SigV4 signatures for one service. The
// endpoint verifies with it for kinesisvideo, and test/kvslocal/iam for sts;
// each maps a SigV4Error to its own service's error shape.
type SigV4Verifier struct {
	Service string // the service the credential scope must name
	Region  string // the region the credential scope must name; "" accepts any
	// Lookup returns the credential of an access key ID.
	Lookup func(accessKeyID string) (Credential, bool)
	Now    func() time.Time
}

// SigV4Failure is why a signature was rejected.
type SigV4Failure int

const (
	// SigV4MissingAuth: no Authorization header.
	SigV4MissingAuth SigV4Failure = iota + 1
	// SigV4Incomplete: the Authorization header is not a complete SigV4
	// one, or X-Amz-Date is missing or malformed.
	SigV4Incomplete
	// SigV4UnknownKey: the access key is unknown, or the session token
	// is not the credential's.
	SigV4UnknownKey
	// SigV4ExpiredToken: the credential has expired.
	SigV4ExpiredToken
	// SigV4Mismatch: the signature, the date window, the credential
	// scope or the payload hash is wrong.
	SigV4Mismatch
)

// SigV4Error is a rejected signature: why, and AWS's message for it (never a
// secret or a signature).
type SigV4Error struct {
	Failure SigV4Failure
	Message string
}

func (e *SigV4Error) Error() string { return e.Message }

func sigErr(f SigV4Failure, msg string) *SigV4Error { return &SigV4Error{Failure: f, Message: msg} }

// authHeader is a parsed Authorization header.
type authHeader struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

func parseAuthorization(v, service string) (authHeader, *SigV4Error) {
	var a authHeader
	alg, rest, _ := strings.Cut(v, " ")
	if alg != sigAlgorithm {
		return a, sigErr(SigV4Incomplete, fmt.Sprintf("Authorization header requires the %s algorithm.", sigAlgorithm))
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		if k, val, ok := strings.Cut(strings.TrimSpace(part), "="); ok {
			fields[k] = val
		}
	}
	cred, signed, sig := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	var missing []string
	for _, f := range []struct{ name, v string }{{"Credential", cred}, {"Signature", sig}, {"SignedHeaders", signed}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return a, sigErr(SigV4Incomplete, fmt.Sprintf("Authorization header requires '%s' parameter. Authorization=%s", strings.Join(missing, "', '"), sigAlgorithm))
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || len(scope[1]) != 8 {
		return a, sigErr(SigV4Incomplete, fmt.Sprintf("Credential should be scoped to a valid region, service and date, e.g. AKID/20261123/us-west-2/%s/aws4_request.", service))
	}
	a.accessKey, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	a.signedHeaders = strings.Split(signed, ";")
	a.signature = sig
	hasHost := false
	for _, h := range a.signedHeaders {
		hasHost = hasHost || h == "host"
	}
	if !hasHost {
		return a, sigErr(SigV4Incomplete, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return a, nil
}

// Verify checks r's signature and returns the access key ID that made it.
// body is the whole body of calls that read it; a streamed body
// (streaming, PutMedia) is hashed as the empty string (as producer-c signs
// it) unless x-amz-content-sha256 says otherwise.
func (v SigV4Verifier) Verify(r *http.Request, body []byte, streaming bool) (string, *SigV4Error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", sigErr(SigV4MissingAuth, msgMissingAuth)
	}
	a, e := parseAuthorization(h, v.Service)
	if e != nil {
		return "", e
	}
	c, ok := v.Lookup(a.accessKey)
	if !ok || c.SessionToken != r.Header.Get("X-Amz-Security-Token") {
		return "", sigErr(SigV4UnknownKey, msgUnrecognizedClient)
	}
	stamp := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateLayout, stamp)
	if err != nil {
		return "", sigErr(SigV4Incomplete, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	now := v.Now().UTC()
	if !c.Expires.IsZero() && !now.Before(c.Expires) {
		return "", sigErr(SigV4ExpiredToken, msgExpiredToken)
	}
	if t.Before(now.Add(-maxClockSkew)) {
		return "", sigErr(SigV4Mismatch, fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)",
			stamp, now.Add(-maxClockSkew).Format(amzDateLayout), now.Format(amzDateLayout)))
	}
	if t.After(now.Add(maxClockSkew)) {
		return "", sigErr(SigV4Mismatch, fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)",
			stamp, now.Add(maxClockSkew).Format(amzDateLayout), now.Format(amzDateLayout)))
	}
	if a.date != stamp[:8] {
		return "", sigErr(SigV4Mismatch, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '"+a.date+"' != '"+stamp[:8]+"'")
	}
	if v.Region != "" && a.region != v.Region {
		return "", sigErr(SigV4Mismatch, fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", a.region))
	}
	if a.service != v.Service {
		return "", sigErr(SigV4Mismatch, fmt.Sprintf("Credential should be scoped to correct service: '%s'.", v.Service))
	}

	payload := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case payload == "UNSIGNED-PAYLOAD":
	case payload != "" && streaming:
		// A streamed body cannot be checked up front; the signature
		// commits to the value the client sent.
	case payload != "":
		if payload != sha256Hex(body) {
			return "", sigErr(SigV4Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
	case streaming:
		payload = emptySHA256
	default:
		payload = sha256Hex(body)
	}

	var ch strings.Builder
	for _, n := range a.signedHeaders {
		ch.WriteString(n)
		ch.WriteByte(':')
		ch.WriteString(canonicalHeaderValue(r, n))
		ch.WriteByte('\n')
	}
	creq := strings.Join([]string{r.Method, canonicalURI(r.URL), canonicalQuery(r.URL), ch.String(), strings.Join(a.signedHeaders, ";"), payload}, "\n")
	scope := a.date + "/" + a.region + "/" + a.service + "/aws4_request"
	sts := sigAlgorithm + "\n" + stamp + "\n" + scope + "\n" + sha256Hex([]byte(creq))
	k := hmacSHA256([]byte("AWS4"+c.SecretAccessKey), a.date)
	k = hmacSHA256(k, a.region)
	k = hmacSHA256(k, a.service)
	k = hmacSHA256(k, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(k, sts))
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return "", sigErr(SigV4Mismatch, msgBadSignature)
	}
	return a.accessKey, nil
}

// sigV4Codes are the endpoint's error codes for each SigV4Failure.
var sigV4Codes = map[SigV4Failure]string{
	SigV4MissingAuth:  "MissingAuthenticationTokenException",
	SigV4Incomplete:   "IncompleteSignatureException",
	SigV4UnknownKey:   "UnrecognizedClientException",
	SigV4ExpiredToken: "ExpiredTokenException",
	SigV4Mismatch:     "InvalidSignatureException",
}

// credential looks an access key up: Config.Credentials first, then the
// Authorizer's.
func (s *Server) credential(key string) (Credential, bool) {
	c, ok := s.creds[key]
	if !ok && s.cfg.Authorizer != nil {
		c, ok = s.cfg.Authorizer.Credential(key)
	}
	return c, ok
}

// verify checks r's signature for the endpoint (SigV4Verifier.Verify).
func (s *Server) verify(r *http.Request, body []byte, streaming bool) (identity, *apiError) {
	v := SigV4Verifier{Service: signingName, Region: s.cfg.Region, Now: s.cfg.Now, Lookup: s.credential}
	key, e := v.Verify(r, body, streaming)
	if e != nil {
		return identity{}, authErr(sigV4Codes[e.Failure], e.Message)
	}
	return identity{AccessKeyID: key}, nil
}

// canonicalHeaderValue returns a header as SigV4 canonicalises it: values
// trimmed, inner whitespace collapsed, repeated headers joined with commas.
// Go moves Host and Transfer-Encoding out of r.Header (and Content-Length
// into r.ContentLength for some requests), so those come from the request.
func canonicalHeaderValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		vals = []string{r.Host}
	case "transfer-encoding":
		vals = r.TransferEncoding
	case "content-length":
		vals = r.Header.Values(name)
		if len(vals) == 0 && r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	default:
		vals = r.Header.Values(name)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

// canonicalURI URI-encodes each path segment again (the non-S3 rule).
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = uriEncode(s)
	}
	return strings.Join(segs, "/")
}

func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
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
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, uriEncode(k)+"="+uriEncode(v))
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
