package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// keygen, encrypt and decrypt from the command line's point of view: the
// files they write, and a fixture that comes back identical to what join
// makes of the plain stream.
func TestKeygenEncryptDecrypt(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	for _, k := range []struct{ kind, file string }{{"x25519", "alice"}, {"xwing", "bob"}, {"ed25519", "cam"}} {
		var out bytes.Buffer
		if err := keygen([]string{"-kind", k.kind, "-o", p(k.file)}, &out); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(p(k.file)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v", k.file, err, fi.Mode().Perm())
		}
		pub, _ := os.ReadFile(p(k.file + ".pub"))
		if !strings.HasPrefix(string(pub), k.kind+":") || !strings.Contains(out.String(), strings.TrimSpace(string(pub))) {
			t.Fatalf("%s.pub = %q; stdout %q", k.file, pub, out.String())
		}
		if err := keygen([]string{"-kind", k.kind, "-o", p(k.file)}, io.Discard); err == nil {
			t.Fatalf("keygen overwrote %s", k.file)
		}
	}
	// -pub names the public file, as the demo does (camera.key, camera.pub).
	if err := keygen([]string{"-kind", "ed25519", "-o", p("camera.key"), "-pub", p("camera.pub")}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if pub, err := os.ReadFile(p("camera.pub")); err != nil || !strings.HasPrefix(string(pub), "ed25519:") {
		t.Fatalf("camera.pub: %q %v", pub, err)
	}
	in := testenv.Fixture(t, "kvs-getmedia-real.mkv")
	if err := encrypt([]string{"-stream", "cam-1", "-signing-key", p("cam"), "-recipients", p("alice.pub") + "," + p("bob.pub"),
		"-i", in, "-o", p("enc.mkv")}); err != nil {
		t.Fatal(err)
	}
	plain, _ := os.ReadFile(in)
	var want bytes.Buffer
	if _, err := join(&want, bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"alice", "bob"} {
		var log bytes.Buffer
		if err := decrypt([]string{"-stream", "cam-1", "-device", p("cam.pub"), "-key", p(key), "-i", p("enc.mkv"), "-o", p(key + ".mkv")}, &log); err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		got, _ := os.ReadFile(p(key + ".mkv"))
		// The joined header names another WritingApp, and decryption drops
		// the producer's tags (the camera does not sign them): compare
		// clusters and frames.
		if g, w := framesOf(t, got), framesOf(t, want.Bytes()); g != w {
			t.Fatalf("%s: decrypted file differs from the joined plain stream\n%s", key, log.String())
		}
		if !strings.Contains(log.String(), "tags dropped") {
			t.Errorf("log: %s", log.String())
		}
		if !strings.Contains(log.String(), "300 of 300 frames decrypted") {
			t.Errorf("log: %s", log.String())
		}
	}
	// A stream name other than the producer's decrypts nothing.
	var log bytes.Buffer
	if err := decrypt([]string{"-stream", "cam-2", "-device", p("cam.pub"), "-key", p("alice"), "-i", p("enc.mkv"), "-o", p("x.mkv")}, &log); err == nil ||
		!strings.Contains(log.String(), "another stream") {
		t.Fatalf("wrong stream: %v\n%s", err, log.String())
	}
}

// -kind is case-insensitive everywhere: X25519 makes an x25519 key pair,
// not the X-Wing one its other spellings share a branch with.
func TestKeygenKindCase(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		kind string
		kem  e2ee.KEM
	}{{"X25519", e2ee.KEMX25519}, {"XWing", e2ee.KEMXWing}} {
		path := filepath.Join(dir, c.kind)
		if err := keygen([]string{"-kind", c.kind, "-o", path}, io.Discard); err != nil {
			t.Fatal(err)
		}
		k, err := e2ee.LoadPrivateKey(path)
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := os.ReadFile(path + ".pub")
		if kind, _, _ := strings.Cut(string(pub), ":"); k.KEM() != c.kem || kind != strings.ToLower(c.kind) {
			t.Fatalf("-kind %s wrote a %v key, public entry %q...", c.kind, k.KEM(), kind)
		}
	}
}

// framesOf lists a file's segment heads (as the decrypted output keeps
// them), cluster timecodes and frames, for comparing files.
func framesOf(t *testing.T, b []byte) string {
	t.Helper()
	var out strings.Builder
	r := mkv.NewReader(bytes.NewReader(b))
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			return out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			h := ev.Header
			fmt.Fprintf(&out, "segment scale=%d", h.TimecodeScale)
			for _, tr := range h.Tracks {
				fmt.Fprintf(&out, " track %d %s %x %dx%d", tr.Number, tr.CodecID, tr.CodecPrivate, tr.PixelWidth, tr.PixelHeight)
			}
			out.WriteString("\n")
		case mkv.EventClusterStart:
			fmt.Fprintf(&out, "cluster %d\n", ev.Timecode)
		case mkv.EventBlock:
			fmt.Fprintf(&out, "block %d %d %v %x\n", ev.Block.Track, ev.Block.RelTimecode, ev.Block.Keyframe, sha256.Sum256(ev.Block.Data))
		}
	}
}
