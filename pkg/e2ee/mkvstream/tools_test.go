package mkvstream

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// TestFFprobe: an independent demuxer sees the encrypted file as the h264
// track (ciphertext packets) plus one key-track packet per fragment, and
// decodes every frame of the decrypted file.
func TestFFprobe(t *testing.T) {
	ffprobe := testenv.Tool(t, "ffprobe", "ffmpeg")
	keys(t)
	plain := testenv.ReadFixture(t, "official-putmedia.mkv")
	dir := t.TempDir()
	encPath, decPath := filepath.Join(dir, "enc.mkv"), filepath.Join(dir, "dec.mkv")
	enc := encrypt(t, plain, "cam-1", device)
	os.WriteFile(encPath, enc, 0o644)
	var dec bytes.Buffer
	if _, err := Decrypt(&dec, bytes.NewReader(enc), cfg("cam-1", alice), Options{Strict: true}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(decPath, dec.Bytes(), 0o644)
	probe := func(args ...string) string {
		out, err := exec.Command(ffprobe, append([]string{"-v", "quiet", "-of", "compact"}, args...)...).Output()
		if err != nil {
			t.Fatalf("ffprobe %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	got := probe("-count_packets", "-show_entries", "stream=codec_name,codec_type,nb_read_packets", encPath)
	if want := "stream|codec_name=h264|codec_type=video|nb_read_packets=300\nstream|codec_name=unknown|codec_type=subtitle|nb_read_packets=10"; got != want {
		t.Errorf("encrypted file:\n%s\nwant\n%s", got, want)
	}
	got = probe("-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", decPath)
	if want := "stream|codec_name=h264|nb_read_frames=300"; got != want {
		t.Errorf("decrypted file: %s, want %s", got, want)
	}
}
