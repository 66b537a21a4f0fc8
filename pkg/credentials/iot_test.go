package credentials

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// testCA signs the fake endpoint's and the device's certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{c, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

var serialN atomic.Int64

func (ca *testCA) issue(t *testing.T, hosts []string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, der []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serialN.Add(1) + 1), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: notBefore, NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), der
}

// fakeIoT is a credentials endpoint on localhost whose answer a test sets.
type fakeIoT struct {
	srv      *httptest.Server
	ca       *testCA
	endpoint string // localhost:PORT
	requests atomic.Int32
	thing    atomic.Value
	ua       atomic.Value
	answer   func(w http.ResponseWriter, r *http.Request)
}

func newFakeIoT(t *testing.T) *fakeIoT {
	t.Helper()
	f := &fakeIoT{ca: newTestCA(t)}
	certPEM, keyPEM, _ := f.ca.issue(t, []string{"localhost"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		f.thing.Store(r.Header.Get("x-amzn-iot-thingname"))
		f.ua.Store(r.Header.Get("User-Agent"))
		if len(r.TLS.PeerCertificates) == 0 || r.URL.Path != "/role-aliases/Alias/credentials" || r.TLS.ServerName != "localhost" {
			http.Error(w, "bad request", 400)
			return
		}
		f.answer(w, r)
	}))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS12}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	_, port, _ := net.SplitHostPort(f.srv.Listener.Addr().String())
	f.endpoint = "localhost:" + port
	f.answer = func(w http.ResponseWriter, r *http.Request) { f.reply(w, time.Hour) }
	return f
}

