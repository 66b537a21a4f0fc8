package kvs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/clock"
)

const testARN = "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam1/1700000000000"

// cpServer is a canned restJson control plane that checks every request's
// SigV4 signature with the independent verifier.
type cpServer struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	calls   map[string]int
	bodies  map[string][]map[string]any
	handler func(w http.ResponseWriter, op string, body map[string]any)
	uas     []string
}

func newCPServer(t *testing.T, h func(w http.ResponseWriter, op string, body map[string]any)) *cpServer {
	s := &cpServer{t: t, calls: map[string]int{}, bodies: map[string][]map[string]any{}, handler: h}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *cpServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	op := strings.TrimPrefix(r.URL.Path, "/")
	if r.Method != http.MethodPost {
		s.t.Errorf("%s %s: want POST", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		s.t.Errorf("%s: content-type %q", op, ct)
	}
	sig, err := verifySigV4(r, hashHex(body), testSecret, testRegion)
	if err != nil {
		s.t.Errorf("%s: %v", op, err)
	} else {
		if sig.AccessKey != testAKID {
			s.t.Errorf("%s: access key %q", op, sig.AccessKey)
		}
		if !contains(sig.SignedHeaders, "x-amz-security-token") || r.Header.Get("X-Amz-Security-Token") != testToken {
			s.t.Errorf("%s: session token not sent and signed: %v", op, sig.SignedHeaders)
		}
	}
	var m map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			s.t.Errorf("%s: body %q: %v", op, body, err)
		}
	}
	s.mu.Lock()
	s.calls[op]++
	s.bodies[op] = append(s.bodies[op], m)
	s.uas = append(s.uas, r.Header.Get("User-Agent"))
	s.mu.Unlock()
	s.handler(w, op, m)
}

func (s *cpServer) count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, v)
}

func writeAWSError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("x-amzn-ErrorType", code+":http://internal.amazon.com/coral/com.amazonaws.kinesisvideo.v20170930/")
	b, _ := json.Marshal(map[string]string{"Message": msg})
	writeJSON(w, status, string(b))
}

func streamInfoJSON(status string) string {
	return `{"StreamInfo":{"DeviceName":"dev1","StreamName":"cam1","StreamARN":"` + testARN + `","MediaType":"video/h264","KmsKeyId":"arn:aws:kms:us-west-2:123456789012:alias/aws/kinesisvideo","Version":"abcdefghijkl","Status":"` + status + `","CreationTime":1700000000.5,"DataRetentionInHours":2}}`
}

func newTestControl(t *testing.T, endpoint string, mod func(*ControlConfig)) *Control {
	t.Helper()
	cfg := ControlConfig{Endpoint: endpoint, Region: testRegion, Credentials: testCreds(), UserAgent: "kvsgo-test/1.0",
		CallTimeout: 5 * time.Second, RetryMaxBackoff: 5 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewControl(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{testSecret, testToken} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error text leaks a secret: %q", err)
		}
	}
}

