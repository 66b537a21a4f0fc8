package clock

import (
	"testing"
	"time"
)

func TestFakeAfter(t *testing.T) {
	f := NewFake(time.Unix(1000, 0))
	ch := f.After(2 * time.Second)
	f.Advance(time.Second)
	select {
	case <-ch:
		t.Fatal("fired early")
	default:
	}
	if f.Waiters() != 1 {
		t.Fatalf("waiters = %d", f.Waiters())
	}
	f.Advance(time.Second)
	select {
	case got := <-ch:
		if !got.Equal(time.Unix(1002, 0)) {
			t.Fatalf("fired at %v", got)
		}
	default:
		t.Fatal("did not fire")
	}
}
