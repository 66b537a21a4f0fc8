package source

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/clock"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// getMediaBytes is a small GetMedia response: two fragments with the
// service's tags.
func getMediaBytes() []byte {
	var b []byte
	for i := 0; i < 2; i++ {
		b = mkv.AppendHeader(b, &mkv.Header{Tracks: []mkv.Track{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC", CodecPrivate: []byte{1, 2}, PixelWidth: 2, PixelHeight: 2}}})
		b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: mkv.TagFragmentNumber, Value: "1000" + string(rune('0'+i))},
			{Name: mkv.TagProducerTimestamp, Value: "1800000000.500"}})
		b = mkv.AppendClusterStart(b, uint64(1000*i))
		for k := 0; k < 3; k++ {
			b = mkv.AppendSimpleBlock(b, 1, int16(33*k), 0x80, []byte{byte(i), byte(k)})
		}
		b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: mkv.TagContinuationToken, Value: "1000" + string(rune('0'+i))}})
	}
	return b
}

// FuzzResponse: whatever a response holds, the fetcher and the joiner
// never panic, and what they emit is Matroska the reader takes.
func FuzzResponse(f *testing.F) {
	good := getMediaBytes()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(bytes.Replace(good, []byte("10001"), []byte("10000"), -1)) // the same fragment twice
	f.Add([]byte{0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &Source{cfg: Config{StreamName: "cam1", Clock: clock.Real{}, Logger: slog.New(slog.DiscardHandler), GapThreshold: DefaultGapThreshold}}
		var mid bytes.Buffer
		fe := &fetcher{s: s, w: &mid}
		fe.lastFrame.Store(time.Now().UnixNano())
		ferr := fe.consume(bytes.NewReader(in))
		var out bytes.Buffer
		j := &joiner{s: s, emit: func(b []byte) error { out.Write(b); return nil }}
		jerr := j.run(bytes.NewReader(mid.Bytes()))
		if jerr != nil && !errors.Is(jerr, ErrTracksChanged) && !strings.HasPrefix(jerr.Error(), "source:") {
			var se *mkv.SyntaxError
			if !errors.As(jerr, &se) && !errors.Is(jerr, io.ErrUnexpectedEOF) {
				t.Fatalf("joiner: unexpected error %v (fetcher: %v)", jerr, ferr)
			}
		}
		// The joined output is one segment a reader walks to its end.
		rd := mkv.NewReader(bytes.NewReader(out.Bytes()))
		segments := 0
		for {
			ev, err := rd.NextEvent()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("the output does not read back: %v", err)
			}
			if ev.Kind == mkv.EventSegmentStart {
				segments++
			}
		}
		if segments > 1 {
			t.Fatalf("%d segments in the output, want at most 1", segments)
		}
	})
}
