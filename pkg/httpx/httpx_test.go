package httpx

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// tlsServer is an HTTPS server on 127.0.0.1 that answers "ok" and records
// the protocol of each request; caFile holds its certificate in PEM.
func tlsServer(t *testing.T) (srv *httptest.Server, caFile string) {
	t.Helper()
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		io.WriteString(w, "ok")
	}))
	srv.EnableHTTP2 = true // the client must still speak HTTP/1.1
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	writeCert(t, caFile, srv.Certificate())
	return srv, caFile
}

func writeCert(t *testing.T, path string, c *x509.Certificate) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, c *Client, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.HTTP().Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// The CA bundle decides: the server's CA (as a file and as a directory) is
// trusted, and the system roots or another CA refuse it. Requests are
// HTTP/1.1 even to a server that offers HTTP/2.
func TestCABundle(t *testing.T) {
	srv, caFile := tlsServer(t)
	pool, err := LoadCertPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	dirPool, err := LoadCertPool(filepath.Dir(caFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*x509.CertPool{pool, dirPool} {
		c := New(Options{RootCAs: p, LoopbackOnly: true, Proxy: NoProxy})
		resp, err := get(t, c, srv.URL)
		if err != nil {
			t.Fatalf("with the server's CA: %v", err)
		}
		if resp.Header.Get("X-Proto") != "HTTP/1.1" {
			t.Fatalf("protocol %s, want HTTP/1.1", resp.Header.Get("X-Proto"))
		}
	}
	otherCA := filepath.Join(t.TempDir(), "other.pem")
	writeCert(t, otherCA, selfSigned(t))
	other, err := LoadCertPool(otherCA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, New(Options{RootCAs: other, LoopbackOnly: true, Proxy: NoProxy}), srv.URL); !isUnknownAuthority(err) {
		t.Fatalf("another CA: %v, want an unknown-authority error", err)
	}
	if _, err := get(t, New(Options{LoopbackOnly: true, Proxy: NoProxy}), srv.URL); !isUnknownAuthority(err) {
		t.Fatalf("system roots: %v, want an unknown-authority error", err)
	}
}

func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

func TestLoadCertPoolErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("not a certificate\n"), 0o644)
	big := filepath.Join(t.TempDir(), "big.pem")
	os.WriteFile(big, make([]byte, maxCAFile+1), 0o644)
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.pem"), "missing.pem"},
		{empty, "no PEM certificate found in " + empty},
		{dir, "no PEM certificate found in " + dir},
		{big, "larger than 1 MiB"},
	} {
		if _, err := LoadCertPool(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.path, err, c.want)
		}
	}
}

// The loopback guard refuses every other address, and DNS, before any
// packet is sent; loopback still works.
func TestLoopbackGuard(t *testing.T) {
	srv, caFile := tlsServer(t)
	pool, _ := LoadCertPool(caFile)
	c := New(Options{RootCAs: pool, LoopbackOnly: true, Proxy: NoProxy, ConnectTimeout: 2 * time.Second})
	for _, addr := range []string{"192.0.2.1:443", "[2001:db8::1]:443", "example.com:443"} {
		_, err := c.Dial(context.Background(), "tcp", addr)
		if err == nil || !strings.Contains(err.Error(), LoopbackOnlyEnv) {
			t.Errorf("Dial %s: %v, want a refusal naming %s", addr, err, LoopbackOnlyEnv)
		}
		if _, err := c.DialTLS(context.Background(), "tcp", addr); err == nil || !strings.Contains(err.Error(), LoopbackOnlyEnv) {
			t.Errorf("DialTLS %s: %v", addr, err)
		}
		if _, err := get(t, c, "https://"+addr+"/"); err == nil || !strings.Contains(err.Error(), LoopbackOnlyEnv) {
			t.Errorf("GET %s: %v", addr, err)
		}
	}
	// A proxy elsewhere is refused too.
	viaProxy := New(Options{RootCAs: pool, LoopbackOnly: true, Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: "192.0.2.1:3128"})})
	if _, err := get(t, viaProxy, srv.URL); err == nil || !strings.Contains(err.Error(), LoopbackOnlyEnv) {
		t.Errorf("through a non-loopback proxy: %v", err)
	}
	if _, err := get(t, c, srv.URL); err != nil {
		t.Fatalf("loopback: %v", err)
	}
	if FromEnv(func(k string) string { return map[string]string{LoopbackOnlyEnv: "1"}[k] }).LoopbackOnly != true ||
		FromEnv(func(string) string { return "" }).LoopbackOnly {
		t.Fatal("FromEnv does not follow " + LoopbackOnlyEnv)
	}
}