func TestNewControlValidates(t *testing.T) {
	for name, cfg := range map[string]ControlConfig{
		"no credentials":  {Endpoint: "http://127.0.0.1:1", Region: testRegion},
		"no endpoint":     {Region: testRegion, Credentials: testCreds()},
		"remote http":     {Endpoint: "http://kvs.example.com", Region: testRegion, Credentials: testCreds()},
		"bad region":      {Endpoint: "http://127.0.0.1:1", Region: "moon", Credentials: testCreds()},
		"no region given": {Endpoint: "http://127.0.0.1:1", Credentials: testCreds()},
	} {
		if _, err := NewControl(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDescribeStream(t *testing.T) {
	s := newCPServer(t, func(w http.ResponseWriter, op string, body map[string]any) {
		if op != "describeStream" || body["StreamName"] != "cam1" {
			t.Errorf("unexpected %s %v", op, body)
		}
		writeJSON(w, 200, streamInfoJSON("ACTIVE"))
	})
	c := newTestControl(t, s.srv.URL+"/", nil)
	if c.Endpoint() != s.srv.URL {
		t.Errorf("endpoint %q not trimmed", c.Endpoint())
	}
	info, err := c.DescribeStream(context.Background(), "cam1")
	if err != nil {
		t.Fatal(err)
	}
	want := StreamInfo{Name: "cam1", ARN: testARN, Status: "ACTIVE", MediaType: "video/h264", KMSKeyID: "arn:aws:kms:us-west-2:123456789012:alias/aws/kinesisvideo",
		Version: "abcdefghijkl", DeviceName: "dev1", RetentionHours: 2, Created: time.Unix(1700000000, 5e8)}
	if !info.Created.Equal(want.Created) {
		t.Errorf("created %v, want %v", info.Created, want.Created)
	}
	info.Created = want.Created
	if *info != want {
		t.Errorf("got %+v\nwant %+v", *info, want)
	}
	// The user-agent property starts every request's User-Agent, as it
	// starts PutMedia's; the SDK's tokens follow.
	for i, ua := range s.uas {
		if !strings.HasPrefix(ua, "kvsgo-test/1.0 aws-sdk-go-v2/") {
			t.Errorf("call %d: User-Agent %q does not start with the configured product", i, ua)
		}
	}
	if _, err := c.DescribeStream(context.Background(), "bad name"); err == nil || s.count("describeStream") != 1 {
		t.Errorf("invalid name: %v (calls %d)", err, s.count("describeStream"))
	}
}

func TestControlErrors(t *testing.T) {
	const html502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>awselb/2.0</center>\r\n" +
		"<!-- padding ............................................................................................................................................................................................................................. -->\r\n</body>\r\n</html>\r\n"
	canonicalEcho := "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.\n\n" +
		"The Canonical String for this request should have been\n'POST\n/describeStream\n\ncontent-type:application/json\nhost:127.0.0.1\nx-amz-date:20261123T002235Z\nx-amz-security-token:" + testToken + "\n\ncontent-type;host;x-amz-date;x-amz-security-token\nabc'"
	tests := []struct {
		name         string
		handler      func(w http.ResponseWriter)
		attempts     int // requests the server should see (MaxAttempts 3)
		status       int
		code         string
		msg          string // substring of Message
		notFound     bool
		denied       bool
		retryable    bool
		maxMsgLength int
	}{
		{name: "resource not found", handler: func(w http.ResponseWriter) {
			writeAWSError(w, 404, "ResourceNotFoundException", "The requested stream is not found or not active.")
		}, attempts: 1, status: 404, code: "ResourceNotFoundException", msg: "not found or not active", notFound: true},
		{name: "invalid signature", handler: func(w http.ResponseWriter) {
			writeAWSError(w, 403, "InvalidSignatureException", canonicalEcho)
		}, attempts: 1, status: 403, code: "InvalidSignatureException", msg: "x-amz-security-token:<redacted>", denied: true},
		{name: "not authorized", handler: func(w http.ResponseWriter) {
			writeAWSError(w, 401, "NotAuthorizedException", "Unauthorized")
		}, attempts: 1, status: 401, code: "NotAuthorizedException", denied: true},
		{name: "unrecognized client, code in body", handler: func(w http.ResponseWriter) {
			writeJSON(w, 403, `{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"The security token included in the request is invalid."}`)
		}, attempts: 1, status: 403, code: "UnrecognizedClientException", msg: "security token included", denied: true},
		{name: "403 without code or body", handler: func(w http.ResponseWriter) {
			w.WriteHeader(403)
		}, attempts: 1, status: 403, denied: true},
		{name: "html 502", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			io.WriteString(w, html502)
		}, attempts: 3, status: 502, msg: "502 Bad Gateway 502 Bad Gateway awselb/2.0", retryable: true, maxMsgLength: maxExcerpt + 3},
		{name: "throttled", handler: func(w http.ResponseWriter) {
			writeAWSError(w, 400, "ClientLimitExceededException", "slow down")
		}, attempts: 1, status: 400, code: "ClientLimitExceededException", retryable: true},
		{name: "500 json", handler: func(w http.ResponseWriter) {
			writeJSON(w, 500, `{"message":"oops"}`)
		}, attempts: 3, status: 500, msg: "oops", retryable: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newCPServer(t, func(w http.ResponseWriter, op string, body map[string]any) { tc.handler(w) })
			c := newTestControl(t, s.srv.URL, nil)
			_, err := c.DescribeStream(context.Background(), "cam1")
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v (%T), want *APIError", err, err)
			}
			if ae.Op != "DescribeStream" || ae.StatusCode != tc.status || ae.Code != tc.code {
				t.Errorf("got %+v", ae)
			}
			if !strings.Contains(ae.Message, tc.msg) {
				t.Errorf("message %q lacks %q", ae.Message, tc.msg)
			}
			if tc.maxMsgLength > 0 && len(ae.Message) > tc.maxMsgLength {
				t.Errorf("message of %d bytes: %q", len(ae.Message), ae.Message)
			}
			if errors.Is(err, ErrStreamNotFound) != tc.notFound || errors.Is(err, ErrAccessDenied) != tc.denied || ae.Retryable() != tc.retryable {
				t.Errorf("notFound=%v denied=%v retryable=%v", errors.Is(err, ErrStreamNotFound), errors.Is(err, ErrAccessDenied), ae.Retryable())
			}
			if n := s.count("describeStream"); n != tc.attempts {
				t.Errorf("%d attempts, want %d", n, tc.attempts)
			}
			assertNoSecrets(t, err)
		})
	}
}

