package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// keyFiles writes a device signing key and recipient keys (X25519 alice,
// X-Wing bob, X25519 eve who is never a recipient) into dir.
func keyFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	dev, err := e2ee.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	files["cam"] = filepath.Join(dir, "cam.key")
	if err := e2ee.WritePrivateKeyFile(files["cam"], dev.MarshalFile()); err != nil {
		t.Fatal(err)
	}
	files["cam.pub"] = filepath.Join(dir, "cam.pub")
	if err := e2ee.WritePublicKeyFile(files["cam.pub"], dev.Public().Entry()); err != nil {
		t.Fatal(err)
	}
	for name, kem := range map[string]e2ee.KEM{"alice": e2ee.KEMX25519, "bob": e2ee.KEMXWing, "eve": e2ee.KEMX25519} {
		k, err := e2ee.GenerateKey(kem)
		if err != nil {
			t.Fatal(err)
		}
		b, err := k.MarshalFile()
		if err != nil {
			t.Fatal(err)
		}
		files[name] = filepath.Join(dir, name+".key")
		files[name+".pub"] = filepath.Join(dir, name+".pub")
		if err := e2ee.WritePrivateKeyFile(files[name], b); err != nil {
			t.Fatal(err)
		}
		if err := e2ee.WritePublicKeyFile(files[name+".pub"], k.Public().Entry()); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// getMedia writes the GetMedia response of a whole stream to a file.
func (ep *endpoint) getMedia(t *testing.T, stream string) string {
	t.Helper()
	creds := aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""))
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: ep.url, Region: "us-west-2", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dep, err := ctl.GetDataEndpoint(ctx, stream, "GET_MEDIA")
	if err != nil {
		t.Fatal(err)
	}
	body, err := kvs.GetMedia(ctx, kvs.GetMediaConfig{Endpoint: dep, StreamName: stream, Region: "us-west-2", Credentials: creds, Start: kvs.StartSelector{Type: "EARLIEST"}})
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	path := filepath.Join(t.TempDir(), stream+".getmedia.mkv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, body); err != nil {
		t.Fatal(err)
	}
	return path
}

// framePayloads returns the block payloads of a Matroska file.
func framePayloads(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := mkv.NewReader(f)
	var out [][]byte
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == mkv.EventBlock {
			out = append(out, append([]byte(nil), ev.Block.Data...))
		}
	}
}

// A real pipeline streams encrypted H.264 into the endpoint: what the
// endpoint stores holds no frame of the input, GetMedia + kvsdecrypt gives
// frames that decode exactly like the input for both recipients, and a
// non-recipient gets an error that says so.
func TestE2EEPipeline(t *testing.T) {
	dir := t.TempDir()
	keys := keyFiles(t, dir)
	in := filepath.Join(dir, "in.mkv")
	if r := launch(t, nil, 60*time.Second, "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 ! h264parse ! matroskamux ! filesink location="+in); r.rc != 0 {
		t.Fatalf("making the input: %s", r.output)
	}
	ep := startEndpoint(t)
	const stream = "e2ee-pipeline"
	r := launch(t, ep, 120*time.Second, "-m filesrc location="+in+" ! matroskademux ! h264parse ! "+
		kvssink(stream, "e2ee-recipients="+keys["alice.pub"]+","+keys["bob.pub"], "e2ee-signing-key="+keys["cam"]))
	if r.rc != 0 {
		t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
	}
	// The epoch is announced with the recipients' ids and no secret.
	rs, err := e2ee.LoadRecipients(keys["alice.pub"] + "," + keys["bob.pub"])
	if err != nil {
		t.Fatal(err)
	}
	a, b := rs[0].ID(), rs[1].ID()
	if !strings.Contains(r.output, "kvs-e2ee-epoch") || !strings.Contains(r.output, fmt.Sprintf("%x", a[:])) || !strings.Contains(r.output, fmt.Sprintf("%x", b[:])) {
		t.Fatalf("no kvs-e2ee-epoch message naming both recipients:\n%s", r.output)
	}
	enc := ep.getMedia(t, stream)
	stored, err := os.ReadFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	plain := framePayloads(t, in)
	if len(plain) != 90 {
		t.Fatalf("input has %d frames", len(plain))
	}
	for i, p := range plain {
		for off := 0; off+16 <= len(p); off += 32 {
			if bytes.Contains(stored, p[off:off+16]) {
				t.Fatalf("bytes %d..%d of frame %d appear in clear in what the endpoint serves", off, off+16, i)
			}
		}
	}
	want := decodedHash(t, in, "avdec_h264", "v")
	for _, who := range []string{"alice", "bob"} {
		dec := filepath.Join(dir, who+".mkv")
		r := launch(t, nil, 60*time.Second, "filesrc location="+enc+" ! kvsdecrypt private-keys="+keys[who]+" device-keys="+keys["cam.pub"]+" stream-name="+stream+" ! filesink location="+dec)
		if r.rc != 0 || strings.Contains(r.output, "WARNING") {
			t.Fatalf("%s: kvsdecrypt exited %d:\n%s", who, r.rc, r.output)
		}
		if got := decodedHash(t, dec, "avdec_h264", "v"); got != want {
			t.Fatalf("%s: decrypted video decodes to %s, the input to %s", who, got, want)
		}
		if n := packets(t, dec, "v"); n != 90 {
			t.Fatalf("%s: %d packets after decryption, want 90", who, n)
		}
	}
	// Decrypting straight into the demuxer and decoder works too.
	r = launch(t, nil, 60*time.Second, "filesrc location="+enc+" ! kvsdecrypt private-keys="+keys["bob"]+" device-keys="+keys["cam.pub"]+" stream-name="+stream+
		" ! matroskademux ! h264parse ! avdec_h264 ! fakesink")
	if r.rc != 0 {
		t.Fatalf("kvsdecrypt ! matroskademux ! avdec_h264: %s", r.output)
	}
	r = launch(t, nil, 60*time.Second, "filesrc location="+enc+" ! kvsdecrypt private-keys="+keys["eve"]+" device-keys="+keys["cam.pub"]+" stream-name="+stream+" ! fakesink")
	if r.rc == 0 || !strings.Contains(r.output, "not a recipient") {
		t.Fatalf("a non-recipient: exit %d:\n%s", r.rc, r.output)
	}
}

