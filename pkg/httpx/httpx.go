// Package httpx builds every HTTPS client and connection kvsgo makes (KVS
// control and data planes, STS, the AWS IoT credentials provider, the
// default chain's endpoints, the command-line tool) from one policy: the
// trusted CAs, client certificates, the loopback guard (KVSGO_LOOPBACK_ONLY),
// the proxy from the environment, connect, TLS and response-header timeouts,
// and the keep-alive policy. Client.DialTLS gives a raw connection under the
// same policy, for a caller that writes HTTP itself.
//
// New does no I/O: the one input that lives in files, a CA bundle, is read by
// LoadCertPool, which the caller runs where I/O belongs (the element's start).
//
// It imports the standard library only: never GStreamer, glib or the AWS SDK,
// and no cgo.
package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// LoopbackOnlyEnv, when set, makes kvsgo refuse to connect to anything but
// loopback addresses (127.0.0.0/8, ::1) and to resolve names through DNS. The
// test suites set it; it is also a safe way to try kvsgo offline.
const LoopbackOnlyEnv = "KVSGO_LOOPBACK_ONLY"

// Defaults of Options.
const (
	DefaultConnectTimeout  = 5 * time.Second
	DefaultIdleConnTimeout = 90 * time.Second
	// DefaultMaxIdleConnsPerHost keeps a few idle connections per host: the
	// control plane makes a handful of calls at start and on reconnection.
	DefaultMaxIdleConnsPerHost = 4
	// TCPKeepAlive is the interval of TCP keep-alive probes on every
	// connection, so that a dead peer of a long PutMedia session is noticed.
	TCPKeepAlive = 30 * time.Second
)

// Options is the connection policy. The zero value is usable: system roots,
// proxies from the environment, 5 s connect timeout, keep-alive on.
type Options struct {
	// ConnectTimeout bounds each connection's set-up: the TCP dial, a
	// proxy's CONNECT and the TLS handshake, each. It defaults to 5 s.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout, if positive, bounds the wait for a response's
	// headers once the request is written. 0 leaves it to the request's
	// context (PutMedia streams its body for as long as the pipeline runs,
	// so its client leaves it 0).
	ResponseHeaderTimeout time.Duration
	// Timeout, if positive, bounds every request of the client from start
	// to the end of its body (http.Client.Timeout). 0 for streaming clients.
	Timeout time.Duration
	// RootCAs, if set, replaces the system roots (see LoadCertPool).
	RootCAs *x509.CertPool
	// Certificates are presented to servers that ask for a client
	// certificate (the AWS IoT credentials provider's mutual TLS).
	Certificates []tls.Certificate
	// ServerName, if set, is the name verified in every server certificate
	// instead of the dialled host's.
	ServerName string
	// LoopbackOnly refuses every address but loopback and every DNS lookup
	// (LoopbackOnlyEnv), proxies included.
	LoopbackOnly bool
	// Proxy chooses the proxy of a request; nil means
	// http.ProxyFromEnvironment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). Use
	// NoProxy to connect directly.
	Proxy func(*http.Request) (*url.URL, error)
	// DisableKeepAlives closes every connection after its response: for
	// clients that make one request.
	DisableKeepAlives bool
	// MaxIdleConnsPerHost defaults to DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
	// IdleConnTimeout defaults to DefaultIdleConnTimeout.
	IdleConnTimeout time.Duration
	// DialContext, if set, replaces the TCP dial (a test seam: tests point
	// a name at 127.0.0.1). LoopbackOnly is not applied to it.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NoProxy is an Options.Proxy that never uses a proxy.
func NoProxy(*http.Request) (*url.URL, error) { return nil, nil }

// FromEnv returns the options the environment asks for: LoopbackOnly when
// KVSGO_LOOPBACK_ONLY is set. (Proxies are read from the environment by
// the default Proxy when a request is made.)
func FromEnv(getenv func(string) string) Options {
	return Options{LoopbackOnly: getenv(LoopbackOnlyEnv) != ""}
}

// Client is an HTTP client and a dialer that share one policy.
type Client struct {
	o      Options
	dialer *net.Dialer
	tls    *tls.Config
	http   *http.Client
}

// New returns a Client for o. It does no I/O.
func New(o Options) *Client {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Proxy == nil {
		o.Proxy = http.ProxyFromEnvironment
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if o.IdleConnTimeout <= 0 {
		o.IdleConnTimeout = DefaultIdleConnTimeout
	}
	c := &Client{o: o, dialer: &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: TCPKeepAlive}}
	if o.LoopbackOnly {
		c.dialer.Control = loopbackControl
		c.dialer.Resolver = &net.Resolver{PreferGo: true, Dial: refuseDNS}
	}
	// HTTP/1.1 only: PutMedia signs transfer-encoding, which HTTP/2
	// forbids, and its chunked body and the ACK stream share one
	// connection, as with the official producer.
	c.tls = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      o.RootCAs,
		Certificates: o.Certificates,
		ServerName:   o.ServerName,
		NextProtos:   []string{"http/1.1"},
	}
	c.http = &http.Client{Timeout: o.Timeout, Transport: &http.Transport{
		Proxy:                 o.Proxy,
		DialContext:           c.Dial,
		TLSHandshakeTimeout:   o.ConnectTimeout,
		TLSClientConfig:       c.tls.Clone(),
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableKeepAlives:     o.DisableKeepAlives,
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       o.IdleConnTimeout,
	}}
	return c
}