// countingTransport counts round trips and dials loopback only.
type countingTransport struct {
	n    atomic.Int32
	base http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestControlConnectionRefused(t *testing.T) {
	ep := "http://" + closedPort(t)
	ct := &countingTransport{base: &http.Transport{DialContext: (&net.Dialer{Timeout: time.Second, Control: loopbackOnly}).DialContext}}
	c := newTestControl(t, ep, func(cfg *ControlConfig) {
		cfg.HTTPClient = &http.Client{Transport: ct}
		cfg.CallTimeout = 3 * time.Second
	})
	start := time.Now()
	_, err := c.DescribeStream(context.Background(), "cam1")
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("no error")
	}
	want := "DescribeStream: connect to " + ep + ": connection refused"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%v does not wrap ECONNREFUSED", err)
	}
	if elapsed > 3*time.Second {
		t.Errorf("took %v, beyond CallTimeout", elapsed)
	}
	if n := ct.n.Load(); n != DefaultMaxAttempts {
		t.Errorf("%d attempts, want %d", n, DefaultMaxAttempts)
	}

	// The default client names the URL the same way.
	c2 := newTestControl(t, ep, func(cfg *ControlConfig) { cfg.MaxAttempts = 1 })
	_, err = c2.GetDataEndpoint(context.Background(), "cam1", "PUT_MEDIA")
	if want := "GetDataEndpoint: connect to " + ep + ": connection refused"; err == nil || err.Error() != want {
		t.Errorf("default client: %v, want %q", err, want)
	}
}

func TestControlCallTimeout(t *testing.T) {
	release := make(chan struct{})
	s := newCPServer(t, func(w http.ResponseWriter, op string, body map[string]any) { <-release })
	defer close(release)
	c := newTestControl(t, s.srv.URL, func(cfg *ControlConfig) { cfg.CallTimeout = 200 * time.Millisecond })
	start := time.Now()
	_, err := c.DescribeStream(context.Background(), "cam1")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), s.srv.URL) || !strings.Contains(err.Error(), "200ms") {
		t.Errorf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}

	// The caller's cancellation is reported as such, not as a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for s.count("describeStream") < 2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	c = newTestControl(t, s.srv.URL, nil)
	_, err = c.DescribeStream(ctx, "cam1")
	if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancel: got %v", err)
	}
}

