package sink

import "time"

// StreamingType is the official kvssink streaming-type enum. Its numeric
// values match GstKvsSinkStreamingType.
type StreamingType int

// Streaming types.
const (
	Realtime     StreamingType = 0 // drop the oldest unsent fragment when the store is full
	NearRealtime StreamingType = 1 // like Realtime
	Offline      StreamingType = 2 // block the producer instead of dropping (backpressure)
)

func (t StreamingType) String() string {
	switch t {
	case Realtime:
		return "realtime"
	case NearRealtime:
		return "near-realtime"
	case Offline:
		return "offline"
	}
	return "unknown"
}

// Property defaults, named as the official element names them where it has a
// name. Units are in the constant's name or comment.
const (
	DefaultStreamName            = "DEFAULT_STREAM"
	DefaultUserAgent             = "kvsgo"
	DefaultRetentionHours        = 2
	DefaultStreamingType         = Realtime
	DefaultMaxLatencySec         = 60
	DefaultFragmentDurationMs    = 2000
	DefaultTimecodeScaleMs       = 1
	DefaultKeyFrameFragmentation = true
	DefaultFrameTimecodes        = true
	DefaultAbsoluteFragmentTimes = true
	DefaultFragmentAcks          = true
	DefaultRestartOnError        = true
	DefaultRecalculateMetrics    = true
	DefaultFramerate             = 25
	DefaultAvgBandwidthBps       = 4 * 1024 * 1024
	DefaultBufferDurationSec     = 120
	DefaultReplayDurationSec     = 40
	DefaultConnectionStaleSec    = 60
	DefaultCodecID               = "V_MPEG4/ISO/AVC"
	DefaultTrackName             = "kinesis_video"
	DefaultRotationPeriodSec     = 3600
	DefaultLogConfig             = "../kvs_log_configuration"
	DefaultStorageSizeMB         = 128
	DefaultStopStreamTimeoutSec  = 120
	DefaultConnectionTimeoutSec  = 5
	DefaultCompletionTimeoutSec  = 10
	DefaultCredentialPath        = ".kvs/credential"
	DefaultAllowCreateStream     = true
	DefaultDeviceName            = "Kinesis_Video_Device"
)

// Property ranges the element declares in its GParamSpecs and Config checks
// again for callers that fill Settings directly.
const (
	MinFragmentDurationMs = 1000
	MaxFragmentDurationMs = 30000
	MaxRetentionHours     = 87600 // the service's DataRetentionInHours limit: 10 years
	MaxRoleDurationSec    = 43200 // STS AssumeRole's DurationSeconds limit; 1..899 is refused at start
	MinE2EERotationSec    = 60
)

// TypedValue is one field of a GstStructure property as the plugin read it:
// the GType name of the value (e.g. "gchararray", "gint") and its
// serialisation. Keeping the type lets pure code reject non-string fields the
// way the official element does.
type TypedValue struct {
	Type  string
	Value string
}

// Structure is a GstStructure property (iot-certificate, stream-tags) as
// plain data.
type Structure struct {
	Name   string
	Fields map[string]TypedValue
	// Order lists the field names in their original order.
	Order []string
}

