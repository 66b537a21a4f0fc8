package kvs

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Test credentials. The secret and the token must never appear in error text.
const (
	testAKID   = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testToken  = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN0123456789abcdef"
	testRegion = "us-west-2"
)

func testCreds() aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret, SessionToken: testToken, Source: "test"}, nil
	})
}

func staticCredsNoToken() aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret, Source: "test"}, nil
	})
}

// sigV4 is a minimal, independent SigV4 verifier (no SDK code): it rebuilds
// the canonical request from the client's own SignedHeaders list, as a
// server does (local-aws.md §4.1).
type sigV4 struct {
	AccessKey     string
	SignedHeaders []string
	Date          string // X-Amz-Date
}

func verifySigV4(r *http.Request, payloadHash, secret, region string) (*sigV4, error) {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return nil, fmt.Errorf("authorization %q is not SigV4", auth)
	}
	fields := map[string]string{}
	for _, f := range strings.Split(auth[len(algo):], ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return nil, fmt.Errorf("bad authorization field %q", f)
		}
		fields[k] = v
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || cred[4] != "aws4_request" {
		return nil, fmt.Errorf("bad credential scope %q", fields["Credential"])
	}
	if cred[2] != region || cred[3] != "kinesisvideo" {
		return nil, fmt.Errorf("scope %q: want region %s, service kinesisvideo", fields["Credential"], region)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if !strings.HasPrefix(amzDate, cred[1]) {
		return nil, fmt.Errorf("X-Amz-Date %q does not match the scope date %q", amzDate, cred[1])
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !sort.StringsAreSorted(signed) {
		return nil, fmt.Errorf("SignedHeaders %v not sorted", signed)
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	canon.WriteString(escapePath(r.URL.EscapedPath()) + "\n")
	canon.WriteString(canonicalQuery(r.URL.Query()) + "\n")
	for _, name := range signed {
		var v string
		switch name {
		case "host":
			v = r.Host
		case "content-length":
			v = r.Header.Get("Content-Length")
			if v == "" {
				v = strconv.FormatInt(r.ContentLength, 10)
			}
		case "transfer-encoding":
			v = strings.Join(r.TransferEncoding, ",")
		default:
			vals := r.Header.Values(name)
			if len(vals) == 0 {
				return nil, fmt.Errorf("signed header %q is missing", name)
			}
			for i := range vals {
				vals[i] = strings.Join(strings.Fields(vals[i]), " ")
			}
			v = strings.Join(vals, ",")
		}
		canon.WriteString(name + ":" + v + "\n")
	}
	canon.WriteString("\n" + fields["SignedHeaders"] + "\n" + payloadHash)
	ch := sha256.Sum256([]byte(canon.String()))
	scope := strings.Join(cred[1:], "/")
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(ch[:])
	k := hmacSHA256([]byte("AWS4"+secret), cred[1])
	k = hmacSHA256(k, cred[2])
	k = hmacSHA256(k, cred[3])
	k = hmacSHA256(k, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(k, sts))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return nil, fmt.Errorf("signature mismatch; canonical request:\n%s", canon.String())
	}
	return &sigV4{AccessKey: cred[0], SignedHeaders: signed, Date: amzDate}, nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// escapePath URI-encodes each segment again (the non-S3 rule).
func escapePath(p string) string {
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = awsEscape(s)
	}
	return strings.Join(segs, "/")
}

func awsEscape(s string) string {
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

func canonicalQuery(q url.Values) string {
	var parts []string
	for k, vs := range q {
		for _, v := range vs {
			parts = append(parts, awsEscape(k)+"="+awsEscape(v))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "&")
}

func TestVerifierRejectsTampering(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:9/putMedia", nil)
	req.Header.Set("x-amzn-stream-name", "s")
	now := time.Date(2026, 11, 23, 0, 22, 42, 0, time.UTC)
	if err := sign(context.Background(), testCreds(), req, EmptyPayloadHash, testRegion, now); err != nil {
		t.Fatal(err)
	}
	req.Host = req.URL.Host
	if _, err := verifySigV4(req, EmptyPayloadHash, testSecret, testRegion); err != nil {
		t.Fatalf("valid request rejected: %v", err)
	}
	req.Header.Set("x-amzn-stream-name", "other")
	if _, err := verifySigV4(req, EmptyPayloadHash, testSecret, testRegion); err == nil {
		t.Fatal("tampered header accepted")
	}
	req.Header.Set("x-amzn-stream-name", "s")
	if _, err := verifySigV4(req, hashHex([]byte("x")), testSecret, testRegion); err == nil {
		t.Fatal("wrong payload hash accepted")
	}
	if _, err := verifySigV4(req, EmptyPayloadHash, "wrong", testRegion); err == nil {
		t.Fatal("wrong secret accepted")
	}
}

// loopbackOnly is the test guard: default clients may dial loopback only.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if !IsLoopbackHost(host) || strings.EqualFold(host, "localhost") {
		return fmt.Errorf("test guard: refusing to dial %s %s (loopback only)", network, address)
	}
	return nil
}
