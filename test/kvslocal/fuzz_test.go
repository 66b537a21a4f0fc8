package kvslocal

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// fuzzNow is the fixed clock of the fuzzed servers, so that a seed signed
// for it stays valid.
var fuzzNow = time.Date(2026, 11, 23, 0, 8, 32, 0, time.UTC)

func fuzzServer(f *testing.F) *Server {
	cfg := testConfig(f.TempDir())
	cfg.CaptureBodies = false
	cfg.Now = func() time.Time { return fuzzNow }
	cfg.GetMediaIdleTimeout = 5 * time.Millisecond
	s, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// sdkSigned returns a request to path signed by the SDK signer at fuzzNow.
func sdkSigned(f testing.TB, path string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:4567"+path, bytes.NewReader(body))
	signJSON(f, r, body, aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, fuzzNow)
	return r
}

// The SigV4 verifier with fuzzed Authorization and X-Amz-Date headers on
// an otherwise well-formed request: it never panics, and whatever it
// accepts was signed with the one known key.
func FuzzSigV4Headers(f *testing.F) {
	s := fuzzServer(f)
	body := []byte(`{"StreamName":"cam"}`)
	good := sdkSigned(f, "/describeStream", body)
	f.Add(good.Header.Get("Authorization"), good.Header.Get("X-Amz-Date"))
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST/20261123/us-west-2/kinesisvideo/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", "20261123T000832Z")
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST/20261123/us-west-2/kinesisvideo/aws4_request, SignedHeaders=;;host;;;, Signature=x", "20261123T000832Z")
	f.Add("AWS4-HMAC-SHA256 Credential=////, SignedHeaders=host, Signature=x", "2")
	f.Add("AWS4-HMAC-SHA256", "")
	f.Add("AWS4-HMAC-SHA256 ,,,==,=", "20261123T000832Z")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, auth, date string) {
		r := sdkSigned(t, "/describeStream", body)
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", date)
		id, e := s.verify(r, body, false)
		if e == nil {
			if id.AccessKeyID != testKey {
				t.Fatalf("accepted as %q", id.AccessKeyID)
			}
			return
		}
		if e.status != http.StatusForbidden || e.code == "" || strings.Contains(e.msg, testSecret) {
			t.Fatalf("rejection %d %s: %s", e.status, e.code, e.msg)
		}
		// The streaming path (PutMedia) parses the same way.
		s.verify(r, nil, true)
	})
}