// Settings mirrors every kvssink property, with the official GLib types'
// meaning. Optional strings are pointers: nil means "not set", never a
// sentinel value. The element snapshots Settings once at start.
type Settings struct {
	StreamName            string
	UserAgent             string
	RetentionHours        uint
	StreamingType         StreamingType
	ContentType           *string // recomputed from caps; kept for compatibility
	MaxLatencySec         uint
	FragmentDurationMs    uint
	TimecodeScaleMs       uint
	KeyFrameFragmentation bool
	FrameTimecodes        bool
	AbsoluteFragmentTimes bool
	FragmentAcks          bool
	RestartOnError        bool
	RecalculateMetrics    bool // no effect: tunes the official SDK's metrics only
	Framerate             uint
	AvgBandwidthBps       uint // no effect
	BufferDurationSec     uint
	ReplayDurationSec     uint
	ConnectionStaleSec    uint
	CodecID               string
	TrackName             string
	AccessKey             *string
	SecretKey             *string
	SessionToken          *string
	AWSRegion             *string
	RotationPeriodSec     uint    // no effect: the official element stores it unused
	LogConfig             *string // no effect: log4cplus configuration of the official SDK
	StorageSizeMB         uint
	StopStreamTimeoutSec  uint
	ConnectionTimeoutSec  uint
	CompletionTimeoutSec  uint
	CredentialPath        *string
	IoTCertificate        *Structure
	StreamTags            *Structure
	FileStartTime         uint64 // epoch seconds; 0 = the time the element was created
	DisableBufferClipping bool
	UseOriginalPTS        bool
	GetKVSMetrics         bool
	AllowCreateStream     bool

	// ControlPlaneURI is kvsgo's own control-plane-uri property.
	ControlPlaneURI *string

	// RoleARN, kvsgo's role-arn property, makes the element assume this
	// IAM role (STS AssumeRole) with whichever credentials it found.
	RoleARN         *string
	RoleSessionName *string // role-session-name; default kvsgo-<unix time>
	RoleExternalID  *string // role-external-id; shown as ***** like a secret
	RoleDurationSec uint    // role-duration, seconds; 0 = STS's default (900)

	// End-to-end encryption (kvsgo's e2ee-* properties): on when
	// E2EERecipients is set. See E2EEConfig.
	E2EERecipients  *string // comma-separated public key entries and/or key files
	E2EESigningKey  *string // the device's Ed25519 private key file
	E2EESuite       string  // SFrame suite name or number
	E2EERotationSec uint    // epoch lifetime, seconds
	// CACertPath is kvsgo's ca-cert-path property: a PEM file or a
	// directory of PEM files trusted instead of the system roots. Unset
	// means KVSSINK_CA_CERT_PATH, else the system roots.
	CACertPath *string
	// MetricsIntervalMs is kvsgo's metrics-interval property: how often a
	// kvs-metrics element message is posted; 0 = never.
	MetricsIntervalMs uint
	// StoragePath is storage-path: a directory for the disk-backed store.
	StoragePath *string
}

// E2EE defaults.
const (
	DefaultE2EESuite       = "aes-256-gcm"
	DefaultE2EERotationSec = 3600
)

// DefaultSettings returns the settings of a freshly created element.
func DefaultSettings() Settings {
	return Settings{
		StreamName:            DefaultStreamName,
		E2EESuite:             DefaultE2EESuite,
		E2EERotationSec:       DefaultE2EERotationSec,
		UserAgent:             DefaultUserAgent,
		RetentionHours:        DefaultRetentionHours,
		StreamingType:         DefaultStreamingType,
		MaxLatencySec:         DefaultMaxLatencySec,
		FragmentDurationMs:    DefaultFragmentDurationMs,
		TimecodeScaleMs:       DefaultTimecodeScaleMs,
		KeyFrameFragmentation: DefaultKeyFrameFragmentation,
		FrameTimecodes:        DefaultFrameTimecodes,
		AbsoluteFragmentTimes: DefaultAbsoluteFragmentTimes,
		FragmentAcks:          DefaultFragmentAcks,
		RestartOnError:        DefaultRestartOnError,
		RecalculateMetrics:    DefaultRecalculateMetrics,
		Framerate:             DefaultFramerate,
		AvgBandwidthBps:       DefaultAvgBandwidthBps,
		BufferDurationSec:     DefaultBufferDurationSec,
		ReplayDurationSec:     DefaultReplayDurationSec,
		ConnectionStaleSec:    DefaultConnectionStaleSec,
		CodecID:               DefaultCodecID,
		TrackName:             DefaultTrackName,
		RotationPeriodSec:     DefaultRotationPeriodSec,
		StorageSizeMB:         DefaultStorageSizeMB,
		StopStreamTimeoutSec:  DefaultStopStreamTimeoutSec,
		ConnectionTimeoutSec:  DefaultConnectionTimeoutSec,
		CompletionTimeoutSec:  DefaultCompletionTimeoutSec,
		AllowCreateStream:     DefaultAllowCreateStream,
		CredentialPath:        ptrTo(DefaultCredentialPath),
	}
}

func ptrTo(s string) *string { return &s }

func secs(n uint) time.Duration { return time.Duration(n) * time.Second }
