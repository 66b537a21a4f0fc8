package kvslocal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var (
	ackRE   = regexp.MustCompile(`^\{"EventType":"(BUFFERING|RECEIVED|PERSISTED)","FragmentTimecode":[0-9]+,"FragmentNumber":"[0-9]{47}"\}$`)
	errorRE = regexp.MustCompile(`^\{"EventType":"ERROR","FragmentTimecode":[0-9]+(,"FragmentNumber":"[0-9]{47}")?,"ErrorId":[0-9]+,"ErrorCode":"[A-Z_]+"\}$`)
)

// putFixture streams the official producer's body as producer-c does and
// checks the acks: BUFFERING, RECEIVED, PERSISTED for each of the 10
// fragments, in order, the last one on the END_OF_FRAGMENT tag while the
// body is still open. It returns the fragment numbers.
func putFixture(t *testing.T, url, stream string, fx *fixture) []string {
	t.Helper()
	s := startPut(t, url, putOptions{stream: stream})
	if resp := s.awaitStatus(t, fx.data[:1]); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("PutMedia status %d %v", resp.StatusCode, resp.Header)
	}
	written := make(chan error, 1)
	go func() { written <- writeChunked(s.w, fx.data[1:]) }()
	var numbers []string
	for i := range fx.clusters {
		var number string
		for _, typ := range []string{"BUFFERING", "RECEIVED", "PERSISTED"} {
			a, ok := s.next(t, 20*time.Second)
			if !ok {
				t.Fatalf("the ack stream ended before %s of fragment %d", typ, i)
			}
			if a.EventType != typ || a.FragmentTimecode != fx.timecodes[i] || !ackRE.MatchString(a.raw) {
				t.Fatalf("fragment %d: got %s, want %s with timecode %d", i, a.raw, typ, fx.timecodes[i])
			}
			if number == "" {
				number = a.FragmentNumber
			} else if a.FragmentNumber != number {
				t.Fatalf("fragment %d: %s acks fragment %s, BUFFERING said %s", i, typ, a.FragmentNumber, number)
			}
		}
		if len(numbers) > 0 && cmpNumbers(number, numbers[len(numbers)-1]) <= 0 {
			t.Fatalf("fragment numbers do not increase: %s after %s", number, numbers[len(numbers)-1])
		}
		numbers = append(numbers, number)
	}
	// The tenth PERSISTED came while the body is still open (the producer
	// waits for it before ending the body).
	if err := <-written; err != nil {
		t.Fatalf("writing the body: %v", err)
	}
	s.w.Close()
	if a, ok := s.next(t, 10*time.Second); ok {
		t.Fatalf("an ack after the last fragment: %s", a.raw)
	}
	return numbers
}

