package kvslocal

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/smithy-go"

	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/test/testenv"
)

const (
	testKey    = "AKIDLOCALTEST"
	testSecret = "local-test-secret"
	testRegion = "us-west-2"
)

func TestMain(m *testing.M) {
	testenv.GuardLoopback()
	os.Exit(m.Run())
}

// testConfig is the configuration tests start from: short idle periods so
// that GetMedia ends soon after the last fragment.
func testConfig(dir string) Config {
	return Config{Dir: dir, Credentials: []Credential{{AccessKeyID: testKey, SecretAccessKey: testSecret}},
		GetMediaIdleTimeout: 300 * time.Millisecond, CaptureBodies: true}
}

// startWith starts a server with cfg and closes it when the test ends.
func startWith(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url
}

func start(t *testing.T, dir string) (*Server, string) {
	t.Helper()
	return startWith(t, testConfig(dir))
}

// client is aws-sdk-go-v2's kinesisvideo client for the endpoint.
func client(url, key, secret string) *kinesisvideo.Client {
	return kinesisvideo.New(kinesisvideo.Options{
		Region: testRegion, BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
		Credentials: awscreds.NewStaticCredentialsProvider(key, secret, ""),
	})
}

// createStream creates a stream with the SDK.
func createStream(t *testing.T, url, name string, retentionHours int32) {
	t.Helper()
	_, err := client(url, testKey, testSecret).CreateStream(context.Background(), &kinesisvideo.CreateStreamInput{
		StreamName: aws.String(name), DataRetentionInHours: aws.Int32(retentionHours), MediaType: aws.String("video/h264")})
	if err != nil {
		t.Fatal(err)
	}
}

// code is the error code of an SDK error.
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// ---- the official producer's PutMedia body, taken apart ----

// fixture is official-putmedia.mkv with the offsets tests need.
type fixture struct {
	data      []byte
	headerLen int   // EBML header … Tracks
	clusters  []int // offsets of the 10 Clusters
	timecodes []uint64
	blocks    []int // offsets of the 300 SimpleBlocks
	payloads  [][]byte
	eofr      int // offset of the final Tags (AWS_KINESISVIDEO_END_OF_FRAGMENT)
}

func loadFixture(t testing.TB) *fixture {
	t.Helper()
	fx := &fixture{data: testenv.ReadFixture(t, "official-putmedia.mkv")}
	r := mkv.NewReader(bytes.NewReader(fx.data))
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			fx.headerLen = len(ev.Header.Raw)
		case mkv.EventClusterStart:
			fx.clusters = append(fx.clusters, int(ev.Offset))
			fx.timecodes = append(fx.timecodes, ev.Timecode)
		case mkv.EventBlock:
			fx.blocks = append(fx.blocks, int(ev.Offset))
			fx.payloads = append(fx.payloads, append([]byte(nil), ev.Block.Data...))
		case mkv.EventTags:
			fx.eofr = int(ev.Offset)
		}
	}
	if len(fx.clusters) != 10 || len(fx.payloads) != 300 || fx.eofr == 0 {
		t.Fatalf("fixture: %d clusters, %d blocks", len(fx.clusters), len(fx.payloads))
	}
	return fx
}

func (fx *fixture) header() []byte { return fx.data[:fx.headerLen] }

// cluster returns the bytes of cluster i.
func (fx *fixture) cluster(i int) []byte {
	end := fx.eofr
	if i+1 < len(fx.clusters) {
		end = fx.clusters[i+1]
	}
	return fx.data[fx.clusters[i]:end]
}

// withTimecode returns a copy of a cluster with its Timecode replaced (the
// producer writes it as 8 bytes right after the Cluster header).
func withTimecode(c []byte, tc uint64) []byte {
	c = append([]byte(nil), c...)
	if !bytes.HasPrefix(c, []byte{0x1F, 0x43, 0xB6, 0x75, 0xFF, 0xE7, 0x88}) {
		panic("unexpected cluster layout")
	}
	binary.BigEndian.PutUint64(c[7:], tc)
	return c
}

// ---- PutMedia as the official producer sends it ----

// producerSignedHeaders is the list producer-c signs for PutMedia.
var producerSignedHeaders = []string{"connection", "host", "transfer-encoding", "user-agent", "x-amz-date",
	"x-amzn-fragment-acknowledgment-required", "x-amzn-fragment-timecode-type", "x-amzn-producer-start-timestamp", "x-amzn-stream-name"}

