package sink

import "time"

// Format describes the media on the element's sink pad as plain data, as the
// plugin reads it from caps. Codec is one of "h264", "h265", "aac", "alaw",
// "mulaw".
type Format struct {
	Codec        string
	StreamFormat string // h264: "avc" | "avc3" | "byte-stream"; h265: "hvc1" | "hev1" | "byte-stream"; aac: "raw"
	CodecData    []byte // caps codec_data (avcC, hvcC, AudioSpecificConfig), if any
	Width        int
	Height       int
	FramerateNum int
	FramerateDen int
	Rate         int // audio sampling rate, Hz
	Channels     int
}

// NoTime marks an unset timestamp (GST_CLOCK_TIME_NONE).
const NoTime time.Duration = -1

// Frame is one access unit from the pad. Data is borrowed: it is valid only
// during the call that receives it.
type Frame struct {
	PTS      time.Duration // buffer PTS, or NoTime
	DTS      time.Duration // buffer DTS, or NoTime
	Duration time.Duration // or NoTime
	Keyframe bool
	Data     []byte
	// Kind is the track the frame belongs to; TrackAny in a single-track
	// stream.
	Kind TrackKind
	// Received is when the frame reached the producer (an element's
	// render), the start of the frame-to-socket latency in Metrics; zero
	// means when Put was called.
	Received time.Time
}
