package kvs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// connectProxy is an HTTP proxy that serves CONNECT tunnels (and records
// their targets), or refuses each with status when it is not 0.
type connectProxy struct {
	ln      net.Listener
	status  int
	mu      sync.Mutex
	targets []string
	auth    []string
}

func startConnectProxy(t *testing.T, status int) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln, status: status}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *connectProxy) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, req.Host)
	p.auth = append(p.auth, req.Header.Get("Proxy-Authorization"))
	p.mu.Unlock()
	if p.status != 0 {
		io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
		return
	}
	up, err := net.Dial("tcp", req.Host)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	defer up.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	go func() { io.Copy(up, br); up.(*net.TCPConn).CloseWrite() }()
	io.Copy(c, up)
}

// ackServer answers PutMedia with one PERSISTED ack per line of body.
func ackServer(t *testing.T, tlsOn bool) *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checkPutMediaRequest(t, r)
		http.NewResponseController(w).EnableFullDuplex()
		br := bufio.NewReader(r.Body)
		first := make([]byte, len(mkvHeader))
		if _, err := io.ReadFull(br, first); err != nil || !bytes.Equal(first, mkvHeader) {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		for {
			if _, err := br.ReadString('\n'); err != nil {
				return
			}
			io.WriteString(w, ackLine(AckPersisted, 1))
			http.NewResponseController(w).Flush()
		}
	})
	if tlsOn {
		return httptest.NewTLSServer(h)
	}
	return httptest.NewServer(h)
}

// PutMedia follows its client's proxy policy: through HTTPS_PROXY (here
// the transport's Proxy) it opens a CONNECT tunnel, with the proxy's
// credentials, and runs TLS with the endpoint inside it.
func TestPutMediaThroughProxy(t *testing.T) {
	srv := ackServer(t, true)
	defer srv.Close()
	proxy := startConnectProxy(t, 0)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: proxy.ln.Addr().String(), User: url.UserPassword("cam", "pw")})
	cfg := putMediaConfig(srv.URL)
	cfg.HTTPClient = &http.Client{Transport: tr}
	p, err := OpenPutMedia(context.Background(), cfg, mkvHeader)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	if _, err := p.Write([]byte("cluster 1\n")); err != nil {
		t.Fatal(err)
	}
	if a, ok := recvAck(t, p.Acks()); !ok || a.EventType != AckPersisted {
		t.Fatalf("ack %+v %v", a, ok)
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if len(proxy.targets) != 1 || proxy.targets[0] != strings.TrimPrefix(srv.URL, "https://") {
		t.Errorf("proxy tunnels %v, want one to %s", proxy.targets, srv.URL)
	}
	if proxy.auth[0] != "Basic Y2FtOnB3" { // cam:pw
		t.Errorf("Proxy-Authorization %q", proxy.auth[0])
	}
}

// A proxy that refuses the tunnel is an error naming the proxy and its
// answer, not a hang or a generic failure.
func TestPutMediaProxyRefuses(t *testing.T) {
	srv := ackServer(t, false)
	defer srv.Close()
	proxy := startConnectProxy(t, 407)
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxy.ln.Addr().String()})}
	cfg := putMediaConfig(srv.URL)
	cfg.HTTPClient = &http.Client{Transport: tr}
	_, err := OpenPutMedia(context.Background(), cfg, mkvHeader)
	if err == nil || !strings.Contains(err.Error(), "refused the tunnel") || !strings.Contains(err.Error(), "407") {
		t.Fatalf("err %v, want the proxy's refusal", err)
	}
}

// The TLS policy is the transport's: an endpoint whose certificate the
// client's roots do not trust fails as a TLS error.
func TestPutMediaUntrustedCertificate(t *testing.T) {
	srv := ackServer(t, true)
	defer srv.Close()
	cfg := putMediaConfig(srv.URL)
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}
	_, err := OpenPutMedia(context.Background(), cfg, mkvHeader)
	if err == nil || !IsTLSError(err) {
		t.Fatalf("err %v, want a TLS error", err)
	}
}

// A client whose transport is not an *http.Transport is refused with a
// clear error (PutMedia needs the transport's dial and TLS policy).
func TestPutMediaCustomRoundTripper(t *testing.T) {
	cfg := putMediaConfig("http://127.0.0.1:1")
	cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, io.EOF })}
	_, err := OpenPutMedia(context.Background(), cfg, mkvHeader)
	if err == nil || !strings.Contains(err.Error(), "needs an *http.Transport") {
		t.Fatalf("err %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TryWrite never waits: against a server that stops reading, it takes
// chunks until the kernel's buffers are full, then leaves the rest of a
// chunk pending; Flush (or the next Write) sends it once the server reads
// again, and the body arrives whole and in order.
func TestPutMediaTryWrite(t *testing.T) {
	resume := make(chan struct{})
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		first := make([]byte, len(mkvHeader))
		if _, err := io.ReadFull(r.Body, first); err != nil {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		<-resume
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer srv.Close()
	p, err := OpenPutMedia(context.Background(), putMediaConfig(srv.URL), mkvHeader)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Abort()
	if !p.CanTryWrite() {
		t.Fatal("a plain TCP connection on Linux cannot TryWrite")
	}
	var want bytes.Buffer
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	partial := false
	for i := 0; i < 256 && !partial; i++ {
		c := append([]byte(nil), chunk...)
		c[0] = byte(i)
		ok, done, err := p.TryWrite(c)
		if err != nil || !ok {
			t.Fatalf("TryWrite %d: ok %v err %v", i, ok, err)
		}
		want.Write(c)
		partial = !done
	}
	if !partial {
		t.Fatal("256 MiB went out while the server read nothing: the test cannot tell waiting from not waiting")
	}
	if ok, _, _ := p.TryWrite([]byte("more")); ok {
		t.Fatal("TryWrite wrote with a chunk still pending")
	}
	close(resume)
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	want.WriteString("tail")
	if err := p.CloseBody(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want.Bytes()) {
			t.Fatalf("the server got %d bytes, want %d (or they differ)", len(b), want.Len())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not get the whole body")
	}
}
