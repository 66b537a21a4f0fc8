package core

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/pkg/sink"
)

// A misbehaving data endpoint: each PutMedia connection follows the next
// mode of a script (then "good"). The control plane is just enough for
// Start. It stores, per fragment timecode, the frames of every fragment it
// received completely.
type badEndpoint struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	script []string
	frames map[uint64]int
	conns  int
}

func newBadEndpoint(t *testing.T, script ...string) *badEndpoint {
	b := &badEndpoint{t: t, script: script, frames: map[uint64]int{}}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *badEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/describeStream":
		json.NewEncoder(w).Encode(map[string]any{"StreamInfo": map[string]any{"StreamName": "bad", "Status": "ACTIVE",
			"StreamARN": "arn:aws:kinesisvideo:us-west-2:123456789012:stream/bad/1", "DataRetentionInHours": 2, "Version": "1"}})
	case "/getDataEndpoint":
		json.NewEncoder(w).Encode(map[string]any{"DataEndpoint": b.srv.URL})
	case "/putMedia":
		b.mu.Lock()
		mode := "good"
		if b.conns < len(b.script) {
			mode = b.script[b.conns]
		}
		b.conns++
		b.mu.Unlock()
		b.putMedia(w, r, mode)
	default:
		http.NotFound(w, r)
	}
}

func ack(w io.Writer, typ string, tc uint64) {
	fmt.Fprintf(w, `{"EventType":"%s","FragmentTimecode":%d,"FragmentNumber":"9134385233318150%05d"}`+"\n", typ, tc, tc%100000)
}

// putMedia reads the body as MKV; a fragment counts as stored when the next
// one starts, an end-of-fragment tag follows it, or the body ends cleanly.
func (b *badEndpoint) putMedia(w http.ResponseWriter, r *http.Request, mode string) {
	if mode == "html" {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>")
		return
	}
	// Read the first bytes before answering: Go's client sends the body
	// (Expect: 100-continue) only to a server that asks for it.
	body := bufio.NewReader(r.Body)
	if _, err := body.Peek(1); err != nil {
		return
	}
	rc := http.NewResponseController(w)
	rc.EnableFullDuplex()
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	send := func(f func()) { f(); rc.Flush() }
	rd := mkv.NewReader(body)
	var cur uint64
	frames, clusters := 0, 0
	stored := false
	store := func() {
		if clusters == 0 || stored || mode == "silent" {
			return
		}
		stored = true
		b.mu.Lock()
		b.frames[cur] = frames
		b.mu.Unlock()
		switch mode {
		case "reorder": // PERSISTED first, duplicates, and an ack for a fragment never sent
			send(func() {
				ack(w, "PERSISTED", cur)
				ack(w, "RECEIVED", cur)
				ack(w, "PERSISTED", cur)
				ack(w, "RECEIVED", 42)
			})
		default:
			send(func() { ack(w, "RECEIVED", cur); ack(w, "PERSISTED", cur) })
		}
	}
	for {
		ev, err := rd.NextEvent()
		if err != nil {
			if errors.Is(err, io.EOF) {
				store()
			}
			return
		}
		switch ev.Kind {
		case mkv.EventTags: // the end-of-fragment tag closes the fragment
			if frames > 0 {
				store()
			}
		case mkv.EventClusterStart:
			store()
			cur, frames, stored = ev.Timecode, 0, false
			clusters++
			switch {
			case mode == "silent":
			case mode == "malformed" && clusters == 2:
				send(func() { io.WriteString(w, `{"EventType":"BUFFERING","FragmentTimecode":"not a number"}`+"\n") })
			case mode == "truncated" && clusters == 2:
				// Half an ack, then the connection closes, as a failing
				// server's does. (panic(http.ErrAbortHandler) would not do:
				// net/http first reads up to 256 KiB more of the request
				// body, which at a camera's pace takes longer than the
				// client's staleness limit.)
				send(func() { io.WriteString(w, `{"EventType":"RECEIV`) })
				conn, _, err := rc.Hijack()
				if err != nil {
					b.t.Errorf("hijack: %v", err)
					panic(http.ErrAbortHandler)
				}
				conn.Close()
				return
			default:
				send(func() { ack(w, "BUFFERING", cur) })
			}
		case mkv.EventBlock:
			frames++
		}
	}
}

// Bad acknowledgement streams and answers: clear errors, reconnect, no
// frame lost, no panic.
func TestBadAckStreams(t *testing.T) {
	cpd, frames := scaled(t, 1)
	for _, c := range []struct {
		mode string
		lost string // what the connection-lost event says; "" = no reconnect
	}{
		{"malformed", "malformed PutMedia acknowledgement"},
		{"truncated", "closed in the middle of an acknowledgement"},
		{"reorder", ""},
		{"silent", "connection-staleness"},
		{"html", "502"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			b := newBadEndpoint(t, c.mode)
			ev := &events{}
			cfg := faultConfig(b.srv.URL, "bad", ev)
			cfg.ConnectionStaleness = 500 * time.Millisecond
			cfg.StopStreamTimeout = 3 * time.Second
			s := startSink(t, cfg, cpd)
			pacedPut(t, s, frames)
			if err := s.Finish(context.Background()); err != nil {
				t.Fatal(err)
			}
			total := 0
			b.mu.Lock()
			for _, n := range b.frames {
				total += n
			}
			b.mu.Unlock()
			if total != len(frames) {
				t.Fatalf("endpoint holds %d of %d frames", total, len(frames))
			}
			lost := ev.of(sink.EventConnectionLost)
			switch {
			case c.lost == "" && len(lost) != 0:
				t.Fatalf("reconnected: %v", lost[0].Message)
			case c.lost != "" && (len(lost) == 0 || !strings.Contains(lost[0].Message, c.lost)):
				t.Fatalf("connection-lost events %+v, want one saying %q", lost, c.lost)
			case c.mode == "html" && strings.Contains(lost[0].Message, "<"):
				t.Fatalf("HTML in the error: %s", lost[0].Message)
			}
			if len(lost) > 0 {
				t.Logf("%s", lost[0].Message)
			}
		})
	}
}