// signProducerStyle signs r as producer-c's AwsV4Signer does, written from
// the SigV4 specification (the SDK signer never signs user-agent or
// transfer-encoding): the headers above, canonicalised, and the payload
// hashed as the empty string, with no x-amz-content-sha256 header.
func signProducerStyle(r *http.Request, key, secret string, now time.Time) {
	stamp := now.UTC().Format("20060102T150405Z")
	date := stamp[:8]
	r.Header.Set("X-Amz-Date", stamp)
	value := func(name string) string {
		switch name {
		case "host":
			return r.Host
		case "transfer-encoding":
			return strings.Join(r.TransferEncoding, ",")
		}
		return strings.Join(strings.Fields(r.Header.Get(name)), " ")
	}
	names := append([]string(nil), producerSignedHeaders...)
	sort.Strings(names)
	var canon strings.Builder
	for _, n := range names {
		fmt.Fprintf(&canon, "%s:%s\n", n, value(n))
	}
	signed := strings.Join(names, ";")
	empty := sha256.Sum256(nil)
	creq := strings.Join([]string{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, canon.String(), signed, hex.EncodeToString(empty[:])}, "\n")
	h := sha256.Sum256([]byte(creq))
	scope := date + "/" + testRegion + "/kinesisvideo/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + stamp + "\n" + scope + "\n" + hex.EncodeToString(h[:])
	mac := func(k []byte, s string) []byte { m := hmac.New(sha256.New, k); m.Write([]byte(s)); return m.Sum(nil) }
	k := mac(mac(mac(mac([]byte("AWS4"+secret), date), testRegion), "kinesisvideo"), "aws4_request")
	r.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		key, scope, signed, hex.EncodeToString(mac(k, sts))))
}

// ackLine is one acknowledgement as received, with its raw text.
type ackLine struct {
	EventType        string
	FragmentTimecode uint64
	FragmentNumber   string
	ErrorId          int
	ErrorCode        string
	raw              string
}

// putSession is a PutMedia request in flight: the test writes the body
// through w while acks arrive on acks.
type putSession struct {
	w    *io.PipeWriter
	got  chan struct{} // closed when resp or err is set
	resp *http.Response
	err  error
	acks chan ackLine // closed at the end of the response
}

// putOptions are the PutMedia request headers.
type putOptions struct {
	stream      string
	relative    bool
	start       string // x-amzn-producer-start-timestamp
	acks        string // x-amzn-fragment-acknowledgment-required
	key, secret string
	sign        func(r *http.Request) // default: signProducerStyle
}

// startPut sends a PutMedia request like the official producer (chunked,
// Expect: 100-continue, producer-c's signature). The status arrives once
// the server has read the first body bytes (see awaitStatus); for a 200 the
// acks are then read in the background. The body stays open until the test
// closes s.w.
func startPut(t *testing.T, url string, o putOptions) *putSession {
	t.Helper()
	if o.key == "" {
		o.key, o.secret = testKey, testSecret
	}
	if o.start == "" {
		o.start = "1795393128.941"
	}
	if o.acks == "" {
		o.acks = "1"
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, url+"/putMedia", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	req.Header.Set("Accept", "*/*")
	req.Header.Set("User-Agent", "AWS-SDK-KVS-CPP-CLIENT/3.6.0/1.6.2 GCC/12.2.0 Linux/6.x x86_64 CPPSDK")
	req.Header.Set("Connection", "keep-alive")
	req.Header.Set("Content-Type", "application/json") // sent, never signed, by producer-c
	req.Header.Set("Expect", "100-continue")
	req.Header.Set("x-amzn-stream-name", o.stream)
	req.Header.Set("x-amzn-producer-start-timestamp", o.start)
	req.Header.Set("x-amzn-fragment-acknowledgment-required", o.acks)
	tt := "ABSOLUTE"
	if o.relative {
		tt = "RELATIVE"
	}
	req.Header.Set("x-amzn-fragment-timecode-type", tt)
	if o.sign != nil {
		o.sign(req)
	} else {
		signProducerStyle(req, o.key, o.secret, time.Now())
	}
	// A producer reads the acknowledgements to the end even when the
	// service stopped reading its body (after an ERROR ack): net/http's
	// transport would instead close the connection at the body's write
	// error, losing acks still in flight. The connection hides write
	// errors from the transport, so the response is read to its end.
	hc := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 10 * time.Second, DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return writeErrorsHidden{c}, nil
		}}}
	s := &putSession{w: pw, got: make(chan struct{}), acks: make(chan ackLine, 1000)}
	go func() {
		defer close(s.acks)
		resp, err := hc.Do(req)
		s.resp, s.err = resp, err
		close(s.got)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var a ackLine
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				a.EventType = "UNPARSABLE"
			}
			a.raw = sc.Text()
			s.acks <- a
		}
	}()
	t.Cleanup(func() { pw.Close(); hc.CloseIdleConnections() })
	return s
}