// (b) The official producer's PutMedia body, chunked and signed as
// producer-c sends it, then read back with GetMedia EARLIEST.
func TestOfficialPutMediaAndGetMedia(t *testing.T) {
	fx := loadFixture(t)
	srv, url := start(t, t.TempDir())
	createStream(t, url, "official", 24)
	numbers := putFixture(t, url, "official", fx)

	frags, err := srv.Fragments("official")
	if err != nil || len(frags) != 10 {
		t.Fatalf("%d fragments stored, %v", len(frags), err)
	}
	for i, f := range frags {
		if f.Number != numbers[i] || f.Timecode != fx.timecodes[i] || f.Frames != 30 || f.TimecodeScale != 1_000_000 ||
			!f.ProducerTimestamp.Equal(time.UnixMilli(int64(fx.timecodes[i]))) || f.ServerTimestamp.IsZero() || f.DurationMillis != 967 {
			t.Errorf("fragment %d: %+v", i, f)
		}
	}
	caps, err := srv.Captures("official")
	if err != nil || len(caps) != 1 {
		t.Fatalf("captures %v %v", caps, err)
	}
	if b, _ := os.ReadFile(caps[0]); !bytes.Equal(b, fx.data) {
		t.Fatal("the captured body differs from what was sent")
	}

	resp := signedPost(t, url, "/getMedia", map[string]any{"StreamName": "official", "StartSelector": map[string]string{"StartSelectorType": "EARLIEST"}})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/webm" {
		t.Fatalf("GetMedia: %d %v", resp.StatusCode, resp.Header)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	chunks := readChunks(t, bytes.NewReader(body))
	if len(chunks) != 10 {
		t.Fatalf("%d chunks, want 10", len(chunks))
	}
	var blocks [][]byte
	// The producer's segment head, with the Segment's size as the service
	// writes it for every chunk: 8 bytes, unknown.
	wantHead := bytes.Replace(fx.header(), []byte{0x18, 0x53, 0x80, 0x67, 0xFF}, []byte{0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 1)
	for i, c := range chunks {
		if !bytes.Equal(c.header.Raw, wantHead) {
			t.Errorf("chunk %d: the segment head is not the producer's", i)
		}
		want := []string{"AWS_KINESISVIDEO_FRAGMENT_NUMBER", "AWS_KINESISVIDEO_SERVER_TIMESTAMP", "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP", "Cluster",
			"AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", "AWS_KINESISVIDEO_CONTINUATION_TOKEN"}
		if fmt.Sprint(c.order) != fmt.Sprint(want) {
			t.Errorf("chunk %d layout %v, want %v", i, c.order, want)
		}
		ms := fx.timecodes[i]
		if c.tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] != numbers[i] || c.tags["AWS_KINESISVIDEO_CONTINUATION_TOKEN"] != numbers[i] ||
			c.tags["AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"] != fmt.Sprintf("%d.%03d", ms/1000, ms%1000) || c.timecode != ms || c.keys != 1 ||
			!regexp.MustCompile(`^[0-9]{10}\.[0-9]{3}$`).MatchString(c.tags["AWS_KINESISVIDEO_SERVER_TIMESTAMP"]) {
			t.Errorf("chunk %d: tags %v, timecode %d, %d key frames", i, c.tags, c.timecode, c.keys)
		}
		blocks = append(blocks, c.blocks...)
	}
	if len(blocks) != 300 {
		t.Fatalf("%d blocks, want 300", len(blocks))
	}
	for i := range blocks {
		if !bytes.Equal(blocks[i], fx.payloads[i]) {
			t.Fatalf("block %d differs from the fixture's", i)
		}
	}
	// Independent readers: ffprobe decodes every frame of the GetMedia
	// output, mkvinfo accepts a stored fragment.
	if ffprobe, err := exec.LookPath("ffprobe"); err == nil {
		path := filepath.Join(t.TempDir(), "getmedia.mkv")
		os.WriteFile(path, body, 0o644)
		out, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "compact", path).Output()
		if err != nil || !strings.Contains(string(out), "codec_name=h264|width=320|height=240|nb_read_frames=300") {
			t.Errorf("ffprobe: %v %s", err, out)
		}
	} else {
		t.Log("ffprobe not installed (Debian package ffmpeg): skipping the independent decode")
	}
	if mkvinfo, err := exec.LookPath("mkvinfo"); err == nil {
		// Stored sealed (kms.go): mkvinfo reads the plaintext.
		frags, _ := srv.store.fragments("official")
		plain, err := srv.openFragment("official", frags[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(plain)
		plain.Close()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), numbers[0]+".mkv")
		os.WriteFile(path, b, 0o644)
		out, err := exec.Command(mkvinfo, "-v", path).CombinedOutput()
		if err != nil || strings.Count(string(out), "Simple block") != 30 {
			t.Errorf("mkvinfo on a stored fragment: %v\n%s", err, out)
		}
	} else {
		t.Log("mkvinfo not installed (Debian package mkvtoolnix): skipping the fragment check")
	}
}

// body builds a PutMedia body from the fixture's header and clusters.
func body(fx *fixture, parts ...[]byte) []byte {
	return bytes.Join(append([][]byte{fx.header()}, parts...), nil)
}

// putAll sends b and returns every ack until the response ends, closing
// the body after close acks of type closeAfter (or at once when 0).
func putAll(t *testing.T, url string, o putOptions, b []byte, closeAfter string, n int) []ackLine {
	t.Helper()
	s := startPut(t, url, o)
	if resp := s.awaitStatus(t, b[:1]); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	go func() {
		writeChunked(s.w, b[1:])
		if closeAfter == "" {
			s.w.Close()
		}
	}()
	var acks []ackLine
	seen := 0
	for {
		a, ok := s.next(t, 20*time.Second)
		if !ok {
			return acks
		}
		acks = append(acks, a)
		if a.EventType == closeAfter {
			if seen++; seen == n {
				s.w.Close()
			}
		}
	}
}

func ackTypes(acks []ackLine) string {
	var s []string
	for _, a := range acks {
		x := a.EventType
		if a.ErrorId != 0 {
			x = fmt.Sprintf("%s/%d", x, a.ErrorId)
		}
		s = append(s, x)
	}
	return strings.Join(s, " ")
}

