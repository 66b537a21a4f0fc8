package sink

import (
	"fmt"
	"time"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
)

// EventKind tells what an Event reports.
type EventKind int

// Event kinds.
const (
	EventAck            EventKind = iota // a fragment acknowledgement from the service
	EventStreamError                     // an ERROR ack, or a failure the core recovered from
	EventWarning                         // something the user should know (skipped frames, a forced cut)
	EventConnected                       // a PutMedia connection was established
	EventConnectionLost                  // a PutMedia connection ended abnormally
	EventEpoch                           // a new end-to-end encryption epoch (Epoch is set)
)

// Event is an observation from the core, for element messages and signals.
type Event struct {
	Kind             EventKind
	AckType          string // BUFFERING, RECEIVED, PERSISTED, ERROR, IDLE
	FragmentTimecode uint64
	FragmentNumber   string
	ErrorID          int    // KVS ErrorId, for ERROR acks
	ErrorName        string // e.g. INVALID_MKV_DATA
	Message          string
	At               time.Time
	Epoch            *e2ee.EpochInfo // EventEpoch: ids only, never a secret
}

func (e Event) String() string {
	switch e.Kind {
	case EventAck:
		return fmt.Sprintf("ack %s timecode=%d fragment=%s", e.AckType, e.FragmentTimecode, e.FragmentNumber)
	case EventStreamError:
		return fmt.Sprintf("stream error %d %s: %s", e.ErrorID, e.ErrorName, e.Message)
	default:
		return e.Message
	}
}