// awaitStatus writes first (if any) and waits for the response status.
func (s *putSession) awaitStatus(t *testing.T, first []byte) *http.Response {
	t.Helper()
	if len(first) > 0 {
		go s.w.Write(first)
	}
	select {
	case <-s.got:
		if s.err != nil {
			t.Fatalf("PutMedia request: %v", s.err)
		}
		return s.resp
	case <-time.After(15 * time.Second):
		t.Fatal("no PutMedia response status within 15 s")
	}
	return nil
}

// next returns the next ack that is not IDLE, or fails after timeout.
func (s *putSession) next(t *testing.T, timeout time.Duration) (ackLine, bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case a, ok := <-s.acks:
			if !ok {
				return ackLine{}, false
			}
			if a.EventType == "IDLE" {
				continue
			}
			return a, true
		case <-deadline:
			t.Fatalf("no ack within %v", timeout)
		}
	}
}

// writeChunked writes b in the producer's 65,524-byte chunks.
func writeChunked(w io.Writer, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), 65524)
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// ---- GetMedia (there is no Go SDK for kinesis-video-media here) ----

// signJSON marks req as a JSON call and signs it for kinesisvideo with the
// SDK's v4 signer, as creds at time at.
func signJSON(tb testing.TB, req *http.Request, body []byte, creds aws.Credentials, at time.Time) {
	tb.Helper()
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kinesisvideo", testRegion, at); err != nil {
		tb.Fatal(err)
	}
}

// signedPostBytes sends body as it is in a JSON POST signed with the test
// key at time at. The response body is closed when the test ends.
func signedPostBytes(t *testing.T, url, path string, body []byte, at time.Time) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	signJSON(t, req, body, aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, at)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// signedPost sends body as JSON in a POST signed with the test key now.
func signedPost(t *testing.T, url, path string, body any) *http.Response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return signedPostBytes(t, url, path, b, time.Now())
}

// chunk is one GetMedia chunk as a consumer sees it.
type chunk struct {
	header   *mkv.SegmentHeader
	tags     map[string]string
	order    []string // tag names in order, with "Cluster" where the Cluster starts
	timecode uint64
	blocks   [][]byte
	keys     int
}

// readChunks parses a GetMedia or GetMediaForFragmentList body.
func readChunks(t *testing.T, r io.Reader) []*chunk {
	t.Helper()
	var out []*chunk
	rd := mkv.NewReader(r)
	for {
		ev, err := rd.NextEvent()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading the media after %d chunks: %v", len(out), err)
		}
		if ev.Kind == mkv.EventSegmentStart {
			out = append(out, &chunk{header: ev.Header, tags: map[string]string{}})
			continue
		}
		if len(out) == 0 {
			t.Fatalf("%v before any segment", ev.Kind)
		}
		c := out[len(out)-1]
		switch ev.Kind {
		case mkv.EventTags:
			for _, tg := range ev.Tags {
				c.tags[tg.Name] = tg.Value
				c.order = append(c.order, tg.Name)
			}
		case mkv.EventClusterStart:
			c.timecode = ev.Timecode
			c.order = append(c.order, "Cluster")
		case mkv.EventBlock:
			c.blocks = append(c.blocks, append([]byte(nil), ev.Block.Data...))
			if ev.Block.Keyframe {
				c.keys++
			}
		}
	}
}

// writeErrorsHidden is a connection whose writes never fail: what cannot
// be sent is dropped (see startPut).
type writeErrorsHidden struct{ net.Conn }

func (c writeErrorsHidden) Write(p []byte) (int, error) {
	c.Conn.Write(p)
	return len(p), nil
}
