package kvslocal

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
)

// checkServed asserts that GetMedia EARLIEST serves exactly the first n
// fragments of the fixture, each parsing, with the fixture's frames.
func checkServed(t *testing.T, url, stream string, fx *fixture, n int) {
	t.Helper()
	chunks, status := getMedia(t, url, stream, map[string]any{"StartSelectorType": "EARLIEST"})
	if status != 200 {
		t.Fatalf("GetMedia: status %d", status)
	}
	if len(chunks) != n {
		t.Fatalf("GetMedia served %d fragments, want %d", len(chunks), n)
	}
	for i, c := range chunks {
		if c.timecode != fx.timecodes[i] || len(c.blocks) != 30 {
			t.Fatalf("fragment %d: timecode %d with %d frames, want %d with 30", i, c.timecode, len(c.blocks), fx.timecodes[i])
		}
		for j, b := range c.blocks {
			if !bytes.Equal(b, fx.payloads[30*i+j]) {
				t.Fatalf("fragment %d frame %d differs from the fixture's", i, j)
			}
		}
	}
}

// countStored returns how many fragments the server stored for stream.
func countStored(t *testing.T, srv *Server, stream string) int {
	t.Helper()
	frags, err := srv.Fragments(stream)
	if err != nil {
		t.Fatal(err)
	}
	return len(frags)
}

// drain collects the acks (IDLE left out) until the response ends.
func drain(t *testing.T, s *putSession) []ackLine {
	t.Helper()
	var acks []ackLine
	for {
		a, ok := s.next(t, 20*time.Second)
		if !ok {
			return acks
		}
		acks = append(acks, a)
	}
}

// DropAfterBytes: the connection goes away in the middle of fragment 5.
// The five complete fragments are stored; the torn one is not, and no
// ERROR ack is sent.
func TestFaultDropAfterBytes(t *testing.T) {
	fx := loadFixture(t)
	srv, url := start(t, t.TempDir())
	createStream(t, url, "drop", 24)
	// Past the header of Cluster 5 (which completes fragment 4), inside
	// its first frames.
	drop := int64(fx.blocks[5*30+3])
	srv.SetFaults(Faults{DropAfterBytes: drop})
	s := startPut(t, url, putOptions{stream: "drop"})
	if resp := s.awaitStatus(t, fx.data[:1]); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	go writeChunked(s.w, fx.data[1:]) // fails once the connection is gone
	acks := drain(t, s)
	persisted := 0
	for _, a := range acks {
		switch a.EventType {
		case "ERROR":
			t.Fatalf("an ERROR ack on a dropped connection: %s", a.raw)
		case "PERSISTED":
			persisted++
		}
	}
	if got := countStored(t, srv, "drop"); got != 5 || persisted > 5 {
		t.Fatalf("%d fragments stored (%d PERSISTED acks seen), want 5", got, persisted)
	}
	checkServed(t, url, "drop", fx, 5)

	// Without the fault the next connection stores the rest.
	srv.SetFaults(Faults{})
	rest := body(fx, fx.data[fx.clusters[5]:])
	acks = putAll(t, url, putOptions{stream: "drop"}, rest, "", 0)
	if ackTypes(acks) != "BUFFERING RECEIVED PERSISTED BUFFERING RECEIVED PERSISTED BUFFERING RECEIVED PERSISTED BUFFERING RECEIVED PERSISTED BUFFERING RECEIVED PERSISTED" {
		t.Fatalf("after the drop: %s", ackTypes(acks))
	}
	checkServed(t, url, "drop", fx, 10)
}

// AckDelay: every ack is held back, none is lost.
func TestFaultAckDelay(t *testing.T) {
	fx := loadFixture(t)
	srv, url := start(t, t.TempDir())
	createStream(t, url, "slow", 24)
	const delay = 20 * time.Millisecond
	srv.SetFaults(Faults{AckDelay: delay})
	began := time.Now()
	putFixture(t, url, "slow", fx) // checks all 30 acks, in order
	if took := time.Since(began); took < 30*delay {
		t.Fatalf("30 acks delayed %v each took only %v", delay, took)
	}
	checkServed(t, url, "slow", fx, 10)
}