// DialTLS gives a connection with the client's TLS policy, on which a
// caller writes HTTP/1.1 itself.
func TestDialTLS(t *testing.T) {
	srv, caFile := tlsServer(t)
	pool, _ := LoadCertPool(caFile)
	c := New(Options{RootCAs: pool, LoopbackOnly: true, Proxy: NoProxy})
	addr := srv.Listener.Addr().String()
	conn, err := c.DialTLS(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	roundTrip(t, conn, addr)
	// Without the CA, the handshake fails.
	if _, err := New(Options{LoopbackOnly: true, Proxy: NoProxy}).DialTLS(context.Background(), "tcp", addr); !isUnknownAuthority(err) {
		t.Fatalf("DialTLS without the CA: %v", err)
	}
}

// roundTrip writes a GET on conn and checks the answer.
func roundTrip(t *testing.T, conn net.Conn, host string) {
	t.Helper()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "ok" || resp.Header.Get("X-Proto") != "HTTP/1.1" {
		t.Fatalf("answer %s %q %s", resp.Status, b, resp.Header.Get("X-Proto"))
	}
}

// connectProxy is an HTTP proxy on 127.0.0.1 that serves CONNECT only,
// checks the credentials it is given, and counts tunnels.
func connectProxy(t *testing.T, user, pass string) (*url.URL, *atomic.Int64) {
	t.Helper()
	var tunnels atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		if u, p, ok := proxyAuth(r); user != "" && (!ok || u != user || p != pass) {
			http.Error(w, "who?", http.StatusProxyAuthRequired)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		tunnels.Add(1)
		if brw.Reader.Buffered() > 0 {
			b, _ := brw.Reader.Peek(brw.Reader.Buffered())
			up.Write(b)
		}
		go func() { io.Copy(up, conn); up.Close() }()
		io.Copy(conn, up)
		conn.Close()
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u, &tunnels
}

func proxyAuth(r *http.Request) (string, string, bool) {
	h := r.Header.Get("Proxy-Authorization")
	if h == "" {
		return "", "", false
	}
	r2 := &http.Request{Header: http.Header{"Authorization": {h}}}
	return r2.BasicAuth()
}

// Through a proxy, the HTTP client and DialTLS both tunnel with CONNECT
// (with the proxy's credentials), and TLS is end to end with the server.
func TestProxyConnect(t *testing.T) {
	srv, caFile := tlsServer(t)
	pool, _ := LoadCertPool(caFile)
	addr := srv.Listener.Addr().String()
	proxy, tunnels := connectProxy(t, "cam", "pw")
	c := New(Options{RootCAs: pool, LoopbackOnly: true, Proxy: http.ProxyURL(proxy)})
	if _, err := get(t, c, srv.URL); err != nil {
		t.Fatalf("GET through the proxy: %v", err)
	}
	conn, err := c.DialTLS(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("DialTLS through the proxy: %v", err)
	}
	roundTrip(t, conn, addr)
	conn.Close()
	if n := tunnels.Load(); n != 2 {
		t.Fatalf("%d tunnels, want 2 (one per client)", n)
	}
	// Wrong credentials: the proxy's refusal is the error, without the
	// password.
	bad := *proxy
	bad.User = url.UserPassword("cam", "wrong-secret")
	_, err = New(Options{RootCAs: pool, LoopbackOnly: true, Proxy: http.ProxyURL(&bad)}).DialTLS(context.Background(), "tcp", addr)
	if err == nil || !strings.Contains(err.Error(), "407") || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("refused by the proxy: %v", err)
	}
}

// A peer that accepts and then says nothing: the TLS handshake is bounded
// by ConnectTimeout (HTTP client and DialTLS), the CONNECT answer too, and
// a response's headers by ResponseHeaderTimeout; the caller's context
// ends each of them earlier.
func TestTimeouts(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn // never answered; closed at the end
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	defer func() {
		silent.Close()
		<-accepted
		for _, c := range held {
			c.Close()
		}
	}()
	addr := silent.Addr().String()
	const timeout = 200 * time.Millisecond
	c := New(Options{ConnectTimeout: timeout, LoopbackOnly: true, Proxy: NoProxy})
	bounded := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		err := f()
		if err == nil {
			t.Fatalf("%s: no error from a silent peer", what)
		}
		// Generous: the bound is what matters, not its precision.
		if d := time.Since(start); d > timeout+10*time.Second {
			t.Fatalf("%s took %v, bound %v", what, d, timeout)
		}
	}
	bounded("DialTLS handshake", func() error { _, err := c.DialTLS(context.Background(), "tcp", addr); return err })
	bounded("HTTP handshake", func() error { _, err := get(t, c, "https://"+addr+"/"); return err })
	proxied := New(Options{ConnectTimeout: timeout, LoopbackOnly: true, Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr})})
	bounded("CONNECT answer", func() error { _, err := proxied.DialTLS(context.Background(), "tcp", "127.0.0.1:443"); return err })

	// Response headers: a TLS server that takes the request and never
	// answers.
	hold := make(chan struct{})
	slow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hold)
	rc := New(Options{ResponseHeaderTimeout: timeout, LoopbackOnly: true, Proxy: NoProxy, RootCAs: poolOf(slow.Certificate())})
	bounded("response headers", func() error { _, err := get(t, rc, slow.URL); return err })

	// The caller's context ends a dial whose own bound is far away.
	long := New(Options{ConnectTimeout: time.Hour, LoopbackOnly: true, Proxy: NoProxy})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := long.DialTLS(ctx, "tcp", addr); errc <- err }()
	time.AfterFunc(timeout, cancel)
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled DialTLS: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("DialTLS ignored its context")
	}
}

func poolOf(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

// selfSigned returns a fresh CA certificate, unrelated to httptest's.
func selfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "another CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
