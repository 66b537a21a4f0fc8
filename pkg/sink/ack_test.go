package sink

import (
	"context"
	"errors"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/kvs"
)

// Every EventType and ErrorId of the official table: retriable errors end
// the connection for a resend, the others skip the fragment; duplicated and
// out-of-order acks never move a fragment back; unknown fragments and IDLE
// change nothing.
func TestHandleAckEveryTypeAndErrorID(t *testing.T) {
	ids := []int{4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007, 4008, 4009, 4010, 4011, 4012,
		4500, 4501, 4502, 4503, 4504, 4505, 4506, 4507, 5000, 5001, 7000, 12345}
	retriable := map[int]bool{4000: true, 4003: true, 5000: true, 5001: true, 7000: true, 12345: true}
	for _, id := range ids {
		s, evs := storeSink(t, Realtime, 1<<30, 1<<40)
		for i := range 25 {
			if err := s.Put(context.Background(), aacFrame(i)); err != nil {
				t.Fatal(err)
			}
		}
		e := s.entries[1]
		ss := &sessState{}
		err := s.handleAck(kvs.Ack{EventType: kvs.AckErrorEvent, FragmentTimecode: e.frag.Timecode, FragmentNumber: "1", ErrorID: id}, ss)
		var skip *skipError
		var ae *kvs.AckError
		if !errors.As(err, &ae) || errors.As(err, &skip) == retriable[id] {
			t.Errorf("ErrorId %d: handleAck = %v", id, err)
		}
		if (e.state == stateFailed) == retriable[id] {
			t.Errorf("ErrorId %d: fragment state %v", id, e.state)
		}
		last := (*evs)[len(*evs)-1]
		if last.Kind != EventStreamError || last.ErrorID != id || last.Retriable != retriable[id] || last.ErrorName == "" {
			t.Errorf("ErrorId %d: event %+v", id, last)
		}
	}

	s, _ := storeSink(t, Realtime, 1<<30, 1<<40)
	for i := range 25 {
		if err := s.Put(context.Background(), aacFrame(i)); err != nil {
			t.Fatal(err)
		}
	}
	e := s.entries[0]
	tc := e.frag.Timecode
	ss := &sessState{unackedSince: s.cfg.Clock.Now()}
	for _, c := range []struct {
		typ  kvs.AckEventType
		tc   uint64
		want ackState
	}{
		{kvs.AckIdle, 0, stateNone},
		{kvs.AckReceived, 42, stateNone}, // a fragment never sent
		{kvs.AckBuffering, tc, stateBuffering},
		{kvs.AckPersisted, tc, statePersisted}, // before RECEIVED
		{kvs.AckReceived, tc, statePersisted},  // late: no step back
		{kvs.AckBuffering, tc, statePersisted}, // duplicate
		{kvs.AckPersisted, tc, statePersisted}, // duplicate
	} {
		if err := s.handleAck(kvs.Ack{EventType: c.typ, FragmentTimecode: c.tc, FragmentNumber: "7"}, ss); err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		if e.state != c.want {
			t.Fatalf("after %s %d: state %v, want %v", c.typ, c.tc, e.state, c.want)
		}
		if c.typ == kvs.AckBuffering && !ss.unackedSince.IsZero() {
			t.Fatal("BUFFERING did not reset the staleness clock")
		}
	}
	if m := s.Metrics(); m.FragmentsAcked != 1 {
		t.Fatalf("fragments acked %d, want 1", m.FragmentsAcked)
	}
}
