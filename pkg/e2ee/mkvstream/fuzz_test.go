package mkvstream

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// smallPlain is a two-cluster stream of a few short frames.
func smallPlain() []byte {
	h := &mkv.Header{Tracks: []mkv.Track{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC", PixelWidth: 2, PixelHeight: 2}}}
	b := mkv.AppendHeader(nil, h)
	for c := uint64(0); c < 2; c++ {
		b = mkv.AppendClusterStart(b, 1000*c)
		for i := 0; i < 3; i++ {
			flags := byte(0)
			if i == 0 {
				flags = 0x80
			}
			b = mkv.AppendSimpleBlock(b, 1, int16(33*i), flags, []byte{byte(c), byte(i), 0xAA})
		}
	}
	return b
}

// FuzzDecrypt: arbitrary bytes never panic, and every failure is a reader
// error or one of the transform's errors.
func FuzzDecrypt(f *testing.F) {
	keys(f)
	enc := encrypt(f, smallPlain(), "cam-1", device)
	f.Add(enc)
	f.Add(enc[:len(enc)/2])
	f.Add(smallPlain())
	// The shapes the service sends, encrypted: Tags before Info and Tracks,
	// a stream served twice, an empty cluster, a segment of known size,
	// truncation inside a block.
	tagsFirst := func(b []byte) []byte {
		i := bytes.Index(b, []byte{0x15, 0x49, 0xa9, 0x66}) // Info
		return append(append(bytes.Clone(b[:i]), mkv.AppendTags(nil, []mkv.SimpleTag{{Name: "ENCODER", Value: "x"}})...), b[i:]...)
	}
	f.Add(tagsFirst(enc))
	f.Add(append(bytes.Clone(enc), enc...))
	f.Add(mkv.AppendClusterStart(bytes.Clone(enc), 0))
	known := bytes.Replace(enc, []byte{0x18, 0x53, 0x80, 0x67, 0xFF}, append([]byte{0x18, 0x53, 0x80, 0x67}, mkv.AppendSizeWidth(nil, int64(len(enc)-len(mkv.AppendEBMLHeader(nil))-5), 8)...), 1)
	f.Add(known)
	f.Add(enc[:len(enc)-3])
	f.Fuzz(func(t *testing.T, in []byte) {
		rep, err := Decrypt(io.Discard, bytes.NewReader(in), cfg("cam-1", alice), Options{})
		if rep == nil {
			t.Fatal("nil report")
		}
		if err == nil {
			if rep.Opened > rep.Frames {
				t.Fatalf("report %+v", rep)
			}
			return
		}
		var se *mkv.SyntaxError
		for _, want := range []error{ErrNotEncrypted, ErrContextMismatch, ErrNothingDecrypted, io.ErrUnexpectedEOF} {
			if errors.Is(err, want) {
				return
			}
		}
		if errors.As(err, &se) || errors.Is(err, e2ee.ErrMalformed) || errors.Is(err, mkv.ErrInvalidHeader) {
			return
		}
		t.Fatalf("unexpected error %v", err)
	})
}
