package kvslocal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
)

// (c) Streams and fragments survive Close and New on the same directory,
// fragment numbers keep increasing, and what a crash can leave behind (a
// temporary file, a fragment never indexed, a torn index line) is cleaned
// up.
func TestDurableAcrossRestart(t *testing.T) {
	fx := loadFixture(t)
	dir := t.TempDir()
	s, url := start(t, dir)
	createStream(t, url, "keep", 24)
	numbers := putFixture(t, url, "keep", fx)
	before := readAll(t, url, "keep")
	m, _ := s.store.get(streamRef{StreamName: "keep"})
	sdir := s.store.streamDir(&m)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// What a crash mid-write leaves.
	os.WriteFile(filepath.Join(sdir, "9999.frag.tmp"), []byte("partial"), 0o644)
	os.WriteFile(filepath.Join(sdir, "9999.frag"), []byte("never indexed"), 0o644)
	idx, _ := os.OpenFile(filepath.Join(sdir, "index.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	idx.WriteString(`{"number":"9134385`)
	idx.Close()

	s2, url2 := start(t, dir)
	d, err := client(url2, testKey, testSecret).DescribeStream(context.Background(), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("keep")})
	if err != nil || aws.ToString(d.StreamInfo.StreamARN) != m.ARN || aws.ToString(d.StreamInfo.Version) != m.Version {
		t.Fatalf("after restart: %v %v", d, err)
	}
	frags, err := s2.Fragments("keep")
	if err != nil || len(frags) != 10 || frags[9].Number != numbers[9] {
		t.Fatalf("fragments after restart: %d %v", len(frags), err)
	}
	for _, name := range []string{"9999.frag.tmp", "9999.frag"} {
		if _, err := os.Stat(filepath.Join(sdir, name)); !os.IsNotExist(err) {
			t.Errorf("%s survived the restart", name)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(sdir, "index.jsonl")); !bytes.HasSuffix(b, []byte("}\n")) {
		t.Error("the torn index line was not cut off")
	}
	after := readAll(t, url2, "keep")
	if a, b := summarizeChunks(t, before), summarizeChunks(t, after); a != b {
		t.Errorf("GetMedia returns other media after the restart:\n%s\n%s", a, b)
	}
	// New fragments get higher numbers than any before the restart.
	createStream(t, url2, "more", 24)
	more := putFixture(t, url2, "more", fx)
	if cmpNumbers(more[0], numbers[9]) <= 0 {
		t.Fatalf("fragment number %s after a restart is not above %s", more[0], numbers[9])
	}
	// Deleting a stream deletes its fragments.
	if _, err := client(url2, testKey, testSecret).DeleteStream(context.Background(), &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(m.ARN)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sdir); !os.IsNotExist(err) {
		t.Error("the deleted stream's fragments are still on disk")
	}
}

func readAll(t *testing.T, url, stream string) []byte {
	t.Helper()
	resp := signedPost(t, url, "/getMedia", map[string]any{"StreamName": stream, "StartSelector": map[string]string{"StartSelectorType": "EARLIEST"}})
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GetMedia: %d %v", resp.StatusCode, err)
	}
	return b
}

// summarizeChunks renders GetMedia output without what depends on when it
// ran (AWS_KINESISVIDEO_MILLIS_BEHIND_NOW), hashing the media.
func summarizeChunks(t *testing.T, b []byte) string {
	t.Helper()
	var out strings.Builder
	for _, c := range readChunks(t, bytes.NewReader(b)) {
		h := sha256.New()
		h.Write(c.header.Raw)
		for _, blk := range c.blocks {
			h.Write(blk)
		}
		delete(c.tags, "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW")
		fmt.Fprintf(&out, "%v %d %x\n", c.tags, c.timecode, h.Sum(nil))
	}
	return out.String()
}