// The ERROR acks the service sends for bad input, each ending the response.
func TestPutMediaErrorAcks(t *testing.T) {
	fx := loadFixture(t)
	srv, url := start(t, t.TempDir())
	long := append([]byte(nil), fx.cluster(0)...)
	last := fx.blocks[29] - fx.clusters[0] + 1 + 8 + 1 // the last block's relative timecode
	binary.BigEndian.PutUint16(long[last:], 11000)
	c0, c1 := fx.cluster(0), fx.cluster(1)
	for i, c := range []struct {
		name  string
		body  []byte
		want  string
		tc    uint64
		count int // fragments stored
	}{
		{"not MKV", body(fx, []byte{0, 0, 0, 0, 0, 0, 0, 0}), "ERROR/4006", 0, 0},
		{"truncated", body(fx, c0[:len(c0)/2]), "BUFFERING ERROR/4006", fx.timecodes[0], 0},
		{"timecode not increasing", body(fx, c0, c0), "BUFFERING RECEIVED PERSISTED ERROR/4004", fx.timecodes[0], 1},
		{"timecode inside the previous fragment", body(fx, c0, withTimecode(c1, fx.timecodes[0]+967)), "BUFFERING RECEIVED PERSISTED ERROR/4004", fx.timecodes[0] + 967, 1},
		{"fragment longer than 10 s", body(fx, long), "BUFFERING ERROR/4002", fx.timecodes[0], 0},
		{"cluster before the header", c0, "ERROR/4006", fx.timecodes[0], 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			stream := fmt.Sprint("errors-", i)
			createStream(t, url, stream, 1)
			acks := putAll(t, url, putOptions{stream: stream}, c.body, "", 0)
			if got := ackTypes(acks); got != c.want {
				t.Fatalf("acks %q, want %q (%v)", got, c.want, acks)
			}
			e := acks[len(acks)-1]
			if !errorRE.MatchString(e.raw) || e.FragmentTimecode != c.tc {
				t.Fatalf("ERROR ack %s, want timecode %d", e.raw, c.tc)
			}
			if f, _ := srv.Fragments(stream); len(f) != c.count {
				t.Fatalf("%d fragments stored, want %d", len(f), c.count)
			}
		})
	}
}

// Acks the producer can ask for, or that the stream's settings decide.
func TestPutMediaAckVariants(t *testing.T) {
	fx := loadFixture(t)
	srv, url := start(t, t.TempDir())
	two := body(fx, fx.cluster(0), fx.cluster(1), fx.data[fx.eofr:])

	// No retention: RECEIVED but never PERSISTED.
	createStream(t, url, "noretention", 0)
	acks := putAll(t, url, putOptions{stream: "noretention"}, two, "RECEIVED", 2)
	if got := ackTypes(acks); got != "BUFFERING RECEIVED BUFFERING RECEIVED" {
		t.Errorf("retention 0: %s", got)
	}

	// Acks off: none at all, and the fragments are stored.
	createStream(t, url, "quiet", 1)
	if acks := putAll(t, url, putOptions{stream: "quiet", acks: "0"}, two, "", 0); len(acks) != 0 {
		t.Errorf("acks off: %s", ackTypes(acks))
	}
	if f, _ := srv.Fragments("quiet"); len(f) != 2 {
		t.Errorf("acks off: %d fragments stored", len(f))
	}

	// RELATIVE timecodes: the producer timestamp is the start plus the
	// cluster timecode; acks carry the timecode as sent.
	createStream(t, url, "relative", 1)
	rel := body(fx, withTimecode(fx.cluster(0), 0), withTimecode(fx.cluster(1), 1000), fx.data[fx.eofr:])
	acks = putAll(t, url, putOptions{stream: "relative", relative: true, start: "1700000000.250"}, rel, "PERSISTED", 2)
	if got := ackTypes(acks); got != "BUFFERING RECEIVED PERSISTED BUFFERING RECEIVED PERSISTED" || acks[3].FragmentTimecode != 1000 {
		t.Errorf("relative: %v", acks)
	}
	frags, _ := srv.Fragments("relative")
	if len(frags) != 2 || !frags[1].ProducerTimestamp.Equal(time.UnixMilli(1700000001250)) {
		t.Errorf("relative producer timestamps: %+v", frags)
	}

	// A body that ends without END_OF_FRAGMENT: the last fragment is
	// complete at the end of the body.
	createStream(t, url, "eof", 1)
	acks = putAll(t, url, putOptions{stream: "eof"}, body(fx, fx.cluster(0)), "", 0)
	if got := ackTypes(acks); got != "BUFFERING RECEIVED PERSISTED" {
		t.Errorf("end of body: %s", got)
	}
}