// Options returns the policy of c, defaults filled.
func (c *Client) Options() Options { return c.o }

// HTTP returns the HTTP client. Every call returns the same client, so that
// its connections are reused.
func (c *Client) HTTP() *http.Client { return c.http }

// TLSConfig returns a copy of the TLS configuration of every connection.
func (c *Client) TLSConfig() *tls.Config { return c.tls.Clone() }

// Dial opens a TCP connection to addr under the policy: the loopback guard
// and the connect timeout (no proxy, no TLS). It is the HTTP client's dial.
func (c *Client) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.o.DialContext != nil {
		ctx, cancel := context.WithTimeout(ctx, c.o.ConnectTimeout)
		defer cancel()
		return c.o.DialContext(ctx, network, addr)
	}
	return c.dialer.DialContext(ctx, network, addr)
}

// DialTLS opens a TLS connection to addr (host:port) as the HTTP client
// would for an https URL: through the proxy Options.Proxy picks for it
// (an HTTP CONNECT tunnel; http and https proxies), else directly, with the
// loopback guard on every address dialled, and the TLS configuration of
// the client (roots, client certificates, HTTP/1.1). Each step is bounded
// by ConnectTimeout and by ctx. The handshake is complete when it returns.
func (c *Client) DialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("httpx: dial %s: %w", addr, err)
	}
	proxy, err := c.o.Proxy(&http.Request{Method: http.MethodConnect, URL: &url.URL{Scheme: "https", Host: addr}, Host: addr, Header: http.Header{}})
	if err != nil {
		return nil, fmt.Errorf("httpx: proxy for %s: %w", addr, err)
	}
	var conn net.Conn
	if proxy != nil {
		conn, err = c.dialProxy(ctx, network, proxy, addr)
	} else {
		conn, err = c.Dial(ctx, network, addr)
	}
	if err != nil {
		return nil, err
	}
	tc := c.tls.Clone()
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	tlsConn := tls.Client(conn, tc)
	hctx, cancel := context.WithTimeout(ctx, c.o.ConnectTimeout)
	defer cancel()
	if err := tlsConn.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("httpx: TLS handshake with %s: %w", addr, err)
	}
	return tlsConn, nil
}

// loopbackControl refuses every address but loopback.
func loopbackControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is set: refusing to connect to %s (only loopback is allowed)", LoopbackOnlyEnv, address)
	}
	return nil
}

func refuseDNS(_ context.Context, _, address string) (net.Conn, error) {
	return nil, fmt.Errorf("%s is set: refusing DNS lookups through %s", LoopbackOnlyEnv, address)
}
