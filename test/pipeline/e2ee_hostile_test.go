package pipeline

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/e2ee/mkvstream"
	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// decryptFile runs filesrc ! kvsdecrypt ! filesink and returns the result
// and the frames written.
func decryptFile(t *testing.T, keys map[string]string, stream, in string, props ...string) (result, [][]byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.mkv")
	r := launch(t, nil, 60*time.Second, "filesrc location="+in+" ! kvsdecrypt private-keys="+keys["alice"]+" device-keys="+keys["cam.pub"]+
		" stream-name="+stream+" "+strings.Join(props, " ")+" ! filesink location="+out)
	if _, err := os.Stat(out); err != nil {
		return r, nil
	}
	return r, framePayloads(t, out)
}

// rewrite rebuilds a GetMedia response event by event: each segment head
// through head (which may change it), then what extra returns, clusters and
// blocks as received.
func rewrite(t *testing.T, in []byte, head func(h *mkv.SegmentHeader), extra []byte) []byte {
	t.Helper()
	var out []byte
	r := mkv.NewReader(bytes.NewReader(in))
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			h := ev.Header
			head(h)
			mh := &mkv.Header{TimecodeScale: h.TimecodeScale, Title: h.Title, MuxingApp: h.MuxingApp, WritingApp: h.WritingApp, Tracks: h.Tracks}
			copy(mh.SegmentUID[:], h.SegmentUID)
			out = append(mkv.AppendHeader(out, mh), extra...)
		case mkv.EventTags:
			out = append(out, ev.TagsRaw...)
		case mkv.EventClusterStart:
			out = mkv.AppendClusterStart(out, ev.Timecode)
		case mkv.EventBlock:
			out = mkv.AppendSimpleBlock(out, ev.Block.Track, ev.Block.RelTimecode, ev.Block.Flags, ev.Block.Data)
		}
	}
}

// kvsdecrypt against storage that rewrites what kvssink stored: a segment
// head with another TimecodeScale or CodecPrivate gives no frame and an
// error saying the head was changed (every frame used to come out with
// its timestamps doubled); injected tags and unsigned head fields never
// reach the output; a head with its Tags first decrypts as any other.
func TestE2EEHostileStorageHeads(t *testing.T) {
	dir := t.TempDir()
	keys := keyFiles(t, dir)
	ep := startEndpoint(t)
	const stream = "e2ee-hostile"
	if r := launch(t, ep, 120*time.Second, "videotestsrc num-buffers=120 ! video/x-raw,width=160,height=120,framerate=30/1 ! x264enc key-int-max=30 ! h264parse ! "+
		kvssink(stream, "e2ee-recipients="+keys["alice.pub"], "e2ee-signing-key="+keys["cam"])); r.rc != 0 {
		t.Fatalf("streaming: %s", r.output)
	}
	orig, err := os.ReadFile(ep.getMedia(t, stream))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r, frames := decryptFile(t, keys, stream, write("orig.mkv", orig))
	if r.rc != 0 || len(frames) != 120 {
		t.Fatalf("untouched: exit %d, %d frames:\n%s", r.rc, len(frames), r.output)
	}
	for name, mod := range map[string]func(h *mkv.SegmentHeader){
		"scale": func(h *mkv.SegmentHeader) { h.TimecodeScale *= 2 },
		"cpd": func(h *mkv.SegmentHeader) {
			for i := range h.Tracks {
				if h.Tracks[i].CodecID != e2ee.KeyTrackCodecID {
					h.Tracks[i].CodecPrivate = append(bytes.Clone(h.Tracks[i].CodecPrivate), 0)
				}
			}
		},
	} {
		r, frames := decryptFile(t, keys, stream, write(name+".mkv", rewrite(t, orig, mod, nil)))
		if r.rc == 0 || len(frames) != 0 || !strings.Contains(r.output, "segment head differs") {
			t.Fatalf("%s: exit %d, %d frames:\n%s", name, r.rc, len(frames), r.output)
		}
	}
	injected := mkv.AppendTags(nil, []mkv.SimpleTag{{Name: "TITLE", Value: "injected-by-storage"}})
	tagged := rewrite(t, orig, func(h *mkv.SegmentHeader) { h.Title = "forged-title" }, injected)
	out := filepath.Join(dir, "tagged-out.mkv")
	r = launch(t, nil, 60*time.Second, "filesrc location="+write("tagged.mkv", tagged)+" ! kvsdecrypt private-keys="+keys["alice"]+" device-keys="+keys["cam.pub"]+
		" stream-name="+stream+" ! filesink location="+out)
	got, _ := os.ReadFile(out)
	if r.rc != 0 || len(framePayloads(t, out)) != 120 || bytes.Contains(got, []byte("injected-by-storage")) || bytes.Contains(got, []byte("forged-title")) ||
		!strings.Contains(r.output, "tags dropped") {
		t.Fatalf("injected tags: exit %d:\n%s", r.rc, r.output)
	}
	// Tags before Info and Tracks, as the service may send heads.
	tagsFirst := rewriteTagsFirst(t, orig)
	r, frames = decryptFile(t, keys, stream, write("tagsfirst.mkv", tagsFirst))
	if r.rc != 0 || len(frames) != 120 {
		t.Fatalf("tags first: exit %d, %d frames:\n%s", r.rc, len(frames), r.output)
	}
}

