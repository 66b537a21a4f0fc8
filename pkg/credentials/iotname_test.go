package credentials

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A credentials provider routes the handshake by server name, as AWS's
// does: a client that sends none (an IP address as endpoint) is refused.
// The error says that the name is the problem, not the certificate's
// registration; a refusal for a host name names both suspects.
func TestIoTHandshakeRefusedHints(t *testing.T) {
	ca := newTestCA(t)
	certPEM, keyPEM, _ := ca.issue(t, []string{"localhost"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			if h.ServerName != "localhost" {
				return nil, errors.New("unknown server name")
			}
			return nil, nil
		},
		VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return errors.New("not registered") },
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	f := &fakeIoT{ca: ca, endpoint: "localhost:" + port}
	c, _ := f.config(t)
	for _, tc := range []struct {
		endpoint string
		want     []string
		notWant  string
	}{
		{"127.0.0.1:" + port, []string{"is an IP address, so no server name was sent", "describe-endpoint"}, "registered and ACTIVE"},
		{"localhost:" + port, []string{"registered and ACTIVE", "describe-endpoint"}, "IP address"},
	} {
		c.Endpoint = tc.endpoint
		p, _, err := NewIoTProvider(c, IoTOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Retrieve(context.Background())
		if err == nil {
			t.Fatalf("%s: credentials despite a refused handshake", tc.endpoint)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error lacks %q: %v", tc.endpoint, w, err)
			}
		}
		if strings.Contains(err.Error(), tc.notWant) {
			t.Errorf("%s: error blames %q: %v", tc.endpoint, tc.notWant, err)
		}
	}
}