func (f *fakeIoT) reply(w http.ResponseWriter, lifetime time.Duration) {
	n := f.requests.Load()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"credentials":{"accessKeyId":"ASIAFAKE%04d","secretAccessKey":"fake-secret-value","sessionToken":"fake-session-token","expiration":"%s"}}`,
		n, time.Now().Add(lifetime).UTC().Format("2006-01-02T15:04:05Z"))
}

// device writes a device certificate and key signed by ca into dir.
func device(t *testing.T, dir string, ca *testCA, notBefore, notAfter time.Time) (IoTCertificate, string) {
	t.Helper()
	c, k, der := ca.issue(t, nil, notBefore, notAfter)
	os.WriteFile(filepath.Join(dir, "cert.pem"), c, 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), k, 0o600)
	h := sha256.Sum256(der)
	return IoTCertificate{CertPath: filepath.Join(dir, "cert.pem"), KeyPath: filepath.Join(dir, "key.pem"), RoleAlias: "Alias", ThingName: "cam1",
		ConnectionTimeout: 3 * time.Second, CompletionTimeout: 5 * time.Second}, hex.EncodeToString(h[:])
}

func (f *fakeIoT) config(t *testing.T) (IoTCertificate, string) {
	dir := t.TempDir()
	c, id := device(t, dir, f.ca, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	os.WriteFile(filepath.Join(dir, "ca.pem"), f.ca.pem, 0o644)
	c.CAPath, c.Endpoint = filepath.Join(dir, "ca.pem"), f.endpoint
	return c, id
}

func TestIoTProvider(t *testing.T) {
	f := newFakeIoT(t)
	c, id := f.config(t)
	p, warn, err := NewIoTProvider(c, IoTOptions{})
	if err != nil || len(warn) != 0 {
		t.Fatal(err, warn)
	}
	if p.CertificateID() != id {
		t.Fatalf("certificate id %s, want %s", p.CertificateID(), id)
	}
	got, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessKeyID != "ASIAFAKE0001" || got.SessionToken == "" || !got.CanExpire || time.Until(got.Expires) < 59*time.Minute {
		t.Fatalf("%+v", got)
	}
	if f.thing.Load() != "cam1" {
		t.Fatalf("thing header %v", f.thing.Load())
	}
	if ua := f.ua.Load(); ua != IoTUserAgent {
		t.Errorf("User-Agent %q, want %q", ua, IoTUserAgent)
	}
	// The element's user-agent starts it.
	pp, _, err := NewIoTProvider(c, IoTOptions{Product: "cam-fleet/2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pp.Retrieve(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ua := f.ua.Load(); ua != "cam-fleet/2 "+IoTUserAgent {
		t.Errorf("User-Agent %q, want the product first", ua)
	}
	// A CA directory works as well as a file.
	c.CAPath = filepath.Dir(c.CAPath)
	if _, _, err := NewIoTProvider(c, IoTOptions{}); err != nil {
		t.Fatalf("CA directory: %v", err)
	}
}

// Credentials are fetched again ExpiryWindow before they expire, and not
// before: a cached provider whose credentials live an hour asks once, one
// whose credentials live less than ExpiryWindow asks on every use.
func TestIoTRefreshBeforeExpiry(t *testing.T) {
	f := newFakeIoT(t)
	c, _ := f.config(t)
	lifetime := time.Hour
	f.answer = func(w http.ResponseWriter, r *http.Request) { f.reply(w, lifetime) }
	r, err := Resolve(context.Background(), Sources{IoT: &c}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := r.Provider.Retrieve(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.requests.Load(); n != 1 {
		t.Fatalf("%d requests for an hour's credentials", n)
	}
	lifetime = ExpiryWindow - 5*time.Second
	f.requests.Store(0)
	r, err = Resolve(context.Background(), Sources{IoT: &c}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.Provider.Retrieve(context.Background())
	b, _ := r.Provider.Retrieve(context.Background())
	if n := f.requests.Load(); n != 3 || a.AccessKeyID == b.AccessKeyID {
		t.Fatalf("%d requests, keys %s %s: credentials inside the expiry window were not refreshed", n, a.AccessKeyID, b.AccessKeyID)
	}
}

// Every bad answer is an error that names what is wrong, never a secret.
func TestIoTBadAnswers(t *testing.T) {
	f := newFakeIoT(t)
	c, _ := f.config(t)
	past := time.Now().Add(-time.Minute).UTC().Format("2006-01-02T15:04:05Z")
	cases := []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   string
	}{
		{"HTML", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body>captive portal</body></html>")
		}, "HTML"},
		{"truncated", func(w http.ResponseWriter) {
			fmt.Fprint(w, `{"credentials":{"accessKeyId":"ASIA1","secretAccessKey":"fake-secret-value","sess`)
		}, "truncated"},
		{"expiration in the past", func(w http.ResponseWriter) {
			fmt.Fprintf(w, `{"credentials":{"accessKeyId":"ASIA1","secretAccessKey":"fake-secret-value","sessionToken":"fake-session-token","expiration":"%s"}}`, past)
		}, "not in the future"},
		{"bad expiration", func(w http.ResponseWriter) {
			fmt.Fprint(w, `{"credentials":{"accessKeyId":"ASIA1","secretAccessKey":"fake-secret-value","sessionToken":"fake-session-token","expiration":"tomorrow"}}`)
		}, "credentials.expiration"},
		{"missing token", func(w http.ResponseWriter) {
			fmt.Fprint(w, `{"credentials":{"accessKeyId":"ASIA1","secretAccessKey":"fake-secret-value","expiration":"2099-01-01T00:00:00Z"}}`)
		}, "credentials.sessionToken"},
		{"wrong type", func(w http.ResponseWriter) {
			fmt.Fprint(w, `{"credentials":{"accessKeyId":7}}`)
		}, "wrong type"},
		{"403", func(w http.ResponseWriter) {
			w.Header().Set("x-amzn-ErrorType", "AccessDeniedException")
			w.WriteHeader(403)
			fmt.Fprint(w, `{"message":"Access Denied"}`)
		}, "HTTP 403 AccessDeniedException: Access Denied"},
		{"404 HTML", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(404)
			fmt.Fprint(w, "<html>nope</html>")
		}, "HTTP 404: a text/html body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.answer = func(w http.ResponseWriter, _ *http.Request) { tc.answer(w) }
			p, _, err := NewIoTProvider(c, IoTOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Retrieve(context.Background())
			if !errors.Is(err, ErrIoTCredentials) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), f.endpoint) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "fake-secret-value") || strings.Contains(err.Error(), "fake-session-token") {
				t.Fatalf("secret in %v", err)
			}
		})
	}
	var se *IoTStatusError
	f.answer = func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(404)
		fmt.Fprint(w, `{"message":"Role alias does not exist"}`)
	}
	p, _, _ := NewIoTProvider(c, IoTOptions{})
	if _, err := p.Retrieve(context.Background()); !errors.As(err, &se) || se.StatusCode != 404 || se.Message != "Role alias does not exist" {
		t.Fatalf("%v", err)
	}
}

