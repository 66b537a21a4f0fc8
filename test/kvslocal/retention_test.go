package kvslocal

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// signedPostAt is signedPost signed at a given time (the server's clock),
// answering the status and the body.
func signedPostAt(t *testing.T, url, path string, body any, at time.Time) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp := signedPostBytes(t, url, path, b, at)
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// fragFiles lists the fragment files under dir.
func fragFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".frag") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// Fragments older than the stream's retention, by the server's clock, are
// no longer served and are deleted from disk; a stream with retention 0
// keeps nothing after RECEIVED.
func TestRetention(t *testing.T) {
	fx := loadFixture(t)
	clock := &fakeClock{t: time.Now()}
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Now = clock.Now
	cfg.CaptureBodies = false
	srv, url := startWith(t, cfg)
	createStream(t, url, "kept", 1)
	numbers := putFixture(t, url, "kept", fx)
	if n := len(fragFiles(t, dir)); n != 10 {
		t.Fatalf("%d fragment files, want 10", n)
	}
	list := func() []any {
		st, out := signedPostAt(t, url, "/listFragments", map[string]string{"StreamName": "kept"}, clock.Now())
		var r struct{ Fragments []any }
		if st != 200 || json.Unmarshal(out, &r) != nil {
			t.Fatalf("listFragments: %d %s", st, out)
		}
		return r.Fragments
	}
	clock.Add(59 * time.Minute)
	if n := len(list()); n != 10 {
		t.Fatalf("within retention: %d fragments listed, want 10", n)
	}
	clock.Add(2 * time.Minute)
	if n := len(list()); n != 0 {
		t.Fatalf("past retention: %d fragments listed, want 0", n)
	}
	if files := fragFiles(t, dir); len(files) != 0 {
		t.Fatalf("expired fragments still on disk: %v", files)
	}
	st, out := signedPostAt(t, url, "/getMedia", map[string]any{"StreamName": "kept", "StartSelector": map[string]string{"StartSelectorType": "EARLIEST"}}, clock.Now())
	if st != 200 || len(out) != 0 {
		t.Fatalf("GetMedia of an expired stream: %d, %d bytes", st, len(out))
	}
	st, out = signedPostAt(t, url, "/getMediaForFragmentList", map[string]any{"StreamName": "kept", "Fragments": numbers[:1]}, clock.Now())
	if st != 404 || !bytes.Contains(out, []byte("was not found")) {
		t.Fatalf("GetMediaForFragmentList of an expired fragment: %d %s", st, out)
	}
	if f, _ := srv.Fragments("kept"); len(f) != 0 {
		t.Fatalf("Fragments: %d", len(f))
	}
	// After a restart too (the index was rewritten).
	srv.Close()
	cfg.Now = time.Now
	srv2, _ := startWith(t, cfg)
	if f, _ := srv2.Fragments("kept"); len(f) != 0 {
		t.Fatalf("after a restart: %d fragments", len(f))
	}
}

func TestNoRetentionKeepsNothing(t *testing.T) {
	fx := loadFixture(t)
	dir := t.TempDir()
	srv, url := start(t, dir)
	createStream(t, url, "live", 0)
	acks := putAll(t, url, putOptions{stream: "live"}, body(fx, fx.cluster(0), fx.cluster(1), fx.data[fx.eofr:]), "RECEIVED", 2)
	if got := ackTypes(acks); got != "BUFFERING RECEIVED BUFFERING RECEIVED" {
		t.Fatalf("acks %s", got)
	}
	if f, _ := srv.Fragments("live"); len(f) != 0 {
		t.Fatalf("%d fragments kept with retention 0", len(f))
	}
	if files := fragFiles(t, filepath.Join(dir, "streams")); len(files) != 0 {
		t.Fatalf("fragment files with retention 0: %v", files)
	}
}
