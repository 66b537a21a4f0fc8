package mkvstream

import (
	"bytes"
	"io"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// BenchmarkDecrypt decrypts the encrypted official PutMedia fixture (300
// frames, 10 key bundles) with a fresh decryptor per run: the consumer's
// path, bundle unwrapping included.
func BenchmarkDecrypt(b *testing.B) {
	keys(b)
	enc := encrypt(b, testenv.ReadFixture(b, "official-putmedia.mkv"), "cam-1", device)
	c := cfg("cam-1", alice)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Decrypt(io.Discard, bytes.NewReader(enc), c, Options{Strict: true})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Opened != 300 {
			b.Fatalf("%d frames opened, want 300", rep.Opened)
		}
	}
}
