package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// The real service's GetMedia response becomes one segment that starts at 0
// and that mkvmerge and ffprobe read whole.
func TestJoinRealGetMedia(t *testing.T) {
	fx := testenv.ReadFixture(t, "kvs-getmedia-real.mkv")
	var out bytes.Buffer
	st, err := join(&out, bytes.NewReader(fx))
	if err != nil {
		t.Fatal(err)
	}
	if st.segments != 5 || st.clusters != 5 || st.blocks != 300 {
		t.Fatalf("stats %+v", st)
	}
	r := mkv.NewReader(bytes.NewReader(out.Bytes()))
	segs, first := 0, true
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
			segs++
		case mkv.EventClusterStart:
			if first && ev.Timecode != 0 {
				t.Fatalf("first cluster at %d, want 0", ev.Timecode)
			}
			first = false
		case mkv.EventTags:
			for _, tg := range ev.Tags {
				if strings.HasPrefix(tg.Name, "AWS_KINESISVIDEO_") {
					t.Fatalf("service tag %s kept", tg.Name)
				}
			}
		}
	}
	if segs != 1 {
		t.Fatalf("%d segments, want 1", segs)
	}
	path := filepath.Join(t.TempDir(), "joined.mkv")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	mkvmerge := testenv.Tool(t, "mkvmerge", "mkvtoolnix")
	if b, err := exec.Command(mkvmerge, "-q", "-o", filepath.Join(t.TempDir(), "r.mkv"), path).CombinedOutput(); err != nil {
		t.Fatalf("mkvmerge: %v\n%s", err, b)
	}
	ffprobe := testenv.Tool(t, "ffprobe", "ffmpeg")
	b, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil || strings.TrimSpace(string(b)) != "300" {
		t.Fatalf("ffprobe: %q %v", b, err)
	}
}

func TestJoinRejectsGarbage(t *testing.T) {
	if _, err := join(io.Discard, strings.NewReader("not matroska at all")); err == nil {
		t.Fatal("garbage accepted")
	}
}
