package sink

import (
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/clock"
)

func TestBackoffBoundsAndGrowth(t *testing.T) {
	lo := func(int64) int64 { return 0 }
	hi := func(n int64) int64 { return n - 1 }
	prev := time.Duration(0)
	for n := 1; n <= 40; n++ {
		a, b := backoff(n, lo), backoff(n, hi)
		if a < backoffMin/2 || b > backoffMax || a > b || a < prev {
			t.Fatalf("attempt %d: backoff in [%v, %v]", n, a, b)
		}
		prev = a
	}
	if backoff(1, lo) != backoffMin/2 || backoff(40, hi) != backoffMax {
		t.Fatalf("first %v, last %v", backoff(1, lo), backoff(40, hi))
	}
}

func TestRotationAt(t *testing.T) {
	fc := clock.NewFake(time.Unix(1_800_000_000, 0))
	opened := fc.Now()
	noJitter := func(int64) int64 { return 0 }
	maxJitter := func(n int64) int64 { return n - 1 }
	if got, _ := rotationAt(opened, 0, time.Time{}, false, 0, noJitter); got.Sub(opened) != MaxConnectionLifetime {
		t.Fatalf("static credentials: rotate after %v", got.Sub(opened))
	}
	if got, _ := rotationAt(opened, 0, time.Time{}, false, 0, maxJitter); got.Sub(opened) != MaxConnectionLifetime-rotationJitterMax {
		t.Fatalf("max jitter: rotate after %v", got.Sub(opened))
	}
	exp := opened.Add(10 * time.Minute)
	if got, _ := rotationAt(opened, 0, exp, true, 0, noJitter); !got.Equal(exp.Add(-credentialGrace)) {
		t.Fatalf("expiring credentials: rotate at %v, want %v", got, exp.Add(-credentialGrace))
	}
	if got, _ := rotationAt(opened, 0, exp, true, 5*time.Second, noJitter); !got.Equal(exp.Add(-5 * time.Second)) {
		t.Fatalf("grace 5 s: rotate at %v, want %v", got, exp.Add(-5*time.Second))
	}
	if got, _ := rotationAt(opened, time.Second, exp, true, 0, noJitter); got.Sub(opened) != time.Second {
		t.Fatalf("configured duration: %v", got.Sub(opened))
	}
	// A set that lives less than twice the grace is used for half of its
	// remaining life, not rotated away from at once.
	if got, forCreds := rotationAt(opened, 0, opened.Add(25*time.Second), true, 0, noJitter); got.Sub(opened) != 12500*time.Millisecond || !forCreds {
		t.Fatalf("25 s credentials: rotate after %v (for the credentials: %v), want 12.5 s", got.Sub(opened), forCreds)
	}
	// An expired set schedules no rotation; the lifetime still applies.
	if got, forCreds := rotationAt(opened, 0, opened.Add(-time.Second), true, 0, noJitter); got.Sub(opened) != MaxConnectionLifetime || forCreds {
		t.Fatalf("expired credentials: rotate after %v (for the credentials: %v)", got.Sub(opened), forCreds)
	}
	if _, forCreds := rotationAt(opened, 0, opened.Add(time.Hour), true, 0, noJitter); forCreds {
		t.Fatal("credentials outliving the connection's lifetime reported as the reason")
	}
}

// The watchdog's deadlines on the fake clock: staleness from the first
// fragment write without a BUFFERING ack, latency at most once per
// max-latency, rotation at its deadline.
func TestWatchdog(t *testing.T) {
	fc := clock.NewFake(time.Unix(1_800_000_000, 0))
	w := &watchdog{staleness: 5 * time.Second, maxLatency: 10 * time.Second, opened: fc.Now(), rotateAt: fc.Now().Add(time.Hour)}
	sent := fc.Now()
	fc.Advance(4 * time.Second)
	if r := w.check(fc.Now(), sent, time.Time{}); r != resetNone {
		t.Fatalf("after 4 s: %v", r)
	}
	fc.Advance(time.Second)
	if r := w.check(fc.Now(), sent, time.Time{}); r != resetStale {
		t.Fatalf("after 5 s without BUFFERING: %v", r)
	}
	if r := w.check(fc.Now(), time.Time{}, time.Time{}); r != resetNone {
		t.Fatalf("nothing waiting: %v", r)
	}
	put := fc.Now()
	fc.Advance(9 * time.Second)
	if r := w.check(fc.Now(), time.Time{}, put); r != resetNone {
		t.Fatalf("latency 9 s: %v", r)
	}
	fc.Advance(time.Second)
	if r := w.check(fc.Now(), time.Time{}, put); r != resetLatency {
		t.Fatalf("latency 10 s: %v", r)
	}
	w.lastReset = fc.Now()
	fc.Advance(5 * time.Second)
	if r := w.check(fc.Now(), time.Time{}, put); r != resetNone {
		t.Fatalf("second latency reset within max-latency: %v", r)
	}
	fc.Advance(time.Hour)
	if r := w.check(fc.Now(), time.Time{}, time.Time{}); r != resetRotate {
		t.Fatalf("at the rotation deadline: %v", r)
	}
	young := &watchdog{maxLatency: 10 * time.Second, opened: fc.Now()}
	if r := young.check(fc.Now().Add(time.Second), time.Time{}, fc.Now().Add(-time.Minute)); r != resetNone {
		t.Fatalf("a connection younger than max-latency was reset: %v", r)
	}
}
