package sink

import (
	"slices"
	"time"
)

// latencySamples is how many of the latest frames the send latency
// percentiles cover.
const latencySamples = 1024

// latencyLog keeps the frame-to-socket latencies (a frame reaching the
// producer to its last byte written to the connection) of the latest
// frames, each counted on its first sending only.
type latencyLog struct {
	ring [latencySamples]time.Duration
	n    int
}

func (l *latencyLog) add(d time.Duration) {
	l.ring[l.n%latencySamples] = max(d, 0)
	l.n++
}

// percentiles returns the median and the 99th percentile (0, 0 before any
// frame was sent).
func (l *latencyLog) percentiles() (p50, p99 time.Duration) {
	n := min(l.n, latencySamples)
	if n == 0 {
		return 0, 0
	}
	s := slices.Clone(l.ring[:n])
	slices.Sort(s)
	return s[(n-1)/2], s[(n*99+99)/100-1]
}

// frameMark is where a frame's bytes end in its fragment, and when the
// frame reached the producer.
type frameMark struct {
	end int
	at  time.Time
}

// markLocked notes where the frame just added to e ends.
func (s *Sink) markLocked(e *entry, at time.Time) {
	if at.IsZero() || e.recovered {
		return
	}
	if e.marks == nil && len(s.spareMarks) > 0 {
		k := len(s.spareMarks) - 1
		e.marks, s.spareMarks = s.spareMarks[k], s.spareMarks[:k]
	}
	e.marks = append(e.marks, frameMark{end: len(e.frag.Data), at: at})
}

// spareMarksMax bounds the marks slices kept for the next fragments.
const spareMarksMax = 4

// writtenLocked records the latency of the frames of e whose last byte is
// now written (off bytes of e went out), on their first sending.
func (s *Sink) writtenLocked(e *entry, off int, now time.Time) {
	for e.marked < len(e.marks) && e.marks[e.marked].end <= off {
		s.latency.add(now.Sub(e.marks[e.marked].at))
		e.marked++
	}
	if e.marked == len(e.marks) && e.frag.Closed {
		// Every frame counted; replays are not. The slice serves a later
		// fragment.
		if cap(e.marks) > 0 && len(s.spareMarks) < spareMarksMax {
			s.spareMarks = append(s.spareMarks, e.marks[:0])
		}
		e.marks, e.marked = nil, 0
	}
}