// E2EE configured wrongly is an element error at start, never a plaintext
// stream.
func TestE2EEBadProperties(t *testing.T) {
	dir := t.TempDir()
	keys := keyFiles(t, dir)
	empty := filepath.Join(dir, "empty.pub")
	if err := os.WriteFile(empty, []byte("# nobody\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ep := startEndpoint(t)
	for _, c := range []struct{ name, props, want string }{
		{"no recipients", "e2ee-recipients=" + empty + " e2ee-signing-key=" + keys["cam"], "e2ee-recipients"},
		{"no signing key", "e2ee-recipients=" + keys["alice.pub"], "e2ee-signing-key"},
		{"relative times", "e2ee-recipients=" + keys["alice.pub"] + " e2ee-signing-key=" + keys["cam"] + " absolute-fragment-times=false", "absolute-fragment-times"},
		{"not a signing key", "e2ee-recipients=" + keys["alice.pub"] + " e2ee-signing-key=" + keys["alice"], "e2ee-signing-key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stream := "e2ee-bad-" + strings.ReplaceAll(c.name, " ", "-")
			r := launch(t, ep, 60*time.Second, "videotestsrc num-buffers=30 ! x264enc ! h264parse ! "+kvssink(stream, strings.Fields(c.props)...))
			if r.rc == 0 || !strings.Contains(r.output, "ERROR") || !strings.Contains(r.output, c.want) {
				t.Fatalf("exit %d, want an error naming %s:\n%s", r.rc, c.want, r.output)
			}
			if paths, _ := ep.srv.Captures(stream); len(paths) != 0 {
				t.Fatalf("%d PutMedia bodies sent", len(paths))
			}
		})
	}
}

// A stream whose cluster timecodes were all rewritten (bundles intact,
// every frame fails authentication) is a context mismatch: kvsdecrypt
// stops with an error that says so instead of warning frame by frame.
func TestE2EEContextMismatchIsAnError(t *testing.T) {
	dir := t.TempDir()
	keys := keyFiles(t, dir)
	ep := startEndpoint(t)
	const stream = "e2ee-mismatch"
	if r := launch(t, ep, 120*time.Second, "videotestsrc num-buffers=150 ! video/x-raw,width=160,height=120,framerate=30/1 ! x264enc key-int-max=30 ! h264parse ! "+
		kvssink(stream, "e2ee-recipients="+keys["alice.pub"], "e2ee-signing-key="+keys["cam"])); r.rc != 0 {
		t.Fatalf("streaming: %s", r.output)
	}
	f, err := os.Open(ep.getMedia(t, stream))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var shifted []byte
	r := mkv.NewReader(f)
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
			shifted = append(shifted, ev.Header.Raw...)
		case mkv.EventTags:
			shifted = append(shifted, ev.TagsRaw...)
		case mkv.EventClusterStart:
			shifted = mkv.AppendClusterStart(shifted, ev.Timecode+1) // one millisecond later
		case mkv.EventBlock:
			shifted = mkv.AppendSimpleBlock(shifted, ev.Block.Track, ev.Block.RelTimecode, ev.Block.Flags, ev.Block.Data)
		}
	}
	path := filepath.Join(dir, "shifted.mkv")
	if err := os.WriteFile(path, shifted, 0o644); err != nil {
		t.Fatal(err)
	}
	res := launch(t, nil, 60*time.Second, "filesrc location="+path+" ! kvsdecrypt private-keys="+keys["alice"]+" device-keys="+keys["cam.pub"]+" stream-name="+stream+" ! fakesink")
	if res.rc == 0 || !strings.Contains(res.output, "context mismatch") {
		t.Fatalf("exit %d, want an error naming a context mismatch:\n%s", res.rc, res.output)
	}
}