func TestEnsureStreamCreate(t *testing.T) {
	var mu sync.Mutex
	created := false
	describes := 0
	s := newCPServer(t, func(w http.ResponseWriter, op string, body map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		switch op {
		case "describeStream":
			describes++
			switch {
			case !created:
				writeAWSError(w, 404, "ResourceNotFoundException", "The requested stream is not found or not active.")
			case describes == 2:
				writeJSON(w, 200, streamInfoJSON("CREATING"))
			default:
				writeJSON(w, 200, streamInfoJSON("ACTIVE"))
			}
		case "createStream":
			created = true
			writeJSON(w, 200, `{"StreamARN":"`+testARN+`"}`)
		default:
			t.Errorf("unexpected %s", op)
			w.WriteHeader(500)
		}
	})
	fake := clock.NewFake(time.Unix(1700000000, 0))
	c := newTestControl(t, s.srv.URL, func(cfg *ControlConfig) { cfg.Clock = fake })
	type result struct {
		info *StreamInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		info, err := c.EnsureStream(context.Background(), CreateStreamInput{Name: "cam1", MediaType: "video/h264", RetentionHours: 2, KMSKeyID: "alias/k",
			Tags: map[string]string{"team": "video"}}, true)
		done <- result{info, err}
	}()
	waitForTimer(t, fake)
	if s.count("createStream") != 1 || s.count("describeStream") != 2 {
		t.Fatalf("before the poll: %d creates, %d describes", s.count("createStream"), s.count("describeStream"))
	}
	fake.Advance(ensurePollStart)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.info.Status != "ACTIVE" || r.info.ARN != testARN {
		t.Errorf("got %+v", r.info)
	}
	cb := s.bodies["createStream"][0]
	want := map[string]any{"StreamName": "cam1", "DeviceName": DefaultDeviceName, "MediaType": "video/h264", "DataRetentionInHours": float64(2),
		"KmsKeyId": "alias/k", "Tags": map[string]any{"team": "video"}}
	if fmt.Sprint(cb) != fmt.Sprint(want) {
		t.Errorf("CreateStream body %v, want %v", cb, want)
	}
}