// "Invalid thing name passed" says which thing was asked for, whether it is
// the stream name by default, and how to fix it.
func TestIoTInvalidThingExplained(t *testing.T) {
	f := newFakeIoT(t)
	c, id := f.config(t)
	f.answer = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("x-amzn-ErrorType", "AccessDeniedException")
		w.WriteHeader(403)
		fmt.Fprint(w, `{"message":"Invalid thing name passed"}`)
	}
	for _, tc := range []struct {
		defaulted bool
		want      []string
	}{
		{true, []string{`iot-thing-name is not set, so the thing name is the stream name "cam1"`, "set iot-thing-name", "list-principal-things", "attach-thing-principal --thing-name cam1", id}},
		{false, []string{`the thing "cam1" named by iot-thing-name does not exist or is not attached to this certificate`, "attach-thing-principal --thing-name cam1", id}},
	} {
		c.ThingNameDefaulted = tc.defaulted
		p, _, err := NewIoTProvider(c, IoTOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Retrieve(context.Background())
		var se *IoTStatusError
		if !errors.As(err, &se) || se.Message != "Invalid thing name passed" {
			t.Fatalf("%v", err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("defaulted=%v: %q lacks %q", tc.defaulted, err, w)
			}
		}
	}
	if c, err := ParseIoTCertificate("iot-certificate,endpoint=e,cert-path=c,key-path=k,ca-path=a,role-aliases=r", "stream1"); err != nil || c.ThingName != "stream1" || !c.ThingNameDefaulted {
		t.Fatalf("default thing name: %+v %v", c, err)
	}
}

// Bad files are errors naming the field and the file, found before any
// request.
func TestIoTBadFiles(t *testing.T) {
	f := newFakeIoT(t)
	good, _ := f.config(t)
	other := newTestCA(t)
	dir := t.TempDir()
	expired, _ := device(t, dir, f.ca, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	expired.Endpoint, expired.CAPath = good.Endpoint, good.CAPath
	dir2 := t.TempDir()
	mismatched, _ := device(t, dir2, f.ca, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	mismatched.CertPath, mismatched.Endpoint, mismatched.CAPath = good.CertPath, good.Endpoint, good.CAPath
	os.WriteFile(filepath.Join(dir2, "other-ca.pem"), other.pem, 0o644)
	os.WriteFile(filepath.Join(dir2, "garbage.pem"), []byte("not a certificate"), 0o644)
	with := func(fn func(c *IoTCertificate)) IoTCertificate { c := good; fn(&c); return c }
	cases := []struct {
		name  string
		c     IoTCertificate
		field string
		want  string
	}{
		{"missing cert", with(func(c *IoTCertificate) { c.CertPath = "/nonexistent/cert.pem" }), "cert-path", "/nonexistent/cert.pem"},
		{"missing key", with(func(c *IoTCertificate) { c.KeyPath = "/nonexistent/key.pem" }), "key-path", "/nonexistent/key.pem"},
		{"missing CA", with(func(c *IoTCertificate) { c.CAPath = "/nonexistent/ca.pem" }), "ca-path", "/nonexistent/ca.pem"},
		{"not a certificate", with(func(c *IoTCertificate) { c.CertPath = filepath.Join(dir2, "garbage.pem") }), "cert-path", "garbage.pem"},
		{"CA without certificates", with(func(c *IoTCertificate) { c.CAPath = filepath.Join(dir2, "garbage.pem") }), "ca-path", "garbage.pem"},
		{"key of another certificate", mismatched, "key-path", "does not match the certificate"},
		{"expired certificate", expired, "cert-path", "expired at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := NewIoTProvider(tc.c, IoTOptions{})
			var fe *IoTFieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want field %s and %q", err, tc.field, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("key material in %v", err)
			}
		})
	}
	// A CA that does not verify the endpoint fails the request, naming ca-path.
	p, _, err := NewIoTProvider(with(func(c *IoTCertificate) { c.CAPath = filepath.Join(dir2, "other-ca.pem") }), IoTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Retrieve(context.Background()); err == nil || !strings.Contains(err.Error(), "ca-path") || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("wrong CA: %v", err)
	}
	// An endpoint name the certificate is not for.
	_, port, _ := net.SplitHostPort(good.Endpoint)
	p, _, _ = NewIoTProvider(with(func(c *IoTCertificate) { c.Endpoint = "127.0.0.1:" + port }), IoTOptions{})
	if _, err := p.Retrieve(context.Background()); err == nil || !strings.Contains(err.Error(), "(endpoint)") {
		t.Fatalf("wrong name: %v", err)
	}
	// A key readable by others is a warning, not an error.
	os.Chmod(good.KeyPath, 0o644)
	_, warn, err := NewIoTProvider(good, IoTOptions{})
	if err != nil || len(warn) != 1 || !strings.Contains(warn[0], "readable by other users") || !strings.Contains(warn[0], good.KeyPath) {
		t.Fatalf("%v %q", err, warn)
	}
	r, err := Resolve(context.Background(), Sources{IoT: &good}, Options{})
	if err != nil || len(r.Warnings) != 1 || r.CertificateID == "" || !strings.Contains(r.Source, "iot-certificate") {
		t.Fatalf("%+v %v", r, err)
	}
}

