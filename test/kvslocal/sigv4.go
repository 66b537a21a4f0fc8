package kvslocal

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// identity is who signed a request.
type identity struct {
	AccessKeyID string
}

const (
	emptySHA256  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	maxClockSkew = 5 * time.Minute
	amzDate      = "20060102T150405Z"
)

// verify checks the request's SigV4 signature, rebuilt from the client's
// own SignedHeaders list (so producer-style signing of connection,
// transfer-encoding and user-agent verifies too). body is the whole body of
// control-plane calls; PutMedia's streamed body is hashed as the empty
// string unless x-amz-content-sha256 says otherwise.
func (s *Server) verify(r *http.Request, body []byte) (identity, *apiError) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return identity{}, &apiError{403, "MissingAuthenticationTokenException", "Missing Authentication Token"}
	}
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return identity{}, &apiError{400, "IncompleteSignatureException", "Unsupported Authorization algorithm; only AWS4-HMAC-SHA256 is accepted."}
	}
	fields := map[string]string{}
	for _, part := range strings.Split(auth[len(algo):], ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			fields[k] = v
		}
	}
	cred, signed, sig := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if cred == "" || signed == "" || sig == "" {
		return identity{}, &apiError{400, "IncompleteSignatureException", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters."}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return identity{}, &apiError{400, "IncompleteSignatureException", "Credential should be scoped to a valid region and service, e.g. AKID/20261123/us-west-2/kinesisvideo/aws4_request."}
	}
	key, date, region, service := scope[0], scope[1], scope[2], scope[3]
	c, ok := s.creds[key]
	if !ok || c.SessionToken != r.Header.Get("X-Amz-Security-Token") {
		return identity{}, &apiError{403, "UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	if region != s.cfg.Region {
		return identity{}, &apiError{403, "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", region)}
	}
	if service != "kinesisvideo" {
		return identity{}, &apiError{403, "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to correct service: 'kinesisvideo'.")}
	}
	stamp := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDate, stamp)
	if err != nil {
		return identity{}, &apiError{400, "IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."}
	}
	now := s.cfg.Now().UTC()
	if t.Before(now.Add(-maxClockSkew)) {
		return identity{}, &apiError{403, "InvalidSignatureException", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)", stamp, now.Add(-maxClockSkew).Format(amzDate), now.Format(amzDate))}
	}
	if t.After(now.Add(maxClockSkew)) {
		return identity{}, &apiError{403, "InvalidSignatureException", fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)", stamp, now.Add(maxClockSkew).Format(amzDate), now.Format(amzDate))}
	}
	if date != stamp[:8] {
		return identity{}, &apiError{403, "InvalidSignatureException", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP."}
	}

	payload := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case payload == "UNSIGNED-PAYLOAD":
	case payload != "" && r.URL.Path == "/putMedia":
	case payload != "":
		if payload != sha256Hex(body) {
			return identity{}, &apiError{400, "InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match what was computed."}
		}
	case r.URL.Path == "/putMedia":
		payload = emptySHA256
	default:
		payload = sha256Hex(body)
	}

	names := strings.Split(signed, ";")
	var ch strings.Builder
	for _, n := range names {
		ch.WriteString(n)
		ch.WriteByte(':')
		ch.WriteString(headerValue(r, n))
		ch.WriteByte('\n')
	}
	creq := strings.Join([]string{r.Method, canonicalURI(r.URL), canonicalQuery(r.URL), ch.String(), signed, payload}, "\n")
	sts := "AWS4-HMAC-SHA256\n" + stamp + "\n" + strings.Join(scope[1:], "/") + "\n" + sha256Hex([]byte(creq))
	k := hmacSHA256([]byte("AWS4"+c.SecretAccessKey), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(k, sts))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return identity{}, &apiError{403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	}
	return identity{AccessKeyID: key}, nil
}

// headerValue returns a header as SigV4 canonicalises it; Go moves Host and
// Transfer-Encoding out of r.Header.
func headerValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		vals = []string{r.Host}
	case "transfer-encoding":
		vals = r.TransferEncoding
	case "content-length":
		if r.ContentLength >= 0 {
			vals = []string{fmt.Sprint(r.ContentLength)}
		}
	default:
		vals = r.Header.Values(name)
	}
	for i, v := range vals {
		vals[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(vals, ",")
}

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
		vs := q[k]
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
