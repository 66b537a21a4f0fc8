package kvs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kvsgo/kvsgo/pkg/httpx"
)

// A PutMedia session writes its own HTTP/1.1 request on a connection it
// owns: the uploader's goroutine writes each chunk to the socket itself
// (one writev per chunk on TCP), with no pipe and no transport goroutine in
// between, and the response (status, then the acknowledgement stream) is
// read with net/http's parser. The connection follows the policy of every
// other connection (pkg/httpx: loopback guard, proxy, roots).

// netOf returns the connection policy of a session: cfg.Net, or one built
// from the HTTP client's *http.Transport (its dialer, proxy, roots and
// client certificates).
func netOf(cfg *PutMediaConfig) (*httpx.Client, error) {
	if cfg.Net != nil {
		return cfg.Net, nil
	}
	var t *http.Transport
	switch tr := cfg.HTTPClient.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport)
	case *http.Transport:
		t = tr
	default:
		return nil, fmt.Errorf("the HTTP client's transport is a %T: PutMedia needs an *http.Transport or PutMediaConfig.Net (it writes its request on a connection of its own)", cfg.HTTPClient.Transport)
	}
	o := httpx.Options{ConnectTimeout: cfg.ConnectTimeout, Proxy: t.Proxy, DialContext: t.DialContext}
	if o.Proxy == nil {
		o.Proxy = httpx.NoProxy
	}
	if tc := t.TLSClientConfig; tc != nil {
		o.RootCAs, o.Certificates, o.ServerName = tc.RootCAs, tc.Certificates, tc.ServerName
	}
	return httpx.New(o), nil
}

// dialPutMedia connects to req's host under n's policy: TLS (through a
// proxy's CONNECT tunnel when the policy has one for it) for an https
// endpoint, plain TCP for an http one.
func dialPutMedia(ctx context.Context, n *httpx.Client, req *http.Request) (net.Conn, error) {
	addr := hostPort(req.URL)
	if req.URL.Scheme == "https" {
		return n.DialTLS(ctx, "tcp", addr)
	}
	return n.Dial(ctx, "tcp", addr)
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
	var b bytes.Buffer
	b.WriteString(req.Method + " " + req.URL.RequestURI() + " HTTP/1.1\r\nHost: " + host + "\r\n")
	if err := req.Header.Write(&b); err != nil {
		return nil, err
	}
	b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	return b.Bytes(), nil
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
	vec     net.Buffers // the vector being written, over vecArr
	vecArr  [4][]byte
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
		// vec is a field over vecArr: WriteTo advances it, and a local
		// slice would escape to the heap at every chunk.
		c.vec = c.vecArr[:0]
		if head != nil {
			c.vec = append(c.vec, head)
		}
		if len(b) == 0 {
			c.vec = append(c.vec, c.bufs[0])
		} else {
			c.vec = append(c.vec, c.bufs[:]...)
		}
		_, err := c.vec.WriteTo(c.conn)
		clear(c.vecArr[:]) // no reference to the data after the write
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
