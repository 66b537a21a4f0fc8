package mkv

import (
	"bytes"
	"io"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// The reader's hot path, on the recorded fixtures: events (what the
// consumer tools read) and the element layer alone.

func benchmarkEvents(b *testing.B, name string) {
	fx := testenv.ReadFixture(b, name)
	b.SetBytes(int64(len(fx)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(fx))
		for {
			if _, err := r.NextEvent(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}

func BenchmarkReadEventsPutMedia(b *testing.B) { benchmarkEvents(b, "official-putmedia.mkv") }
func BenchmarkReadEventsGetMedia(b *testing.B) { benchmarkEvents(b, "kvs-getmedia-real.mkv") }

func BenchmarkReadElements(b *testing.B) {
	fx := testenv.ReadFixture(b, "official-putmedia.mkv")
	b.SetBytes(int64(len(fx)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(fx))
		for {
			e, err := r.Next()
			if err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			if e.ID == IDSimpleBlock {
				if _, err := r.ReadData(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}
