package sink

import (
	"fmt"
	"net/http"
	"time"

	"github.com/kvsgo/kvsgo/pkg/httpx"
)

// newHTTPClient returns the client for both planes (httpx's policy):
// HTTP/1.1 only (PutMedia signs transfer-encoding, which HTTP/2 forbids),
// dial and TLS handshake bounded by the connection timeout, proxies from
// HTTPS_PROXY/NO_PROXY, no overall timeout (PutMedia streams for as long as
// the pipeline runs, and control-plane calls are bounded by their contexts).
// A non-empty caPath (a PEM file or a directory of PEM files) replaces the
// system roots, as curl's CAINFO/CAPATH do for the official element.
func newHTTPClient(connectTimeout time.Duration, loopbackOnly bool, caPath string) (*http.Client, error) {
	n, err := newNet(connectTimeout, loopbackOnly, caPath)
	if err != nil {
		return nil, err
	}
	return n.HTTP(), nil
}

func newNet(connectTimeout time.Duration, loopbackOnly bool, caPath string) (*httpx.Client, error) {
	o := httpx.Options{ConnectTimeout: connectTimeout, LoopbackOnly: loopbackOnly}
	if caPath != "" {
		pool, err := httpx.LoadCertPool(caPath)
		if err != nil {
			return nil, fmt.Errorf("%w: CA certificates (ca-cert-path or %s): %v", ErrSettings, CACertEnv, err)
		}
		o.RootCAs = pool
	}
	return httpx.New(o), nil
}

// LoopbackOnlyEnv, when set, makes the element refuse to connect to anything
// but loopback addresses (127.0.0.0/8, ::1) and to resolve names through
// DNS (httpx.LoopbackOnlyEnv).
const LoopbackOnlyEnv = httpx.LoopbackOnlyEnv
