package mkv

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// GetMedia responses recorded from the service (testdata/README.md): the
// reader goes through each to its end without a panic, with the service's
// cluster timecodes as they are (equal and decreasing ones included) and a
// clear error where a recording stops inside a block.
func TestRecordedServiceShapes(t *testing.T) {
	for _, c := range []struct {
		file      string
		segments  int
		blocks    int
		timecodes []uint64
		truncated bool
	}{
		{"kvs-getmedia-equal-timecodes.mkv", 2, 239, []uint64{0, 0}, true},
		{"kvs-getmedia-decreasing-timecodes.mkv", 12, 358, []uint64{10014, 0, 1001, 2003, 3004, 4005, 5007, 6008, 7010, 8011, 9012, 10014}, true},
		{"kvs-getmedia-tags-empty-cluster.mkv", 1, 0, nil, false},
		{"kvs-getmedia-tags-only.mkv", 1, 0, nil, false},
	} {
		t.Run(c.file, func(t *testing.T) {
			r := NewReader(bytes.NewReader(testenv.ReadFixture(t, c.file)))
			var tcs []uint64
			segments, blocks := 0, 0
			var err error
			for {
				var ev Event
				if ev, err = r.NextEvent(); err != nil {
					break
				}
				switch ev.Kind {
				case EventSegmentStart:
					segments++
				case EventClusterStart:
					tcs = append(tcs, ev.Timecode)
				case EventBlock:
					blocks++
				}
			}
			if segments != c.segments || blocks != c.blocks || !slices.Equal(tcs, c.timecodes) {
				t.Errorf("%d segments, %d blocks, cluster timecodes %v; want %d, %d, %v", segments, blocks, tcs, c.segments, c.blocks, c.timecodes)
			}
			switch {
			case c.truncated && !errors.Is(err, io.ErrUnexpectedEOF):
				t.Errorf("a recording cut inside a block ends with %v, want unexpected EOF", err)
			case !c.truncated && err != io.EOF:
				t.Errorf("ends with %v, want EOF", err)
			}
		})
	}
}
