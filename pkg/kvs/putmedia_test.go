package kvs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	signTime      = time.Date(2026, 11, 23, 0, 22, 42, 0, time.UTC)
	producerStart = time.Unix(1795393362, 5_000_000) // .005 s: the millis are zero-padded
	mkvHeader     = append([]byte{0x1a, 0x45, 0xdf, 0xa3, 0xa3, 0x42, 0x86, 0x81, 0x01}, []byte("matroska header\n")...)
)

func putMediaConfig(endpoint string) PutMediaConfig {
	return PutMediaConfig{
		Endpoint: endpoint, StreamName: "cam1", Region: testRegion, Credentials: testCreds(),
		UserAgent: "kvsgo-test/1.0", TimecodeType: Absolute, ProducerStart: producerStart, AckRequired: true,
		Now: func() time.Time { return signTime },
	}
}

// checkPutMediaRequest checks what the official producer sends
// (kvssink-observed.md §5.5), and the signature with the independent
// verifier and the payload hash of the empty string.
func checkPutMediaRequest(t *testing.T, r *http.Request) {
	t.Helper()
	if r.Method != http.MethodPost || r.URL.Path != "/putMedia" {
		t.Errorf("%s %s", r.Method, r.URL.Path)
	}
	for h, want := range map[string]string{
		"User-Agent":                              "kvsgo-test/1.0",
		"X-Amzn-Stream-Name":                      "cam1",
		"X-Amzn-Fragment-Timecode-Type":           "ABSOLUTE",
		"X-Amzn-Producer-Start-Timestamp":         "1795393362.005",
		"X-Amzn-Fragment-Acknowledgment-Required": "1",
		"Expect":               "100-continue",
		"X-Amz-Date":           "20261123T002242Z",
		"X-Amz-Security-Token": testToken,
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if len(r.TransferEncoding) != 1 || r.TransferEncoding[0] != "chunked" || r.ContentLength != -1 {
		t.Errorf("transfer-encoding %v, content-length %d: want chunked", r.TransferEncoding, r.ContentLength)
	}
	if r.Header.Get("X-Amz-Content-Sha256") != "" {
		t.Error("x-amz-content-sha256 sent (the producer sends none)")
	}
	sig, err := verifySigV4(r, EmptyPayloadHash, testSecret, testRegion)
	if err != nil {
		t.Errorf("signature: %v", err)
		return
	}
	want := "host;x-amz-date;x-amz-security-token;x-amzn-fragment-acknowledgment-required;x-amzn-fragment-timecode-type;x-amzn-producer-start-timestamp;x-amzn-stream-name"
	if got := strings.Join(sig.SignedHeaders, ";"); got != want {
		t.Errorf("SignedHeaders %s, want %s", got, want)
	}
}

func ackLine(typ AckEventType, tc int) string {
	return fmt.Sprintf(`{"EventType":"%s","FragmentTimecode":%d,"FragmentNumber":"9134385233318%d"}`+"\n", typ, tc, tc)
}

func recvAck(t *testing.T, acks <-chan Ack) (Ack, bool) {
	t.Helper()
	select {
	case a, ok := <-acks:
		return a, ok
	case <-time.After(10 * time.Second):
		t.Fatal("no acknowledgement within 10 s")
		return Ack{}, false
	}
}

func TestPutMediaFullDuplex(t *testing.T) {
	var got bytes.Buffer
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checkPutMediaRequest(t, r)
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			t.Error(err)
		}
		br := bufio.NewReader(r.Body)
		first := make([]byte, len(mkvHeader))
		if _, err := io.ReadFull(br, first); err != nil || !bytes.Equal(first, mkvHeader) {
			t.Errorf("first bytes %q, %v", first, err)
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		for {
			line, err := br.ReadString('\n')
			mu.Lock()
			got.WriteString(line)
			mu.Unlock()
			if err == io.EOF {
				io.WriteString(w, ackLine(AckPersisted, 3))
				return
			}
			if err != nil {
				t.Errorf("server read: %v", err)
				return
			}
			var n int
			fmt.Sscanf(line, "cluster %d", &n)
			// Acks while the body is still open: BUFFERING, RECEIVED, and
			// PERSISTED of the previous fragment.
			io.WriteString(w, ackLine(AckBuffering, n)+"\n"+ackLine(AckReceived, n))
			if n > 1 {
				io.WriteString(w, ackLine(AckPersisted, n-1))
			}
			io.WriteString(w, `{"EventType":"IDLE"}`+"\r\n")
			http.NewResponseController(w).Flush()
		}
	}))
	defer srv.Close()

	p, err := OpenPutMedia(context.Background(), putMediaConfig(srv.URL), mkvHeader)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	for n := 1; n <= 3; n++ {
		if _, err := fmt.Fprintf(p, "cluster %d\n", n); err != nil {
			t.Fatal(err)
		}
		// The acknowledgements of cluster n arrive before the body ends.
		want := []AckEventType{AckBuffering, AckReceived}
		if n > 1 {
			want = append(want, AckPersisted)
		}
		want = append(want, AckIdle)
		for _, typ := range want {
			a, ok := recvAck(t, p.Acks())
			if !ok {
				t.Fatalf("acks closed early: %v", p.Err())
			}
			if a.EventType != typ || (typ != AckIdle && a.FragmentTimecode != uint64(n-map[bool]int{true: 1}[typ == AckPersisted])) {
				t.Fatalf("cluster %d: got %+v, want %s", n, a, typ)
			}
		}
	}
	if err := p.CloseBody(); err != nil {
		t.Fatal(err)
	}
	a, ok := recvAck(t, p.Acks())
	if !ok || a.EventType != AckPersisted || a.FragmentTimecode != 3 {
		t.Fatalf("last ack %+v, %v", a, ok)
	}
	if _, ok := recvAck(t, p.Acks()); ok {
		t.Fatal("acks not closed after the response ended")
	}
	if err := p.Err(); err != nil {
		t.Fatalf("Err after a clean end: %v", err)
	}
	mu.Lock()
	if got.String() != "cluster 1\ncluster 2\ncluster 3\n" {
		t.Errorf("server got %q", got.String())
	}
	mu.Unlock()
	if _, err := p.Write([]byte("late")); !errors.Is(err, ErrResponseEnded) {
		t.Errorf("Write after the end: %v", err)
	}
	p.Abort()
	if p.Err() != nil {
		t.Errorf("Abort after a clean end changed Err to %v", p.Err())
	}
}