// waitForTimer waits until the code under test waits on the fake clock.
func waitForTimer(t *testing.T, fake *clock.Fake) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for fake.Waiters() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the code under test never waited on the clock")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestEnsureStreamCases(t *testing.T) {
	t.Run("not found, creation not allowed", func(t *testing.T) {
		s := newCPServer(t, func(w http.ResponseWriter, op string, body map[string]any) {
			writeAWSError(w, 404, "ResourceNotFoundException", "nope")
		})
		_, err := newTestControl(t, s.srv.URL, nil).EnsureStream(context.Background(), CreateStreamInput{Name: "cam1"}, false)
		if !errors.Is(err, ErrStreamNotFound) || !strings.Contains(err.Error(), `"cam1"`) {
			t.Errorf("got %v", err)
		}
		if s.count("createStream") != 0 {
			t.Error("created although not allowed")
		}
	})
	t.Run("deleting", func(t *testing.T) {
		s := newCPServer(t, func(w http.ResponseWriter, op string, body map[string]any) {
			writeJSON(w, 200, streamInfoJSON("DELETING"))
		})
		_, err := newTestControl(t, s.srv.URL, nil).EnsureStream(context.Background(), CreateStreamInput{Name: "cam1"}, true)
		if !errors.Is(err, ErrStreamDeleting) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("create race: ResourceInUse", func(t *testing.T) {
		var n atomic.Int32
		s := newCPServer(t, func(w http.ResponseWriter, op string, body map[string]any) {
			switch op {
			case "describeStream":
				if n.Add(1) == 1 {
					writeAWSError(w, 404, "ResourceNotFoundException", "nope")
					return
				}
				writeJSON(w, 200, streamInfoJSON("ACTIVE"))
			case "createStream":
				writeAWSError(w, 400, "ResourceInUseException", "exists")
			}
		})
		info, err := newTestControl(t, s.srv.URL, nil).EnsureStream(context.Background(), CreateStreamInput{Name: "cam1"}, true)
		if err != nil || info.Status != "ACTIVE" {
			t.Errorf("got %+v, %v", info, err)
		}
	})
	t.Run("create fails", func(t *testing.T) {
		s := newCPServer(t, func(w http.ResponseWriter, op string, body map[string]any) {
			if op == "describeStream" {
				writeAWSError(w, 404, "ResourceNotFoundException", "nope")
				return
			}
			writeAWSError(w, 400, "AccountStreamLimitExceededException", "too many streams")
		})
		_, err := newTestControl(t, s.srv.URL, nil).EnsureStream(context.Background(), CreateStreamInput{Name: "cam1"}, true)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Op != "CreateStream" || ae.Code != "AccountStreamLimitExceededException" {
			t.Errorf("got %v", err)
		}
	})
	t.Run("stuck creating, bounded by ctx", func(t *testing.T) {
		s := newCPServer(t, func(w http.ResponseWriter, op string, body map[string]any) {
			writeJSON(w, 200, streamInfoJSON("CREATING"))
		})
		fake := clock.NewFake(time.Unix(0, 0))
		c := newTestControl(t, s.srv.URL, func(cfg *ControlConfig) { cfg.Clock = fake })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := c.EnsureStream(ctx, CreateStreamInput{Name: "cam1"}, true)
			done <- err
		}()
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
			waitForTimer(t, fake)
			fake.Advance(want - time.Nanosecond)
			if fake.Waiters() != 1 {
				t.Fatalf("poll %d fired before %v", i, want)
			}
			fake.Advance(time.Nanosecond)
		}
		waitForTimer(t, fake)
		cancel()
		err := <-done
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "CREATING") {
			t.Errorf("got %v", err)
		}
		if n := s.count("describeStream"); n != 5 {
			t.Errorf("%d describes, want 5", n)
		}
	})
}

func TestTagStreamAndGetDataEndpoint(t *testing.T) {
	dataEP := "http://127.0.0.1:39080/"
	s := newCPServer(t, func(w http.ResponseWriter, op string, body map[string]any) {
		switch op {
		case "tagStream":
			if body["StreamARN"] != testARN || fmt.Sprint(body["Tags"]) != "map[env:test team:video]" {
				t.Errorf("tagStream body %v", body)
			}
			writeJSON(w, 200, `{}`)
		case "getDataEndpoint":
			if body["StreamName"] != "cam1" || body["APIName"] != "PUT_MEDIA" {
				t.Errorf("getDataEndpoint body %v", body)
			}
			writeJSON(w, 200, `{"DataEndpoint":"`+dataEP+`"}`)
		}
	})
	c := newTestControl(t, s.srv.URL, nil)
	if err := c.TagStream(context.Background(), testARN, map[string]string{"team": "video", "env": "test"}); err != nil {
		t.Fatal(err)
	}
	if err := c.TagStream(context.Background(), testARN, nil); err != nil || s.count("tagStream") != 1 {
		t.Errorf("no tags: %v, %d calls", err, s.count("tagStream"))
	}
	ep, err := c.GetDataEndpoint(context.Background(), "cam1", "PUT_MEDIA")
	if err != nil || ep != "http://127.0.0.1:39080" {
		t.Errorf("got %q, %v", ep, err)
	}
	dataEP = "http://s-1234.kinesisvideo.example.com"
	if _, err := c.GetDataEndpoint(context.Background(), "cam1", "PUT_MEDIA"); !errors.Is(err, ErrInsecureEndpoint) {
		t.Errorf("remote plain http data endpoint: %v", err)
	}
}
