package kvs

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// A PutMedia session writes its own HTTP/1.1 request on a connection it
// owns: the uploader's goroutine writes each chunk to the socket itself
// (one writev per chunk on TCP), with no pipe and no transport goroutine in
// between, and the response (status, then the acknowledgement stream) is
// read with net/http's parser. The connection follows the policy of the
// client's *http.Transport: its dialer, proxy and TLS configuration.

// transportOf returns the *http.Transport whose policy a PutMedia
// connection follows.
func transportOf(hc *http.Client) (*http.Transport, error) {
	switch t := hc.Transport.(type) {
	case nil:
		return http.DefaultTransport.(*http.Transport), nil
	case *http.Transport:
		return t, nil
	default:
		return nil, fmt.Errorf("the HTTP client's transport is a %T: PutMedia needs an *http.Transport (it writes its request on a connection of its own)", hc.Transport)
	}
}

// dialPutMedia connects to req's host as t would: through t's proxy for
// this request (an HTTP CONNECT tunnel), then TLS for an https endpoint.
// ctx bounds the whole of it.
func dialPutMedia(ctx context.Context, t *http.Transport, req *http.Request) (net.Conn, error) {
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	target := hostPort(req.URL)
	var proxy *url.URL
	if t.Proxy != nil {
		p, err := t.Proxy(req)
		if err != nil {
			return nil, fmt.Errorf("proxy for %s: %w", req.URL.Host, err)
		}
		proxy = p
	}
	addr := target
	if proxy != nil {
		addr = hostPort(proxy)
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if proxy != nil {
		if conn, err = tunnel(ctx, conn, t, proxy, target); err != nil {
			return nil, err
		}
	}
	if req.URL.Scheme == "https" {
		if conn, err = handshake(ctx, conn, t.TLSClientConfig, req.URL.Hostname()); err != nil {
			return nil, err
		}
	}
	return conn, nil
}

// handshake runs a TLS client handshake over conn (closed on failure).
func handshake(ctx context.Context, conn net.Conn, base *tls.Config, host string) (net.Conn, error) {
	tc := &tls.Config{}
	if base != nil {
		tc = base.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	tc.NextProtos = []string{"http/1.1"}
	tlsConn := tls.Client(conn, tc)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tlsConn, nil
}

// tunnel asks proxy for a CONNECT tunnel to target over conn (closed on
// failure), as net/http does for https through HTTPS_PROXY.
func tunnel(ctx context.Context, conn net.Conn, t *http.Transport, proxy *url.URL, target string) (net.Conn, error) {
	if proxy.Scheme == "https" {
		var err error
		if conn, err = handshake(ctx, conn, t.TLSClientConfig, proxy.Hostname()); err != nil {
			return nil, fmt.Errorf("TLS with proxy %s: %w", proxy.Host, err)
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	head := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if u := proxy.User; u != nil {
		pw, _ := u.Password()
		head += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)) + "\r\n"
	}
	if _, err := conn.Write([]byte(head + "\r\n")); err != nil {
		conn.Close()
		return nil, fmt.Errorf("proxy %s: %w", proxy.Host, err)
	}
	br := bufio.NewReaderSize(conn, 1024)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("proxy %s: %w", proxy.Host, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, fmt.Errorf("proxy %s refused the tunnel to %s: %s", proxy.Host, target, resp.Status)
	}
	if br.Buffered() > 0 {
		conn.Close()
		return nil, fmt.Errorf("proxy %s sent data before the tunnel was used", proxy.Host)
	}
	if !stop() {
		conn.Close()
		return nil, ctx.Err()
	}
	return conn, nil
}

// hostPort is u's host with its scheme's default port when it has none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// requestHead is req's request line and headers, with a chunked body.
func requestHead(req *http.Request) ([]byte, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	var b bytesWriter
	b.buf = append(b.buf, req.Method+" "+req.URL.RequestURI()+" HTTP/1.1\r\nHost: "+host+"\r\n"...)
	if err := req.Header.Write(&b); err != nil {
		return nil, err
	}
	b.buf = append(b.buf, "Transfer-Encoding: chunked\r\n\r\n"...)
	return b.buf, nil
}

type bytesWriter struct{ buf []byte }

func (w *bytesWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

var crlf = []byte("\r\n")

// chunkWriter writes HTTP/1.1 chunks to a connection: on TCP one writev of
// the chunk header, the caller's bytes and the trailing CRLF (no copy); on
// TLS one Write of the three joined, so that they go out in as few records
// as the data allows. A chunk tried without waiting (try) may go out in
// part: pending holds the rest, written before anything else.
type chunkWriter struct {
	conn    net.Conn
	tcp     *net.TCPConn // conn, when it is plain TCP (writev)
	hdr     [18]byte
	bufs    [3][]byte
	joined  []byte
	pending net.Buffers
}

func newChunkWriter(conn net.Conn) *chunkWriter {
	tcp, _ := conn.(*net.TCPConn)
	return &chunkWriter{conn: conn, tcp: tcp}
}

// vector returns the chunk of b: its header, b and CRLF.
func (c *chunkWriter) vector(b []byte) [3][]byte {
	h := strconv.AppendUint(c.hdr[:0], uint64(len(b)), 16)
	return [3][]byte{append(h, crlf...), b, crlf}
}

// write writes head (the request head, or nil) and the chunk of b (none
// when b is empty), after what is pending.
func (c *chunkWriter) write(head, b []byte) error {
	if err := c.flush(); err != nil {
		return err
	}
	if len(b) == 0 && head == nil {
		return errors.New("an empty chunk would end the body")
	}
	c.bufs = c.vector(b)
	if c.tcp != nil {
		v := net.Buffers(c.bufs[:])
		if head != nil {
			v = append(net.Buffers{head}, v...)
		}
		if len(b) == 0 {
			v = v[:1]
		}
		_, err := v.WriteTo(c.conn)
		return err
	}
	c.joined = append(c.joined[:0], head...)
	if len(b) > 0 {
		for _, p := range c.bufs {
			c.joined = append(c.joined, p...)
		}
	}
	_, err := c.conn.Write(c.joined)
	if cap(c.joined) > 1<<20 {
		c.joined = nil // a large fragment's worth is not kept for the session
	}
	return err
}

// try writes the chunk of b without waiting for the network (plain TCP on
// Linux only; ok false otherwise, with nothing written). done false with
// ok true: part or none of it went out, and the rest is pending, to go out
// with the next write or flush; b must stay unchanged until then.
func (c *chunkWriter) try(b []byte) (ok, done bool, err error) {
	if c.tcp == nil || !canTryWrite || len(c.pending) > 0 || len(b) == 0 {
		return false, false, nil
	}
	c.bufs = c.vector(b)
	n, err := tryWritev(c.tcp, c.bufs[:])
	if err != nil {
		return true, false, err
	}
	if n == len(c.bufs[0])+len(b)+len(crlf) {
		return true, true, nil
	}
	v := net.Buffers(c.bufs[:])
	for len(v) > 0 && n >= len(v[0]) {
		n -= len(v[0])
		v = v[1:]
	}
	if len(v) > 0 {
		v[0] = v[0][n:]
	}
	c.pending = v
	return true, false, nil
}

// flush writes what try left pending, waiting for the network.
func (c *chunkWriter) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	_, err := c.pending.WriteTo(c.conn) // consumes c.pending
	c.pending = nil
	return err
}

// end writes the last chunk: the end of the body.
func (c *chunkWriter) end() error {
	if err := c.flush(); err != nil {
		return err
	}
	_, err := c.conn.Write([]byte("0\r\n\r\n"))
	return err
}
