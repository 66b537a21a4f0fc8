package main

import (
	"bytes"
	"errors"
	"fmt"
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

// tagsFirst moves every segment's Info and Tracks after a producer Tags
// element, as the service may send segment heads.
func tagsFirst(t *testing.T, body []byte) []byte {
	t.Helper()
	r := mkv.NewReader(bytes.NewReader(body))
	var out []byte
	from := 0
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.ID == mkv.IDInfo {
			out = append(out, body[from:e.Offset]...)
			out = mkv.AppendTags(out, []mkv.SimpleTag{{Name: "ENCODER", Value: "moved before Info"}})
			from = int(e.Offset)
		}
	}
	return append(out, body[from:]...)
}

// Segment heads whose Tags come before Info and Tracks are joined like any
// other (the reader used to end the head at the Tags, and the joiner then
// panicked on a header without tracks).
func TestJoinTagsBeforeTracks(t *testing.T) {
	in := tagsFirst(t, testenv.ReadFixture(t, "kvs-getmedia-real.mkv"))
	var out bytes.Buffer
	st, err := join(&out, bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if st.segments != 5 || st.clusters != 5 || st.blocks != 300 {
		t.Fatalf("stats %+v", st)
	}
	path := filepath.Join(t.TempDir(), "joined.mkv")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	mkvinfoHasNoKeyTrack(t, path)
}

// encrypt gives the key track a number of its own, whatever the order of
// the input's segment head (it used to give a tags-first head's key track
// number 1, the video's).
func TestEncryptTagsBeforeTracks(t *testing.T) {
	dir := t.TempDir()
	keys(t, dir)
	p := func(n string) string { return filepath.Join(dir, n) }
	in := p("tagsfirst.mkv")
	if err := os.WriteFile(in, tagsFirst(t, testenv.ReadFixture(t, "official-putmedia.mkv")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := encrypt([]string{"-stream", "cam-1", "-signing-key", p("cam"), "-recipients", p("alice.pub"), "-i", in, "-o", p("enc.mkv")}); err != nil {
		t.Fatal(err)
	}
	r := mkv.NewReader(bytes.NewReader(readFile(t, p("enc.mkv"))))
	for {
		ev, err := r.NextEvent()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind != mkv.EventSegmentStart {
			continue
		}
		seen := map[uint64]bool{}
		for _, tr := range ev.Header.Tracks {
			if seen[tr.Number] {
				t.Fatalf("track number %d used twice: %+v", tr.Number, ev.Header.Tracks)
			}
			seen[tr.Number] = true
		}
		if len(ev.Header.Tracks) != 2 || ev.Header.Tracks[1].CodecID != e2ee.KeyTrackCodecID {
			t.Fatalf("tracks %+v", ev.Header.Tracks)
		}
		break
	}
	var log bytes.Buffer
	if err := decrypt([]string{"-stream", "cam-1", "-device", p("cam.pub"), "-key", p("alice"), "-i", p("enc.mkv"), "-o", p("dec.mkv")}, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "300 of 300 frames decrypted") {
		t.Fatalf("log: %s", log.String())
	}
}

// A segment that declares no track is an error naming it, never a panic.
func TestJoinSegmentWithoutTracks(t *testing.T) {
	in := append(mkv.AppendEBMLHeader(nil), 0x18, 0x53, 0x80, 0x67, 0xFF)
	in = mkv.AppendClusterStart(in, 1000)
	in = mkv.AppendSimpleBlock(in, 1, 0, mkv.FlagKeyframe, []byte("x"))
	_, err := join(io.Discard, bytes.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), "fragment 1") || !strings.Contains(err.Error(), "no tracks") {
		t.Fatalf("join: %v", err)
	}
	dir := t.TempDir()
	keys(t, dir)
	path := filepath.Join(dir, "in.mkv")
	os.WriteFile(path, in, 0o644)
	err = encrypt([]string{"-stream", "cam-1", "-signing-key", filepath.Join(dir, "cam"), "-recipients", filepath.Join(dir, "alice.pub"), "-i", path, "-o", filepath.Join(dir, "enc.mkv")})
	if err == nil || !strings.Contains(err.Error(), "no tracks") {
		t.Fatalf("encrypt: %v", err)
	}
}

// encryptRotating writes the official fixture encrypted with a new epoch
// at every fragment (ten epochs) into path.
func encryptRotating(t *testing.T, dir, path string) []byte {
	t.Helper()
	sk, err := e2ee.LoadSigningKey(filepath.Join(dir, "cam"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(0, 0)
	enc, err := e2ee.NewEncryptor(e2ee.EncryptorConfig{Stream: "cam-1", SigningKey: sk, Recipients: []*e2ee.PublicKey{readPub(t, filepath.Join(dir, "alice.pub"))},
		Now: func() time.Time { now = now.Add(2 * time.Hour); return now }})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := mkvstream.Encrypt(&out, bytes.NewReader(testenv.ReadFixture(t, "official-putmedia.mkv")), enc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// The stream's first fragment appended after its tenth epoch is refused as
// a replay (it used to decrypt again: 330 frames for 300); with -state, a
// second run over the same footage outputs nothing.
func TestDecryptRefusesReplays(t *testing.T) {
	dir := t.TempDir()
	keys(t, dir)
	p := func(n string) string { return filepath.Join(dir, n) }
	encd := encryptRotating(t, dir, p("enc.mkv"))
	c := []byte{0x1f, 0x43, 0xb6, 0x75}
	first := bytes.Index(encd, c)
	second := first + 4 + bytes.Index(encd[first+4:], c)
	os.WriteFile(p("spliced.mkv"), append(bytes.Clone(encd), encd[:second]...), 0o644)
	args := []string{"-stream", "cam-1", "-device", p("cam.pub"), "-key", p("alice"), "-raw"}
	var log bytes.Buffer
	if err := decrypt(append(args, "-i", p("spliced.mkv"), "-o", p("out.mkv")), &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "300 of 330 frames decrypted") || !strings.Contains(log.String(), "replayed") {
		t.Fatalf("log: %s", log.String())
	}
	log.Reset()
	if err := decrypt(append(args, "-strict", "-i", p("spliced.mkv"), "-o", p("out.mkv")), &log); !errors.Is(err, e2ee.ErrReplay) {
		t.Fatalf("-strict: %v\n%s", err, log.String())
	}
	// -state: the first run writes it, the second refuses everything.
	for run := 1; run <= 2; run++ {
		log.Reset()
		err := decrypt(append(args, "-state", p("state.json"), "-i", p("enc.mkv"), "-o", p(fmt.Sprintf("run%d.mkv", run))), &log)
		switch {
		case run == 1 && (err != nil || !strings.Contains(log.String(), "300 of 300 frames decrypted")):
			t.Fatalf("run 1: %v\n%s", err, log.String())
		case run == 2 && (!errors.Is(err, e2ee.ErrReplay) || !strings.Contains(log.String(), "0 of 300 frames decrypted")):
			t.Fatalf("run 2: %v\n%s", err, log.String())
		}
	}
	noFile(t, p("run2.mkv"))
	if b := readFile(t, p("state.json")); bytes.Contains(b, []byte("private")) || !bytes.Contains(b, []byte(`"version":1`)) {
		t.Fatalf("state file %s", b)
	}
}

// patchUint rewrites, in place and in the same width, the payload of every
// unsigned-integer element id: what storage can do to a segment head.
func patchUint(t *testing.T, b []byte, id uint32, f func(uint64) uint64) []byte {
	t.Helper()
	out := bytes.Clone(b)
	r := mkv.NewReader(bytes.NewReader(b))
	n := 0
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.ID != id {
			continue
		}
		p := out[e.DataOffset() : e.DataOffset()+e.Size]
		v, _ := mkv.ParseUint(p)
		v = f(v)
		for i := len(p) - 1; i >= 0; i-- {
			p[i], v = byte(v), v>>8
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no element %s", mkv.ElementName(id))
	}
	return out
}

// Doubling the TimecodeScale of an encrypted stream in storage used to
// decrypt every frame with its timestamps doubled and no warning; now no
// frame is written and the error says the head was changed.
func TestDecryptRefusesRewrittenHead(t *testing.T) {
	dir := t.TempDir()
	keys(t, dir)
	p := func(n string) string { return filepath.Join(dir, n) }
	if err := encrypt([]string{"-stream", "cam-1", "-signing-key", p("cam"), "-recipients", p("alice.pub"),
		"-i", testenv.Fixture(t, "official-putmedia.mkv"), "-o", p("enc.mkv")}); err != nil {
		t.Fatal(err)
	}
	doubled := patchUint(t, readFile(t, p("enc.mkv")), mkv.IDTimecodeScale, func(v uint64) uint64 { return 2 * v })
	os.WriteFile(p("doubled.mkv"), doubled, 0o644)
	var log bytes.Buffer
	err := decrypt([]string{"-stream", "cam-1", "-device", p("cam.pub"), "-key", p("alice"), "-i", p("doubled.mkv"), "-o", p("out.mkv")}, &log)
	if !errors.Is(err, e2ee.ErrHeadMismatch) || !strings.Contains(err.Error(), "tampered") || !strings.Contains(log.String(), "0 of 300 frames decrypted") {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if _, err := os.Stat(p("out.mkv")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("an output file was left")
	}
}
