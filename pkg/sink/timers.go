package sink

import (
	"time"
)

// MaxConnectionLifetime is how long the service keeps one PutMedia
// connection (and a streaming token) at most; connections are rotated, and
// data endpoints looked up again, before it.
const MaxConnectionLifetime = 40 * time.Minute

// Timer constants of the upload, as in the official SDK where it has them.
const (
	// rotationJitterMax: a connection is rotated up to this much before
	// MaxConnectionLifetime (random, at most 10 % of it), so that many
	// producers started together do not reconnect together.
	rotationJitterMax = 3 * time.Minute
	// credentialGrace: a connection is rotated this long before the
	// credentials that signed it expire.
	credentialGrace = 30 * time.Second
	// watchdogTick bounds how late a staleness, latency or rotation
	// deadline is noticed.
	watchdogTick = 250 * time.Millisecond
)

// Retry budget of the upload. A PutMedia connection that cannot be
// established is retried with exponential backoff from backoffMin up to
// backoffMax, half of each wait random ("equal jitter"). Before any
// connection worked the stream gives up after maxConnectAttempts
// consecutive failures (with the default 5 s connection-timeout, a dead
// endpoint is an element error within 5 × 5 s + ~3 s of backoff); once it
// has streamed, it keeps retrying for as long as the store can cover the
// outage: buffer-duration (default 120 s) without a working connection.
// Authentication failures, a missing stream and TLS failures are not
// retried at all.
const (
	maxConnectAttempts = 5
	backoffMin         = 200 * time.Millisecond
	backoffMax         = 5 * time.Second
	// responseDrain bounds the wait for the service to end the response
	// after the body is complete.
	responseDrain = 10 * time.Second
)

// backoff is the wait before reconnect attempt n (1 for the first retry):
// backoffMin·2^(n-1) capped at backoffMax, then half of it fixed and half
// random. rnd(k) returns a value in [0, k).
func backoff(n int, rnd func(int64) int64) time.Duration {
	if n < 1 {
		n = 1
	}
	d := backoffMax
	if n <= 16 {
		if x := backoffMin << (n - 1); x < backoffMax {
			d = x
		}
	}
	return d/2 + time.Duration(rnd(int64(d/2)+1))
}

// rotationAt is when a connection opened at opened must be rotated: before
// maxDur (MaxConnectionLifetime less jitter when maxDur is 0) and, when the
// credentials that signed it expire (canExpire), grace (default
// credentialGrace) before they do. A set that lives less than twice the
// grace is used for half of its remaining life instead, so that however
// short-lived the credentials, a connection carries its set for a while and
// each set costs one rotation, never one per fragment. A set that has
// already expired schedules nothing: the service ends or refuses the
// connection, and the expired-token path fetches the next set. forCreds
// reports that the credentials, not the lifetime, set the time.
func rotationAt(opened time.Time, maxDur time.Duration, expires time.Time, canExpire bool, grace time.Duration, rnd func(int64) int64) (at time.Time, forCreds bool) {
	if grace <= 0 {
		grace = credentialGrace
	}
	if maxDur <= 0 {
		j := min(rotationJitterMax, MaxConnectionLifetime/10)
		maxDur = MaxConnectionLifetime - time.Duration(rnd(int64(j)+1))
	}
	at = opened.Add(maxDur)
	if canExpire && !expires.IsZero() && expires.After(opened) {
		g := min(grace, expires.Sub(opened)/2)
		if e := expires.Add(-g); e.Before(at) {
			return e, true
		}
	}
	return at, false
}

// resetReason says why the watchdog ends a connection.
type resetReason int

const (
	resetNone    resetReason = iota
	resetStale               // no BUFFERING ack for connection-staleness while data was sent
	resetLatency             // the oldest fragment not received waited longer than max-latency
	resetRotate              // the connection reached its lifetime or the credentials' expiry
)

func (r resetReason) String() string {
	switch r {
	case resetStale:
		return "connection-staleness"
	case resetLatency:
		return "max-latency"
	case resetRotate:
		return "rotation"
	}
	return "none"
}

// watchdog holds the deadlines of one connection. It is pure: the session
// feeds it times from the Clock.
type watchdog struct {
	staleness  time.Duration // 0: off
	maxLatency time.Duration // 0: off
	rotateAt   time.Time
	opened     time.Time
	// lastReset is when the latency check last reset a connection (kept
	// across connections, so a stream under pressure resets at most once
	// per maxLatency).
	lastReset time.Time
}

// check reports what to do at now. unackedSince is when data was first
// written after the last BUFFERING ack (zero if nothing is waiting for
// one); oldestPut is when the oldest fragment not yet received by the
// service was put (zero if none).
func (w *watchdog) check(now, unackedSince, oldestPut time.Time) resetReason {
	if w.staleness > 0 && !unackedSince.IsZero() && now.Sub(unackedSince) >= w.staleness {
		return resetStale
	}
	if w.maxLatency > 0 && !oldestPut.IsZero() && now.Sub(oldestPut) >= w.maxLatency &&
		now.Sub(w.opened) >= w.maxLatency && (w.lastReset.IsZero() || now.Sub(w.lastReset) >= w.maxLatency) {
		return resetLatency
	}
	if !w.rotateAt.IsZero() && !now.Before(w.rotateAt) {
		return resetRotate
	}
	return resetNone
}
