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
	EventDropped                         // frames were dropped from the store (Dropped says which)
	EventMetrics                         // periodic or per-key-frame metrics (Metrics)
	EventRecovered                       // fragments of an earlier run were found in StoragePath (Recovered)
	EventTracks                          // an audio and video stream goes on with other tracks (Message says which)
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
	// Restored is set on EventConnected after an earlier connection was
	// lost (FragmentTimecode is where the replay starts).
	Restored bool
	// Reason says why a connection was lost or reset (EventConnectionLost).
	Reason string
	// Retriable is set on EventStreamError: the fragment is resent (true)
	// or skipped (false).
	Retriable bool
	// Dropped describes an EventDropped.
	Dropped Dropped
	// Recovered is set on EventRecovered.
	Recovered *Recovered
	// Metrics is set on EventMetrics.
	Metrics Metrics
	// Track names the track a warning is about (TrackAny: none).
	Track TrackKind
	// KeyFrame marks an EventMetrics posted for a key frame
	// (Config.MetricsOnKeyFrame), not for Config.MetricsInterval.
	KeyFrame bool
}

// Dropped describes frames removed from the store before the service
// received them.
type Dropped struct {
	Frames    int
	Fragments int
	// From and To are the stream times (as sent: epoch or relative) of the
	// first and last dropped frame.
	From, To time.Duration
	Reason   string // "storage-size", "buffer-duration", "replay-duration"
	// VideoFrames and AudioFrames split Frames by track.
	VideoFrames, AudioFrames int
}

// Tracks names the tracks that lost frames: "video", "audio" or
// "video,audio".
func (d Dropped) Tracks() string {
	switch {
	case d.VideoFrames > 0 && d.AudioFrames > 0:
		return "video,audio"
	case d.AudioFrames > 0:
		return "audio"
	case d.VideoFrames > 0:
		return "video"
	}
	return ""
}

// Metrics are the running totals of a stream.
type Metrics struct {
	BytesSent      uint64 // body bytes written to PutMedia connections (replays included)
	FramesPut      uint64 // frames accepted into fragments
	FramesDropped  uint64 // frames dropped before the service received them
	FramesSkipped  uint64 // frames that could not start or join a fragment (before the first key frame)
	FragmentsSent  uint64 // fragments completely written (replays counted once)
	FragmentsAcked uint64 // fragments finally acknowledged (PERSISTED, or RECEIVED without retention)
	Connections    uint64 // PutMedia connections established
	// Latency is how long ago the oldest fragment the service has not yet
	// received was put (0 when none is waiting).
	Latency time.Duration
	// StoreBytes and StoreSize: the store's fill and capacity in bytes.
	StoreBytes, StoreSize int64
	// StoreMemory is how much of StoreBytes is in memory: less with a
	// storage path, when fragments wait on disk only (storage-memory).
	StoreMemory int64
	// StoreWindow is the offline window: the bytes of finished fragments
	// that input faster than real time may keep in memory before it waits
	// for the service (0 unless Offline; see Config.OfflineWindow).
	StoreWindow int64
	// DiskWritten counts the bytes written under StoragePath since Start,
	// record framing included (write amplification: DiskWritten over
	// BytesSent).
	DiskWritten int64
	// StoreDuration is the stretch of stream held (first to last frame),
	// against BufferDuration.
	StoreDuration, BufferDuration time.Duration
	// FramePTS is the stream time of the last frame put.
	FramePTS time.Duration
	// SendLatencyP50 and SendLatencyP99: the median and 99th percentile,
	// over the latest 1024 frames, of the time from a frame reaching the
	// producer (Frame.Received) to its last byte written to the PutMedia
	// connection, on its first sending (0 before any). Single-track
	// streams.
	SendLatencyP50, SendLatencyP99 time.Duration
}

func (e Event) String() string {
	switch e.Kind {
	case EventAck:
		return fmt.Sprintf("ack %s timecode=%d fragment=%s", e.AckType, e.FragmentTimecode, e.FragmentNumber)
	case EventStreamError:
		return fmt.Sprintf("stream error %d %s: %s", e.ErrorID, e.ErrorName, e.Message)
	case EventDropped:
		return fmt.Sprintf("dropped %d frame(s) (video %d, audio %d) in %d fragment(s), stream time %v..%v (%s): %s", e.Dropped.Frames, e.Dropped.VideoFrames, e.Dropped.AudioFrames, e.Dropped.Fragments, e.Dropped.From, e.Dropped.To, e.Dropped.Reason, e.Message)
	case EventMetrics:
		m := e.Metrics
		return fmt.Sprintf("metrics bytes=%d frames=%d dropped=%d fragments-sent=%d acked=%d latency=%v store=%d/%d", m.BytesSent, m.FramesPut, m.FramesDropped, m.FragmentsSent, m.FragmentsAcked, m.Latency, m.StoreBytes, m.StoreSize)
	default:
		return e.Message
	}
}