// IoT comes first in the precedence: it wins over properties.
func TestIoTPrecedence(t *testing.T) {
	f := newFakeIoT(t)
	c, _ := f.config(t)
	r, err := Resolve(context.Background(), Sources{IoT: &c, AccessKey: ptr("AKIAPROP"), SecretKey: ptr("s")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := r.Provider.Retrieve(context.Background())
	if !strings.HasPrefix(got.AccessKeyID, "ASIAFAKE") {
		t.Fatalf("%+v from %s", got, r.Source)
	}
	if _, ok := r.Provider.(*aws.CredentialsCache); !ok {
		t.Fatalf("provider %T is not cached", r.Provider)
	}
}

// The answer parser never panics and never accepts credentials with an empty
// field or an expiration that is not in the future.
func FuzzParseIoTResponse(f *testing.F) {
	f.Add([]byte(`{"credentials":{"accessKeyId":"ASIA1","secretAccessKey":"s","sessionToken":"t","expiration":"2099-01-01T00:00:00Z"}}`))
	f.Add([]byte(`<html>`))
	f.Add([]byte(`{"credentials":{"accessKeyId":"ASIA1","secretAccessKey":"s","sess`))
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseIoTResponse(b, now)
		if err == nil && (c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" || !c.Expires.After(now)) {
			t.Fatalf("accepted %q as %+v", b, c)
		}
	})
}

// The certificate's connection-timeout bounds a dial through any dialer,
// the element's own included.
func TestIoTConnectionTimeoutBoundsAGivenDialer(t *testing.T) {
	f := newFakeIoT(t)
	c, _ := f.config(t)
	c.ConnectionTimeout = 2 * time.Second
	var left time.Duration
	var has bool
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var deadline time.Time
		deadline, has = ctx.Deadline()
		left = time.Until(deadline)
		return nil, errors.New("no dial in this test")
	}
	p, _, err := NewIoTProvider(c, IoTOptions{DialContext: dial})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Retrieve(context.Background()); err == nil {
		t.Fatal("retrieve succeeded without a connection")
	}
	if !has || left > c.ConnectionTimeout {
		t.Fatalf("the dial had a deadline: %v, %v away; want at most %v", has, left, c.ConnectionTimeout)
	}
}