func TestPutMediaRejected(t *testing.T) {
	tests := []struct {
		name    string
		read    bool // read the first bytes before answering
		handler func(w http.ResponseWriter)
		status  int
		code    string
		msg     string
		check   func(error) bool
	}{
		{name: "invalid signature", read: true, handler: func(w http.ResponseWriter) {
			w.Header().Set("x-amzn-ErrorType", "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/")
			writeJSON(w, 403, `{"message":"The request signature we calculated does not match. The Canonical String for this request should have been\n'POST\n/putMedia\n\nhost:127.0.0.1\nx-amz-security-token:`+testToken+`\n'"}`)
		}, status: 403, code: "InvalidSignatureException", msg: "x-amz-security-token:<redacted>", check: func(err error) bool { return errors.Is(err, ErrAccessDenied) }},
		{name: "not found before reading the body", handler: func(w http.ResponseWriter) {
			w.Header().Set("x-amzn-ErrorType", "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.kinesisvideo.v20170930/")
			writeJSON(w, 404, `{"Message":"Stream cam1 not found"}`)
		}, status: 404, code: "ResourceNotFoundException", msg: "Stream cam1 not found", check: func(err error) bool { return errors.Is(err, ErrStreamNotFound) }},
		{name: "connection limit", read: true, handler: func(w http.ResponseWriter) {
			w.Header().Set("x-amzn-ErrorType", "ConnectionLimitExceededException")
			writeJSON(w, 400, `{"Message":"too many connections"}`)
		}, status: 400, code: "ConnectionLimitExceededException", msg: "too many", check: func(err error) bool {
			var ae *APIError
			return errors.As(err, &ae) && ae.Retryable()
		}},
		{name: "html 502", read: true, handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			io.WriteString(w, "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>"+strings.Repeat("<p>filler text</p>", 100)+"</body></html>")
		}, status: 502, msg: "502 Bad Gateway Bad Gateway filler text", check: func(err error) bool {
			var ae *APIError
			return errors.As(err, &ae) && len(ae.Message) <= maxExcerpt+3 && strings.HasSuffix(ae.Message, "…")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				checkPutMediaRequest(t, r)
				if tc.read {
					io.ReadFull(r.Body, make([]byte, len(mkvHeader)))
				}
				tc.handler(w)
			}))
			defer srv.Close()
			p, err := OpenPutMedia(context.Background(), putMediaConfig(srv.URL), mkvHeader)
			if p != nil {
				t.Fatal("got a session")
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want *APIError", err)
			}
			if ae.Op != "PutMedia" || ae.StatusCode != tc.status || ae.Code != tc.code || !strings.Contains(ae.Message, tc.msg) {
				t.Errorf("got %+v", ae)
			}
			if !tc.check(err) {
				t.Errorf("check failed for %v", err)
			}
			assertNoSecrets(t, err)
		})
	}
}