// controlPaths are the operations the control-plane fuzzer addresses.
func controlPaths() []string {
	paths := []string{"/getMedia", "/getMediaForFragmentList", "/listFragments", "/nope"}
	for p := range controlOps {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// Every JSON operation through ServeHTTP with fuzzed (validly signed)
// bodies: no panic, no 5xx, and every answer is either a 200 or an error
// in the restJson1 shape clients parse.
func FuzzControlPlaneBodies(f *testing.F) {
	s := fuzzServer(f)
	paths := controlPaths()
	seeds := []string{
		`{"StreamName":"cam","DataRetentionInHours":24,"MediaType":"video/h264","Tags":{"k":"v"}}`,
		`{"StreamName":"cam"}`,
		`{"StreamName":"cam","APIName":"PUT_MEDIA"}`,
		`{"MaxResults":10,"StreamNameCondition":{"ComparisonOperator":"BEGINS_WITH","ComparisonValue":"c"}}`,
		`{"StreamName":"cam","Tags":{"a":"b"}}`,
		`{"StreamName":"cam","TagKeyList":["a"]}`,
		`{"StreamName":"cam","CurrentVersion":"abcdefghijkl","Operation":"INCREASE_DATA_RETENTION","DataRetentionChangeInHours":24}`,
		`{"ResourceARN":"arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam/1","Tags":[{"Key":"a","Value":"b"}]}`,
		`{"StreamName":"cam","StartSelector":{"StartSelectorType":"EARLIEST"}}`,
		`{"StreamName":"cam","StartSelector":{"StartSelectorType":"PRODUCER_TIMESTAMP","StartTimestamp":1793491200.123}}`,
		`{"StreamName":"cam","MaxResults":100,"FragmentSelector":{"FragmentSelectorType":"SERVER_TIMESTAMP","TimestampRange":{"StartTimestamp":1793491200,"EndTimestamp":1793577600}}}`,
		`{"StreamName":"cam","Fragments":["9134385233318000000000000000000000000000000000001"]}`,
		`{"StreamName":"cam","DataRetentionInHours":-1}`,
		`{"StreamName":"cam","MaxResults":1e400}`,
		`[]`, `null`, ``, `{"StreamName":null}`,
	}
	for i, b := range seeds {
		for j := range paths {
			if (i+j)%3 == 0 || i < 2 {
				f.Add(uint8(j), []byte(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		path := paths[int(op)%len(paths)]
		w := httptest.NewRecorder()
		s.ServeHTTP(w, sdkSigned(t, path, body))
		if w.Code >= 500 {
			t.Fatalf("%s %q: status %d %s", path, body, w.Code, w.Body.Bytes())
		}
		if w.Code == http.StatusOK {
			return
		}
		code, _, _ := strings.Cut(w.Header().Get("x-amzn-ErrorType"), ":")
		var msg map[string]string
		if code == "" || json.Unmarshal(w.Body.Bytes(), &msg) != nil || msg["Message"] == "" {
			t.Fatalf("%s %q: status %d, error type %q, body %q", path, body, w.Code, code, w.Body.Bytes())
		}
	})
}

// fuzzBodies are PutMedia seeds cut from the official producer's body:
// its head, then two Clusters of three frames each, then the end tags.
func fuzzBodies(tb testing.TB) [][]byte {
	fx := loadFixture(tb)
	small := func(i, frames int) []byte { return fx.data[fx.clusters[i]:fx.blocks[30*i+frames]] }
	two := body(fx, small(0, 3), small(1, 3), fx.data[fx.eofr:])
	return [][]byte{
		two,
		body(fx, small(0, 1)),
		body(fx, small(0, 2), fx.data[fx.eofr:], small(1, 2)),
		two[:len(two)/2],
		fx.header(),
		nil,
		[]byte("not mkv at all"),
	}
}

// fuzzStreams numbers the streams the ingest fuzzer creates.
var fuzzStreams int

// Fuzzed PutMedia bodies through the ingest: no panic, and nothing is
// stored but whole fragments, each re-reading as one segment head and one
// Cluster with the frames the index records; every PERSISTED ack names a
// stored fragment.
func FuzzPutMediaIngest(f *testing.F) {
	s := fuzzServer(f)
	s.maxFragment = 1 << 20 // bounds what one input can make the endpoint write
	for _, b := range fuzzBodies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzStreams++
		name := "fuzz" + strings.Repeat("x", fuzzStreams%3) + time.Now().Format("150405.000000000")
		out, e := s.createStream([]byte(`{"StreamName":"` + name + `","DataRetentionInHours":1}`))
		if e != nil {
			t.Fatal(e)
		}
		defer s.deleteStream([]byte(`{"StreamARN":"` + out.(map[string]string)["StreamARN"] + `"}`))
		m, e := s.store.get(streamRef{StreamName: name})
		if e != nil {
			t.Fatal(e)
		}
		w := httptest.NewRecorder()
		rec := &recorder{src: bytes.NewReader(data), limit: int(s.maxFragment) + 2<<20}
		acks := &ackWriter{w: w, rc: http.NewResponseController(w), stop: make(chan struct{}), done: make(chan struct{})}
		close(acks.done)
		newIngest(s, putMediaParams{stream: m, acks: true}, rec, acks).run()

		frags, _ := s.store.fragments(name)
		stored := map[string]bool{}
		for _, fr := range frags {
			stored[fr.Number] = true
			checkStoredFragment(t, s, name, fr)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(w.Body.Bytes()), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var a ack
			if err := json.Unmarshal(line, &a); err != nil {
				t.Fatalf("unparsable ack %q", line)
			}
			if a.EventType == ackPersisted && !stored[a.FragmentNumber] {
				t.Fatalf("PERSISTED for fragment %s, which is not stored", a.FragmentNumber)
			}
		}
	})
}

// checkStoredFragment re-reads a stored fragment: one segment head, at
// most the producer's tags, one Cluster, the recorded number of frames,
// nothing else.
func checkStoredFragment(t *testing.T, s *Server, stream string, fr fragment) {
	t.Helper()
	file, err := s.openFragment(stream, fr) // the plaintext of a sealed fragment
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	b, err := io.ReadAll(file)
	if err != nil || int64(len(b)) != fr.Size {
		t.Fatalf("fragment %s: %d bytes, index says %d (%v)", fr.Number, len(b), fr.Size, err)
	}
	rd := mkv.NewReader(bytes.NewReader(b))
	var segs, clusters, frames int
	for {
		ev, err := rd.NextEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("fragment %s does not parse: %v", fr.Number, err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			segs++
		case mkv.EventClusterStart:
			clusters++
			if ev.Timecode != fr.Timecode {
				t.Fatalf("fragment %s: Cluster timecode %d, index says %d", fr.Number, ev.Timecode, fr.Timecode)
			}
		case mkv.EventBlock:
			frames++
		}
	}
	if segs != 1 || clusters != 1 || frames != fr.Frames || frames == 0 {
		t.Fatalf("fragment %s: %d segments, %d clusters, %d frames (index: %d)", fr.Number, segs, clusters, frames, fr.Frames)
	}
}