// rewriteTagsFirst puts a Tags element before every segment's Info.
func rewriteTagsFirst(t *testing.T, in []byte) []byte {
	t.Helper()
	r := mkv.NewReader(bytes.NewReader(in))
	var out []byte
	from := 0
	for {
		e, err := r.Next()
		if err == io.EOF {
			return append(out, in[from:]...)
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.ID == mkv.IDInfo {
			out = append(out, in[from:e.Offset]...)
			out = mkv.AppendTags(out, []mkv.SimpleTag{{Name: mkv.TagFragmentNumber, Value: "1"}})
			from = int(e.Offset)
		}
	}
}

// kvsdecrypt never outputs a frame twice: a stream of ten epochs with its
// first fragment appended again gives each frame once (it used to give the
// first fragment's 30 frames again), and with state-file a second run over
// the same footage outputs nothing.
func TestE2EEReplaysAcrossEpochsAndRuns(t *testing.T) {
	dir := t.TempDir()
	keys := keyFiles(t, dir)
	sk, err := e2ee.LoadSigningKey(keys["cam"])
	if err != nil {
		t.Fatal(err)
	}
	rs, err := e2ee.LoadRecipients(keys["alice.pub"])
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(0, 0)
	enc, err := e2ee.NewEncryptor(e2ee.EncryptorConfig{Stream: "cam-1", SigningKey: sk, Recipients: rs,
		Now: func() time.Time { now = now.Add(2 * time.Hour); return now }})
	if err != nil {
		t.Fatal(err)
	}
	var encd bytes.Buffer
	if err := mkvstream.Encrypt(&encd, bytes.NewReader(testenv.ReadFixture(t, "official-putmedia.mkv")), enc); err != nil {
		t.Fatal(err)
	}
	c := []byte{0x1f, 0x43, 0xb6, 0x75}
	b := encd.Bytes()
	first := bytes.Index(b, c)
	second := first + 4 + bytes.Index(b[first+4:], c)
	spliced := filepath.Join(dir, "spliced.mkv")
	os.WriteFile(spliced, append(bytes.Clone(b), b[:second]...), 0o644)
	r, frames := decryptFile(t, keys, "cam-1", spliced)
	if r.rc != 0 || len(frames) != 300 || !strings.Contains(r.output, "replayed") {
		t.Fatalf("spliced: exit %d, %d frames (want 300):\n%s", r.rc, len(frames), r.output)
	}
	plain := filepath.Join(dir, "enc.mkv")
	os.WriteFile(plain, b, 0o644)
	state := filepath.Join(dir, "state.json")
	r, frames = decryptFile(t, keys, "cam-1", plain, "state-file="+state)
	if r.rc != 0 || len(frames) != 300 {
		t.Fatalf("run 1: exit %d, %d frames:\n%s", r.rc, len(frames), r.output)
	}
	if st, err := e2ee.LoadStateFile(state); err != nil || st == nil || len(st.Epochs) == 0 {
		t.Fatalf("state file: %v %+v", err, st)
	}
	r, frames = decryptFile(t, keys, "cam-1", plain, "state-file="+state)
	if r.rc == 0 || len(frames) != 0 || !strings.Contains(r.output, "replayed") {
		t.Fatalf("run 2: exit %d, %d frames (want none):\n%s", r.rc, len(frames), r.output)
	}
}
