package sink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/kvsgo/kvsgo/pkg/credentials"
)

// newHTTPClient returns the client for both planes: HTTP/1.1 only (PutMedia
// signs transfer-encoding, which HTTP/2 forbids), dial and TLS handshake
// bounded by the connection timeout, proxies from HTTPS_PROXY/NO_PROXY. It has
// no overall timeout: PutMedia streams for as long as the pipeline runs, and
// control-plane calls are bounded by their contexts.
// A non-empty caPath (a PEM file or a directory of PEM files) replaces the
// system roots, as curl's CAINFO/CAPATH do for the official element.
func newHTTPClient(connectTimeout time.Duration, loopbackOnly bool, caPath string) (*http.Client, error) {
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	if loopbackOnly {
		loopbackOnlyDialer(d)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if caPath != "" {
		pool, err := loadCAs(caPath)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   connectTimeout,
		TLSClientConfig:       tc,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}}, nil
}

// loadCAs is credentials.LoadCertPool with its errors naming the setting.
func loadCAs(path string) (*x509.CertPool, error) {
	pool, err := credentials.LoadCertPool(path)
	if err != nil {
		return nil, fmt.Errorf("%w: CA certificates (ca-cert-path or %s): %v", ErrSettings, CACertEnv, err)
	}
	return pool, nil
}

// LoopbackOnlyEnv, when set, makes the element refuse to connect to anything
// but loopback addresses (127.0.0.0/8, ::1) and to resolve names through
// DNS. The test suites set it; it is also a safe way to try kvsgo offline.
const LoopbackOnlyEnv = "KVSGO_LOOPBACK_ONLY"

func loopbackOnlyDialer(d *net.Dialer) {
	d.Control = func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("%s is set: refusing to connect to %s (only loopback is allowed)", LoopbackOnlyEnv, address)
		}
		return nil
	}
	d.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return nil, fmt.Errorf("%s is set: refusing DNS lookups through %s", LoopbackOnlyEnv, address)
	}}
}