// silentServer reads the first bytes, answers 200 and then says nothing
// until the client goes away.
func silentServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		io.ReadFull(r.Body, make([]byte, len(mkvHeader)))
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		io.Copy(io.Discard, r.Body) // until the client closes the connection
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPutMediaSilentUntilAbort(t *testing.T) {
	srv := silentServer(t)
	p, err := OpenPutMedia(context.Background(), putMediaConfig(srv.URL), mkvHeader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("cluster 1\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case a, ok := <-p.Acks():
		t.Fatalf("acks: %+v, %v; want nothing", a, ok)
	case <-time.After(100 * time.Millisecond):
	}
	done := make(chan struct{})
	go func() { // Abort from another goroutine while the writer writes
		defer close(done)
		for {
			if _, err := p.Write([]byte("x")); err != nil {
				if !errors.Is(err, ErrAborted) {
					t.Errorf("Write after Abort: %v", err)
				}
				return
			}
		}
	}()
	p.Abort()
	<-done
	if _, ok := <-p.Acks(); ok {
		t.Fatal("acks open after Abort")
	}
	if err := p.Err(); !errors.Is(err, ErrAborted) || !errors.Is(err, context.Canceled) {
		t.Errorf("Err after Abort: %v", err)
	}
	p.Abort() // idempotent
	if err := p.CloseBody(); err != nil && !errors.Is(err, ErrAborted) {
		t.Errorf("CloseBody after Abort: %v", err)
	}
}

func TestPutMediaSilentUntilContextDone(t *testing.T) {
	srv := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := OpenPutMedia(ctx, putMediaConfig(srv.URL), mkvHeader)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	select {
	case a, ok := <-p.Acks():
		t.Fatalf("acks: %+v, %v; want nothing", a, ok)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if _, ok := recvAck(t, p.Acks()); ok {
		t.Fatal("ack after cancel")
	}
	if err := p.Err(); !errors.Is(err, context.Canceled) || errors.Is(err, ErrAborted) {
		t.Errorf("Err after cancel: %v", err)
	}
	if _, err := p.Write([]byte("x")); err == nil {
		t.Error("Write after cancel succeeded")
	}
}

func TestPutMediaNoStatus(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadFull(r.Body, make([]byte, len(mkvHeader)))
		<-release
	}))
	defer srv.Close()
	defer close(release)
	cfg := putMediaConfig(srv.URL)
	cfg.ConnectTimeout, cfg.ResponseTimeout = 100*time.Millisecond, 100*time.Millisecond
	start := time.Now()
	_, err := OpenPutMedia(context.Background(), cfg, mkvHeader)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), "no response status") {
		t.Errorf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}

	// The caller's context bounds the wait too.
	cfg.ConnectTimeout, cfg.ResponseTimeout = time.Minute, time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = OpenPutMedia(ctx, cfg, mkvHeader)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ctx: got %v", err)
	}
}

func TestPutMediaConnectionRefused(t *testing.T) {
	ep := "http://" + closedPort(t)
	_, err := OpenPutMedia(context.Background(), putMediaConfig(ep), mkvHeader)
	if want := "PutMedia: connect to " + ep + ": connection refused"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%v does not wrap ECONNREFUSED", err)
	}
}

