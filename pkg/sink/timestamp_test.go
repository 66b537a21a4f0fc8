package sink

import (
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/clock"
)

// How buffer timestamps map to the stream's time base, per property.
func TestTimestamps(t *testing.T) {
	wall := time.Unix(1_800_000_000, 0)
	fileStart := time.Unix(1_700_000_000, 0)
	sec := time.Second
	cases := []struct {
		name string
		mod  func(*Config)
		in   []time.Duration // buffer PTS of three frames
		want []time.Duration // stream times
	}{
		{"realtime: rebased on the wall clock at the first frame", nil,
			[]time.Duration{100 * sec, 101 * sec, 102 * sec},
			[]time.Duration{time.Duration(wall.UnixNano()), time.Duration(wall.UnixNano()) + sec, time.Duration(wall.UnixNano()) + 2*sec}},
		{"relative fragment times", func(c *Config) { c.AbsoluteFragmentTimes = false },
			[]time.Duration{100 * sec, 101 * sec, 102 * sec}, []time.Duration{0, sec, 2 * sec}},
		{"use-original-pts: epoch nanoseconds as they are", func(c *Config) { c.UseOriginalPTS = true },
			[]time.Duration{1_750_000_000 * sec, 1_750_000_001 * sec, 1_750_000_002 * sec},
			[]time.Duration{1_750_000_000 * sec, 1_750_000_001 * sec, 1_750_000_002 * sec}},
		{"offline: from file-start-time", func(c *Config) { c.StreamingType = Offline; c.FileStartTime = fileStart },
			[]time.Duration{3600 * sec, 3601 * sec, 3602 * sec},
			[]time.Duration{time.Duration(fileStart.UnixNano()), time.Duration(fileStart.UnixNano()) + sec, time.Duration(fileStart.UnixNano()) + 2*sec}},
		{"frame-timecodes=false: the wall clock on arrival", func(c *Config) { c.FrameTimecodes = false },
			[]time.Duration{5 * sec, 0, 99 * sec},
			[]time.Duration{time.Duration(wall.UnixNano()), time.Duration(wall.UnixNano()), time.Duration(wall.UnixNano())}},
		{"no timestamps at all: spaced by the framerate", nil,
			[]time.Duration{NoTime, NoTime, NoTime},
			[]time.Duration{time.Duration(wall.UnixNano()), time.Duration(wall.UnixNano()) + 40*time.Millisecond, time.Duration(wall.UnixNano()) + 80*time.Millisecond}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{AbsoluteFragmentTimes: true, FrameTimecodes: true, Clock: clock.NewFake(wall)}
			if c.mod != nil {
				c.mod(&cfg)
			}
			s := &Sink{cfg: cfg.withDefaults(), track: &track{frameDuration: 40 * time.Millisecond}}
			for i, pts := range c.in {
				got, err := s.timestampLocked(Frame{PTS: pts, DTS: NoTime, Duration: NoTime}, s.track)
				if err != nil {
					t.Fatal(err)
				}
				if got != c.want[i] {
					t.Fatalf("frame %d: %v, want %v", i, got, c.want[i])
				}
			}
		})
	}
}
