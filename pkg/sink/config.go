package sink

import (
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/kvsgo/kvsgo/pkg/clock"
	"github.com/kvsgo/kvsgo/pkg/credentials"
	"github.com/kvsgo/kvsgo/pkg/kvs"
)

// ErrSettings is wrapped by every error about the element's settings.
var ErrSettings = fmt.Errorf("sink: invalid settings")

// Config is the resolved, validated configuration of a Sink. Settings.Config
// builds it from the element's properties and the environment; tests build
// it directly.
type Config struct {
	StreamName     string
	Region         string
	Endpoint       string // control-plane base URL
	EndpointSource string // which property or variable chose Endpoint
	Credentials    kvs.CredentialsProvider
	CredSource     string
	// HTTPClient carries every request. It defaults to a client whose dial
	// timeout is ConnectionTimeout.
	HTTPClient *http.Client
	UserAgent  string
	// LoopbackOnly makes the default HTTPClient refuse every address but
	// loopback (set by the KVSGO_LOOPBACK_ONLY environment variable).
	LoopbackOnly bool

	RetentionHours    int
	AllowCreateStream bool
	StreamTags        map[string]string
	DeviceName        string

	StreamingType         StreamingType
	FragmentAcks          bool
	AbsoluteFragmentTimes bool
	KeyFrameFragmentation bool
	FragmentDuration      time.Duration
	TimecodeScale         time.Duration
	FrameTimecodes        bool
	UseOriginalPTS        bool
	// FileStartTime is the epoch the stream starts at in offline mode. It
	// defaults to the time New is called.
	FileStartTime  time.Time
	CodecID        string
	TrackName      string
	RestartOnError bool

	ConnectionTimeout time.Duration // dial + TLS, per connection; default 5 s
	CompletionTimeout time.Duration // one control-plane call; default 10 s
	StopStreamTimeout time.Duration // wait for the last ack at EOS; default 120 s
	// StorageSize bounds the bytes held for upload and replay; default 128 MiB.
	StorageSize int64
	// BufferDuration bounds the stretch of stream (first to last frame) held
	// in the store, once its oldest fragment has also waited that long in
	// wall time (a faster-than-realtime source is bounded by StorageSize
	// only); default 120 s. StorageSize and BufferDuration are the
	// two limits of the store: when either is reached, Realtime and
	// NearRealtime drop the oldest fragment not yet received by the service
	// (an EventDropped), Offline blocks Put until acknowledgements free
	// space.
	BufferDuration time.Duration
	// ReplayDuration bounds how far back a new connection resends fragments
	// that were sent but never acknowledged (Realtime and NearRealtime; an
	// Offline stream resends everything it holds); default 40 s. Older ones
	// are reported as dropped.
	ReplayDuration time.Duration
	// MaxLatency resets the connection when the oldest fragment the
	// service has not yet received was put this long ago (wall clock), at
	// most once per MaxLatency; 0 turns the check off. Not in Offline mode.
	MaxLatency time.Duration
	// ConnectionStaleness resets the connection when fragments were sent
	// but no BUFFERING acknowledgement arrived for this long; 0 turns the
	// check off (it is off without fragment acks).
	ConnectionStaleness time.Duration
	// MaxConnectionDuration rotates the PutMedia connection (at a fragment
	// boundary, without replay) before the service's 40-minute limit; it is
	// also kept under the credentials' expiry. It defaults to 40 min minus
	// up to 3 min of jitter, as the official SDK does.
	MaxConnectionDuration time.Duration
	// DataEndpointTTL is how long a GetDataEndpoint answer is reused; after
	// that, or after a failed connection, the endpoint is looked up again.
	// It defaults to 40 min.
	DataEndpointTTL time.Duration
	// CACertPath, if set, replaces the system roots for TLS: a PEM file or
	// a directory of PEM files (the official KVSSINK_CA_CERT_PATH).
	CACertPath string
	// MetricsInterval, if positive, emits an EventMetrics that often.
	MetricsInterval time.Duration
	// MetricsOnKeyFrame emits an EventMetrics on every key frame (the
	// official get-kvs-metrics).
	MetricsOnKeyFrame bool

	Clock  clock.Clock
	Logger *slog.Logger
	// OnEvent, if set, receives acknowledgements and warnings. It is called
	// from the upload goroutine and must not block.
	OnEvent func(Event)
}