// ErrorAck: the chosen fragment is answered with an ERROR ack of the
// chosen ErrorId and not stored; the connection ends there.
func TestFaultErrorAck(t *testing.T) {
	fx := loadFixture(t)
	for _, c := range []struct {
		id, fragment int
		code         string
	}{
		{5001, 3, "FRAGMENT_ARCHIVAL_ERROR"},
		{4002, 0, "MAX_FRAGMENT_DURATION_REACHED"},
		{4999, 1, ""}, // an ErrorId the endpoint has no code for
	} {
		srv, url := start(t, t.TempDir())
		createStream(t, url, "err", 24)
		srv.SetFaults(Faults{ErrorAck: ErrorAck{ID: c.id, Fragment: c.fragment}})
		acks := putAll(t, url, putOptions{stream: "err"}, fx.data, "", 0)
		if len(acks) != 3*c.fragment+2 {
			t.Fatalf("ErrorAck %+v: acks %s", c, ackTypes(acks))
		}
		last, buf := acks[len(acks)-1], acks[len(acks)-2]
		if last.EventType != "ERROR" || last.ErrorId != c.id || last.ErrorCode != c.code || last.FragmentTimecode != fx.timecodes[c.fragment] ||
			buf.EventType != "BUFFERING" || last.FragmentNumber != buf.FragmentNumber {
			t.Fatalf("ErrorAck %+v: last acks %s then %s", c, buf.raw, last.raw)
		}
		if c.code != "" && !errorRE.MatchString(last.raw) {
			t.Errorf("ERROR ack shape: %s", last.raw)
		}
		if got := countStored(t, srv, "err"); got != c.fragment {
			t.Fatalf("ErrorAck %+v: %d fragments stored", c, got)
		}
		checkServed(t, url, "err", fx, c.fragment)
	}
}

// Refuse: the connection closes with no answer, for the control plane
// and PutMedia alike, and nothing is stored; clearing it restores service.
func TestFaultRefuse(t *testing.T) {
	fx := loadFixture(t)
	srv, url := start(t, t.TempDir())
	createStream(t, url, "refused", 24)
	srv.SetFaults(Faults{Refuse: true})
	c := client(url, testKey, testSecret)
	_, err := c.DescribeStream(context.Background(), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("refused")})
	if err == nil || code(err) != "" {
		t.Fatalf("DescribeStream on a refusing endpoint: %v (code %q)", err, code(err))
	}
	s := startPut(t, url, putOptions{stream: "refused"})
	go s.w.Write(fx.data[:1])
	select {
	case <-s.got:
		if s.err == nil {
			t.Fatalf("PutMedia answered %d by a refusing endpoint", s.resp.StatusCode)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("PutMedia neither answered nor failed")
	}
	resp, err := http.Get(url + "/")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a plain GET got status %d", resp.StatusCode)
	}
	if got := countStored(t, srv, "refused"); got != 0 {
		t.Fatalf("%d fragments stored", got)
	}
	srv.SetFaults(Faults{})
	if _, err := c.DescribeStream(context.Background(), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("refused")}); err != nil {
		t.Fatalf("after clearing Refuse: %v", err)
	}
}

// ClockSkew: the endpoint's clock runs ahead. A signature 10 minutes
// behind it has expired; within 5 minutes it verifies, and Date and the
// fragments' server timestamps carry the skewed time.
func TestFaultClockSkew(t *testing.T) {
	fx := loadFixture(t)
	srv, url := start(t, t.TempDir())
	createStream(t, url, "skew", 24)
	c := client(url, testKey, testSecret)

	srv.SetFaults(Faults{ClockSkew: 10 * time.Minute})
	_, err := c.DescribeStream(context.Background(), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("skew")})
	if code(err) != "InvalidSignatureException" {
		t.Fatalf("10 minutes of skew: %v", err)
	}

	const skew = 4 * time.Minute
	srv.SetFaults(Faults{ClockSkew: skew})
	resp := signedPost(t, url, "/describeStream", map[string]string{"StreamName": "skew"})
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("DescribeStream with 4 minutes of skew: %d, Date %q", resp.StatusCode, resp.Header.Get("Date"))
	}
	if d := date.Sub(time.Now()); d < skew-time.Minute || d > skew+time.Minute {
		t.Fatalf("Date is %v from now, want about %v", d, skew)
	}
	began := time.Now()
	putFixture(t, url, "skew", fx)
	frags, err := srv.Fragments("skew")
	if err != nil || len(frags) != 10 {
		t.Fatalf("%d fragments, %v", len(frags), err)
	}
	for i, f := range frags {
		if d := f.ServerTimestamp.Sub(began); d < skew-time.Second || d > skew+time.Minute {
			t.Fatalf("fragment %d: server timestamp %v after the upload began, want about %v", i, d, skew)
		}
	}
}