// IDLE acks flow while no data arrives.
func TestPutMediaIdleAcks(t *testing.T) {
	fx := loadFixture(t)
	cfg := testConfig(t.TempDir())
	cfg.IdleAckInterval = 100 * time.Millisecond
	_, url := startWith(t, cfg)
	createStream(t, url, "idle", 1)
	s := startPut(t, url, putOptions{stream: "idle"})
	s.awaitStatus(t, fx.header())
	select {
	case a := <-s.acks:
		if a.raw != `{"EventType":"IDLE"}` {
			t.Fatalf("first ack while idle: %s", a.raw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no IDLE ack")
	}
}

// One PutMedia per stream: the newest is throttled, as the service does.
func TestPutMediaConnectionLimit(t *testing.T) {
	fx := loadFixture(t)
	_, url := start(t, t.TempDir())
	createStream(t, url, "busy", 1)
	first := startPut(t, url, putOptions{stream: "busy"})
	first.awaitStatus(t, fx.header())
	second := startPut(t, url, putOptions{stream: "busy"})
	resp := second.awaitStatus(t, nil)
	if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("x-amzn-ErrorType"), "ConnectionLimitExceededException") {
		t.Fatalf("second PutMedia: %d %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}
	first.w.Close()
	for range first.acks {
	}
	third := startPut(t, url, putOptions{stream: "busy"})
	if resp := third.awaitStatus(t, fx.header()); resp.StatusCode != 200 {
		t.Fatalf("PutMedia after the first ended: %d", resp.StatusCode)
	}
}

// Requests the service refuses before reading the body.
func TestPutMediaRefused(t *testing.T) {
	_, url := start(t, t.TempDir())
	createStream(t, url, "cam", 1)
	for _, c := range []struct {
		name   string
		o      putOptions
		status int
		code   string
	}{
		{"missing stream", putOptions{stream: "missing"}, 404, "ResourceNotFoundException"},
		{"wrong secret", putOptions{stream: "cam", key: testKey, secret: "wrong"}, 403, "InvalidSignatureException"},
		{"unknown key", putOptions{stream: "cam", key: "AKIDNOPE", secret: testSecret}, 403, "UnrecognizedClientException"},
		{"bad start timestamp", putOptions{stream: "cam", start: "yesterday"}, 400, "InvalidArgumentException"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := startPut(t, url, c.o).awaitStatus(t, nil)
			if resp.StatusCode != c.status || !strings.HasPrefix(resp.Header.Get("x-amzn-ErrorType"), c.code+":") {
				t.Fatalf("%d %s; want %d %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), c.status, c.code)
			}
		})
	}
}

// The Java producer's signing: UNSIGNED-PAYLOAD, and x-amz-content-sha256
// added after signing. The SDK signer stands in for it.
func TestPutMediaUnsignedPayload(t *testing.T) {
	fx := loadFixture(t)
	_, url := start(t, t.TempDir())
	createStream(t, url, "java", 1)
	sign := func(r *http.Request) {
		r.Header.Del("Expect")
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret},
			r, "UNSIGNED-PAYLOAD", "kinesisvideo", testRegion, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	}
	acks := putAll(t, url, putOptions{stream: "java", sign: sign}, body(fx, fx.cluster(0), fx.data[fx.eofr:]), "PERSISTED", 1)
	if got := ackTypes(acks); got != "BUFFERING RECEIVED PERSISTED" {
		t.Fatalf("acks %s", got)
	}
}

// A producer cannot make the endpoint buffer an endless element: past a
// fragment's worth of bytes without a frame, the body is refused with 4001.
func TestPutMediaMemoryIsBounded(t *testing.T) {
	fx := loadFixture(t)
	srv, err := New(testConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	srv.maxFragment = 4 << 20 // instead of 50 MiB, to keep the test short
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	createStream(t, url, "huge", 1)
	c0 := fx.cluster(0)
	clusterHead := c0[:fx.blocks[0]-fx.clusters[0]]                      // Cluster, Timecode, Position
	void := []byte{0xEC, 0x01, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00} // Void of 256 MiB
	s := startPut(t, url, putOptions{stream: "huge"})
	s.awaitStatus(t, body(fx, clusterHead, void))
	go func() {
		zero := make([]byte, 1<<20)
		for i := 0; i < 16; i++ {
			if _, err := s.w.Write(zero); err != nil {
				return
			}
		}
	}()
	var got []string
	for {
		a, ok := s.next(t, 60*time.Second)
		if !ok {
			break
		}
		got = append(got, a.raw)
	}
	if len(got) != 2 || !strings.Contains(got[1], `"ErrorId":4001,"ErrorCode":"MAX_FRAGMENT_SIZE_REACHED"`) {
		t.Fatalf("acks %v", got)
	}
}