// Config resolves Settings against the environment into a Config. getenv is
// os.Getenv in the element and a map in tests.
func (st Settings) Config(getenv func(string) string) (Config, error) {
	var c Config
	if err := kvs.ValidateStreamName(st.StreamName); err != nil {
		return c, fmt.Errorf("%w: stream-name: %v", ErrSettings, err)
	}
	explicitRegion := st.AWSRegion != nil && *st.AWSRegion != ""
	region, err := kvs.ResolveRegion(deref(st.AWSRegion), explicitRegion, getenv)
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrSettings, err)
	}
	endpoint, source, err := kvs.ResolveEndpoint(deref(st.ControlPlaneURI), region, getenv)
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrSettings, err)
	}
	if st.IoTCertificate != nil {
		return c, fmt.Errorf("%w: iot-certificate is not supported by this version of kvsgo yet; use access-key/secret-key or the AWS_* environment variables", ErrSettings)
	}
	creds, credSource, err := credentials.Resolve(credentials.Sources{AccessKey: st.AccessKey, SecretKey: st.SecretKey, SessionToken: st.SessionToken, CredentialPath: st.CredentialPath}, getenv)
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	tags, err := structureStrings(st.StreamTags, "stream-tags")
	if err != nil {
		return c, err
	}
	if st.TimecodeScaleMs == 0 {
		return c, fmt.Errorf("%w: timecode-scale must be at least 1 ms", ErrSettings)
	}
	if !st.KeyFrameFragmentation && (st.FragmentDurationMs < 1000 || st.FragmentDurationMs > 30000) {
		return c, fmt.Errorf("%w: fragment-duration %d ms outside 1000..30000 (used when key-frame-fragmentation=false)", ErrSettings, st.FragmentDurationMs)
	}
	c = Config{
		StreamName:            st.StreamName,
		Region:                region,
		Endpoint:              endpoint,
		EndpointSource:        source,
		Credentials:           creds,
		CredSource:            credSource,
		UserAgent:             st.UserAgent,
		RetentionHours:        int(st.RetentionHours),
		AllowCreateStream:     st.AllowCreateStream,
		StreamTags:            tags,
		DeviceName:            DefaultDeviceName,
		StreamingType:         st.StreamingType,
		FragmentAcks:          st.FragmentAcks,
		AbsoluteFragmentTimes: st.AbsoluteFragmentTimes,
		KeyFrameFragmentation: st.KeyFrameFragmentation,
		FragmentDuration:      time.Duration(st.FragmentDurationMs) * time.Millisecond,
		TimecodeScale:         time.Duration(st.TimecodeScaleMs) * time.Millisecond,
		FrameTimecodes:        st.FrameTimecodes,
		UseOriginalPTS:        st.UseOriginalPTS,
		CodecID:               st.CodecID,
		TrackName:             st.TrackName,
		RestartOnError:        st.RestartOnError,
		ConnectionTimeout:     secs(st.ConnectionTimeoutSec),
		CompletionTimeout:     secs(st.CompletionTimeoutSec),
		StopStreamTimeout:     secs(st.StopStreamTimeoutSec),
		StorageSize:           int64(st.StorageSizeMB) << 20,
		BufferDuration:        secs(st.BufferDurationSec),
		ReplayDuration:        secs(st.ReplayDurationSec),
		MaxLatency:            secs(st.MaxLatencySec),
		ConnectionStaleness:   secs(st.ConnectionStaleSec),
		MetricsInterval:       time.Duration(st.MetricsIntervalMs) * time.Millisecond,
		MetricsOnKeyFrame:     st.GetKVSMetrics,
		CACertPath:            caCertPath(st.CACertPath, getenv),
		LoopbackOnly:          getenv(LoopbackOnlyEnv) != "",
	}
	if st.FileStartTime != 0 {
		c.FileStartTime = time.Unix(int64(st.FileStartTime), 0)
	}
	return c, nil
}

// CACertEnv is the official element's custom CA variable: a PEM file or a
// directory of PEM files. The ca-cert-path property wins over it.
const CACertEnv = "KVSSINK_CA_CERT_PATH"

func caCertPath(prop *string, getenv func(string) string) string {
	if prop != nil && *prop != "" {
		return *prop
	}
	return getenv(CACertEnv)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// structureStrings turns a GstStructure whose fields must all be strings
// (stream-tags) into a map; a non-string field is an error naming it.
func structureStrings(s *Structure, prop string) (map[string]string, error) {
	if s == nil || len(s.Fields) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(s.Fields))
	names := make([]string, 0, len(s.Fields))
	for k := range s.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := s.Fields[k]
		if v.Type != "gchararray" {
			return nil, fmt.Errorf("%w: %s field %q is a %s, not a string: write %s=(string)%s", ErrSettings, prop, k, v.Type, k, v.Value)
		}
		m[k] = v.Value
	}
	return m, nil
}

// withDefaults fills zero fields of a Config.
func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ConnectionTimeout <= 0 {
		c.ConnectionTimeout = DefaultConnectionTimeoutSec * time.Second
	}
	if c.CompletionTimeout <= 0 {
		c.CompletionTimeout = DefaultCompletionTimeoutSec * time.Second
	}
	if c.StopStreamTimeout <= 0 {
		c.StopStreamTimeout = DefaultStopStreamTimeoutSec * time.Second
	}
	if c.StorageSize <= 0 {
		c.StorageSize = DefaultStorageSizeMB << 20
	}
	if c.TimecodeScale <= 0 {
		c.TimecodeScale = time.Millisecond
	}
	if c.FragmentDuration <= 0 {
		c.FragmentDuration = DefaultFragmentDurationMs * time.Millisecond
	}
	if c.TrackName == "" {
		c.TrackName = DefaultTrackName
	}
	if c.DeviceName == "" {
		c.DeviceName = DefaultDeviceName
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if c.BufferDuration <= 0 {
		c.BufferDuration = DefaultBufferDurationSec * time.Second
	}
	if c.ReplayDuration <= 0 {
		c.ReplayDuration = DefaultReplayDurationSec * time.Second
	}
	if c.ReplayDuration > c.BufferDuration {
		c.ReplayDuration = c.BufferDuration
	}
	if c.DataEndpointTTL <= 0 {
		c.DataEndpointTTL = MaxConnectionLifetime
	}
	return c
}
