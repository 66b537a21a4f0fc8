package fragment

import (
	"fmt"
	"time"
)

// Interleaver merges the frames of several tracks (an audio and a video
// pad) into one sequence ordered by time, as the service needs them: a
// fragment's frames are read in order, a new fragment's timecode must be
// greater than every frame timecode before it (4004), and every fragment
// must hold frames of each declared track (4011).
//
// Frames are ordered by their order key (the decode time: DTS when known,
// else PTS) in timecode units, ties broken by the order the tracks were
// declared (video first, so that a video key frame opens its fragment
// before an audio frame of the same millisecond), then by arrival.
//
// A frame leaves only when every live track has a frame queued (so no
// earlier frame can still arrive) or has ended. A live track that has
// delivered nothing for StallAfter of wall time (given by the caller, so
// that a source faster than real time is not mistaken for a stall) while
// another has frames waiting is stalled: the others go on without it
// (Stalled reports it once) until its next frame. Frames queued are
// copies; the caller bounds how far one track may run ahead (Ahead).
//
// It does no I/O and is not safe for concurrent use.
type Interleaver struct {
	scale      time.Duration
	stallAfter time.Duration
	lanes      []*lane
	out        time.Duration // order key of the last frame out
	anyOut     bool
	anyIn      bool
}

// Queued is one frame waiting in the interleaver.
type Queued struct {
	Frame Frame
	Order time.Duration
}

type laneState int

const (
	laneLive laneState = iota
	laneStalled
	laneEnded
)

type lane struct {
	track uint64
	q     []Queued
	head  int
	state laneState
	last  time.Duration // order key of the last frame pushed
	seen  bool
	since time.Time // wall time of its last frame (or of the first frame of any track, or of Touch)
	// stallNoted: the stall was reported by Stalled.
	stallNoted bool
}

// Errors from Push.
var (
	// ErrOrder is a frame whose order key is before its track's previous one.
	ErrOrder = fmt.Errorf("fragment: timestamp goes back on its track")
	// ErrLate is a frame of a stalled track that resumed behind frames
	// already out.
	ErrLate = fmt.Errorf("fragment: frame arrived after later frames of the other tracks were sent")
)

// NewInterleaver orders frames of the given tracks (in tie-break order).
// stallAfter is the stream time after which a silent track is stalled; it
// must be positive.
func NewInterleaver(scale, stallAfter time.Duration, tracks ...uint64) *Interleaver {
	if scale <= 0 {
		scale = time.Millisecond
	}
	iv := &Interleaver{scale: scale, stallAfter: stallAfter}
	for _, t := range tracks {
		iv.lanes = append(iv.lanes, &lane{track: t})
	}
	return iv
}

func (iv *Interleaver) lane(track uint64) *lane {
	for _, l := range iv.lanes {
		if l.track == track {
			return l
		}
	}
	return nil
}

// Push queues a copy of f (f.Track must be a declared track) with its
// order key. A frame whose key goes back on its track (ErrOrder) or that a
// resumed track delivers behind what already went out (ErrLate) is not
// queued.
func (iv *Interleaver) Push(f Frame, order time.Duration, now time.Time) error {
	l := iv.lane(f.Track)
	if l == nil {
		return fmt.Errorf("fragment: frame for undeclared track %d", f.Track)
	}
	if l.seen && order < l.last {
		return fmt.Errorf("%w: track %d order time %v after %v", ErrOrder, f.Track, order, l.last)
	}
	if l.state == laneEnded {
		return fmt.Errorf("fragment: frame for track %d after its end", f.Track)
	}
	if iv.anyOut && iv.tc(order) < iv.tc(iv.out) {
		l.last, l.seen = order, true
		return fmt.Errorf("%w: track %d at %v, output already at %v", ErrLate, f.Track, order, iv.out)
	}
	if !iv.anyIn {
		for _, o := range iv.lanes {
			o.since = now // silence is counted from the first frame of any track
		}
	}
	f.Data = append([]byte(nil), f.Data...)
	l.q = append(l.q, Queued{Frame: f, Order: order})
	l.last, l.seen = order, true
	if l.state == laneStalled {
		l.state, l.stallNoted = laneLive, false
	}
	iv.anyIn = true
	l.since = now
	return nil
}

// End marks a track as ended: nothing more is waited for from it.
func (iv *Interleaver) End(track uint64) {
	if l := iv.lane(track); l != nil {
		l.state = laneEnded
	}
}