func TestPutMediaMalformedAcks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		io.ReadFull(r.Body, make([]byte, len(mkvHeader)))
		w.WriteHeader(200)
		io.WriteString(w, ackLine(AckBuffering, 1)+"<html>oops</html>\n")
		http.NewResponseController(w).Flush()
		io.Copy(io.Discard, r.Body) // until the client closes the connection
	}))
	defer srv.Close()
	p, err := OpenPutMedia(context.Background(), putMediaConfig(srv.URL), mkvHeader)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	if a, ok := recvAck(t, p.Acks()); !ok || a.EventType != AckBuffering {
		t.Fatalf("first ack %+v %v", a, ok)
	}
	if _, ok := recvAck(t, p.Acks()); ok {
		t.Fatal("acks open after garbage")
	}
	err = p.Err()
	if !errors.Is(err, ErrMalformedAck) || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("Err: %v", err)
	}
	if _, werr := p.Write([]byte("x")); !errors.Is(werr, ErrMalformedAck) {
		t.Errorf("Write after a failed session: %v", werr)
	}
}

func TestPutMediaConnectionCut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		io.ReadFull(r.Body, make([]byte, len(mkvHeader)))
		w.WriteHeader(200)
		io.WriteString(w, ackLine(AckBuffering, 1))
		http.NewResponseController(w).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // no terminating chunk
		}
	}))
	defer srv.Close()
	p, err := OpenPutMedia(context.Background(), putMediaConfig(srv.URL), mkvHeader)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	for {
		if _, ok := recvAck(t, p.Acks()); !ok {
			break
		}
	}
	if err := p.Err(); err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Err after a cut: %v", err)
	}
}

func TestPutMediaConfigChecks(t *testing.T) {
	for name, mod := range map[string]func(*PutMediaConfig){
		"remote http":      func(c *PutMediaConfig) { c.Endpoint = "http://s-1.kinesisvideo.example.com" },
		"bad stream":       func(c *PutMediaConfig) { c.StreamName = "a b" },
		"no credentials":   func(c *PutMediaConfig) { c.Credentials = nil },
		"bad timecode":     func(c *PutMediaConfig) { c.TimecodeType = "absolute" },
		"bad region":       func(c *PutMediaConfig) { c.Region = "" },
		"before the epoch": func(c *PutMediaConfig) { c.ProducerStart = time.Unix(-10, 0) },
	} {
		cfg := putMediaConfig("http://127.0.0.1:1")
		mod(&cfg)
		if _, err := OpenPutMedia(context.Background(), cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "PutMedia: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := OpenPutMedia(ctx, putMediaConfig("http://127.0.0.1:1"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

func TestPutMediaHeadersVariants(t *testing.T) {
	type seen struct{ ack, tc, start, token, ua string }
	ch := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := verifySigV4(r, EmptyPayloadHash, testSecret, testRegion); err != nil {
			t.Error(err)
		}
		ch <- seen{r.Header.Get("X-Amzn-Fragment-Acknowledgment-Required"), r.Header.Get("X-Amzn-Fragment-Timecode-Type"),
			r.Header.Get("X-Amzn-Producer-Start-Timestamp"), r.Header.Get("X-Amz-Security-Token"), r.Header.Get("User-Agent")}
		http.NewResponseController(w).EnableFullDuplex()
		io.ReadFull(r.Body, make([]byte, len(mkvHeader)))
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	cfg := putMediaConfig(srv.URL)
	cfg.AckRequired, cfg.TimecodeType, cfg.Credentials, cfg.UserAgent = false, Relative, staticCredsNoToken(), ""
	cfg.ProducerStart = time.Unix(1795393362, 595_999_999)
	p, err := OpenPutMedia(context.Background(), cfg, mkvHeader)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CloseBody(); err != nil {
		t.Fatal(err)
	}
	for range p.Acks() {
	}
	if p.Err() != nil {
		t.Fatal(p.Err())
	}
	got := <-ch
	if want := (seen{"0", "RELATIVE", "1795393362.595", "", DefaultUserAgent}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
