package httpx

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// dialProxy connects to proxy and opens a CONNECT tunnel to addr through it.
func (c *Client) dialProxy(ctx context.Context, network string, proxy *url.URL, addr string) (net.Conn, error) {
	paddr := proxy.Host
	if proxy.Port() == "" {
		switch proxy.Scheme {
		case "http":
			paddr = net.JoinHostPort(proxy.Hostname(), "80")
		case "https":
			paddr = net.JoinHostPort(proxy.Hostname(), "443")
		}
	}
	if proxy.Scheme != "http" && proxy.Scheme != "https" {
		return nil, fmt.Errorf("httpx: proxy %s: scheme %q is not supported (http or https)", redactProxy(proxy), proxy.Scheme)
	}
	conn, err := c.Dial(ctx, network, paddr)
	if err != nil {
		return nil, fmt.Errorf("httpx: proxy %s: %w", redactProxy(proxy), err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.ConnectTimeout)
	defer cancel()
	if proxy.Scheme == "https" {
		tc := c.tls.Clone()
		tc.ServerName = proxy.Hostname()
		tc.Certificates = nil // the client certificate is for the server, not the proxy
		tlsConn := tls.Client(conn, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("httpx: proxy %s: TLS handshake: %w", redactProxy(proxy), err)
		}
		conn = tlsConn
	}
	if err := connect(ctx, conn, proxy, addr); err != nil {
		conn.Close()
		return nil, fmt.Errorf("httpx: proxy %s: CONNECT %s: %w", redactProxy(proxy), addr, err)
	}
	return conn, nil
}

// connect sends CONNECT addr and reads the proxy's answer, bounded by ctx.
func connect(ctx context.Context, conn net.Conn, proxy *url.URL, addr string) error {
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if stop() {
			conn.SetDeadline(time.Time{})
		}
	}()
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: http.Header{}}
	if u := proxy.User; u != nil {
		pw, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)))
	}
	if err := req.Write(conn); err != nil {
		return ctxErr(ctx, err)
	}
	// The proxy says nothing more until the client's TLS hello, so a
	// buffered reader cannot swallow tunnel bytes; Buffered checks it.
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return ctxErr(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return fmt.Errorf("the proxy answered %s", resp.Status)
	}
	if br.Buffered() > 0 {
		return fmt.Errorf("the proxy sent %d bytes after its answer", br.Buffered())
	}
	return nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// redactProxy shows a proxy URL without its password.
func redactProxy(u *url.URL) string { return u.Redacted() }