// Ended reports whether a track ended and has nothing queued.
func (iv *Interleaver) Ended(track uint64) bool {
	l := iv.lane(track)
	return l == nil || l.state == laneEnded && l.head == len(l.q)
}

// Live reports whether a track is neither ended nor stalled.
func (iv *Interleaver) Live(track uint64) bool {
	l := iv.lane(track)
	return l != nil && l.state == laneLive
}

// Head returns the order key of a track's next frame, if one is queued.
func (iv *Interleaver) Head(track uint64) (time.Duration, bool) {
	l := iv.lane(track)
	if l == nil || l.head == len(l.q) {
		return 0, false
	}
	return l.q[l.head].Order, true
}

// Pop returns the next frame in order, if one may leave at wall time now
// (the zero time: never declare a track stalled, e.g. while paused). Its
// Data is a copy the caller owns.
func (iv *Interleaver) Pop(now time.Time) (Queued, bool) { return iv.pop(now, false) }

// Drain returns the next frame in order regardless of silent tracks (end of
// stream).
func (iv *Interleaver) Drain() (Queued, bool) { return iv.pop(time.Time{}, true) }

// Touch restarts every track's silence at now (after a pause, when no
// track could deliver).
func (iv *Interleaver) Touch(now time.Time) {
	for _, l := range iv.lanes {
		l.since = now
	}
}

// StallAt returns when the first live track with nothing queued would be
// stalled, if any frame is waiting for one.
func (iv *Interleaver) StallAt() (time.Time, bool) {
	if iv.Queued() == 0 {
		return time.Time{}, false
	}
	var at time.Time
	found := false
	for _, l := range iv.lanes {
		if l.state == laneLive && l.head == len(l.q) {
			if t := l.since.Add(iv.stallAfter); !found || t.Before(at) {
				at, found = t, true
			}
		}
	}
	return at, found
}

// Ahead is the span of order time a track has queued.
func (iv *Interleaver) Ahead(track uint64) time.Duration {
	l := iv.lane(track)
	if l == nil || l.head == len(l.q) {
		return 0
	}
	return l.last - l.q[l.head].Order
}

func (iv *Interleaver) pop(now time.Time, drain bool) (Queued, bool) {
	var best *lane
	for _, l := range iv.lanes {
		if l.head == len(l.q) {
			continue
		}
		if best == nil || iv.before(l.q[l.head], best.q[best.head]) {
			best = l
		}
	}
	if best == nil {
		return Queued{}, false
	}
	if !drain {
		for _, l := range iv.lanes {
			if l == best || l.head < len(l.q) || l.state != laneLive {
				continue
			}
			// A live track with nothing queued may still deliver an
			// earlier frame: wait, unless it has been silent too long.
			if now.IsZero() || now.Sub(l.since) < iv.stallAfter {
				return Queued{}, false
			}
			l.state = laneStalled
		}
	}
	q := best.q[best.head]
	best.q[best.head] = Queued{}
	best.head++
	if best.head == len(best.q) {
		best.q, best.head = best.q[:0], 0
	}
	iv.out, iv.anyOut = max(iv.out, q.Order), true
	return q, true
}

// Stalled returns the tracks that became stalled since the last call.
func (iv *Interleaver) Stalled() []uint64 {
	var out []uint64
	for _, l := range iv.lanes {
		if l.state == laneStalled && !l.stallNoted {
			l.stallNoted = true
			out = append(out, l.track)
		}
	}
	return out
}

// Queued is the number of frames waiting.
func (iv *Interleaver) Queued() int {
	n := 0
	for _, l := range iv.lanes {
		n += len(l.q) - l.head
	}
	return n
}

func (iv *Interleaver) tc(d time.Duration) int64 { return int64(d / iv.scale) }

// before orders a ahead of b: by timecode, then by declared track order.
func (iv *Interleaver) before(a, b Queued) bool {
	ta, tb := iv.tc(a.Order), iv.tc(b.Order)
	if ta != tb {
		return ta < tb
	}
	return iv.rank(a.Frame.Track) < iv.rank(b.Frame.Track)
}

func (iv *Interleaver) rank(track uint64) int {
	for i, l := range iv.lanes {
		if l.track == track {
			return i
		}
	}
	return len(iv.lanes)
}
