package sink

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/kvsgo/kvsgo/pkg/clock"
	"github.com/kvsgo/kvsgo/pkg/credentials"
	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/httpx"
	"github.com/kvsgo/kvsgo/pkg/journal"
	"github.com/kvsgo/kvsgo/pkg/kvs"
)

// ErrSettings is wrapped by every error about the element's settings.
var ErrSettings = fmt.Errorf("sink: invalid settings")

// Config is the validated configuration of a Sink. Settings.Config builds
// it from the element's properties and the environment without any I/O;
// Open then reads what lives in files and resolves the credentials (the
// element does both in start). Tests build it directly.
type Config struct {
	StreamName     string
	Region         string
	Endpoint       string // control-plane base URL
	EndpointSource string // which property or variable chose Endpoint
	// Credentials signs every request. When nil, Open resolves
	// CredentialSources into it.
	Credentials kvs.CredentialsProvider
	// CredentialSources are the credential settings (iot-certificate,
	// access-key..., credential-path, role-arn...), in the precedence of
	// credentials.Sources.
	CredentialSources credentials.Sources
	// Getenv is the environment Open resolves credentials in
	// (AWS_ACCESS_KEY_ID..., AWS_ENDPOINT_URL_STS); default os.Getenv.
	Getenv     func(string) string
	CredSource string // set by Open: the source that won, without secrets
	// CertificateID is the AWS IoT id (SHA-256 of the DER, hex) of the
	// iot-certificate's certificate, when that is the credential source.
	CertificateID string
	// CredentialWarnings are non-fatal problems of the credential source
	// (a private key readable by other users) for the element to post.
	CredentialWarnings []string
	// Net is the connection policy of every request and connection (CAs
	// from CACertPath, LoopbackOnly, proxies, ConnectionTimeout). Open
	// builds it; New does when it is nil.
	Net *httpx.Client
	// HTTPClient carries every request. It defaults to Net's.
	HTTPClient *http.Client
	UserAgent  string
	// LoopbackOnly makes Net refuse every address but loopback (set by
	// the KVSGO_LOOPBACK_ONLY environment variable).
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
	// CredentialGrace rotates the PutMedia connection this long before the
	// credentials it was signed with expire, so that the next one is signed
	// with fresh ones. It defaults to 30 s.
	CredentialGrace time.Duration
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

	// AV streams a video and an audio track (video track 1, audio track
	// 2), interleaved by time (av.go); otherwise the stream has the one
	// track SetFormat gives.
	AV bool
	// MediaType, if set, is the CreateStream MediaType (the official
	// content type, e.g. "video/h264,audio/aac"); by default it follows the
	// caps.
	MediaType string
	// StallTimeout is how long (wall time, while playing) one track of an
	// audio and video stream may deliver nothing while frames of the other
	// wait for it before it is declared stalled (an EventWarning naming
	// it) and the stream goes on without it until it delivers again. It
	// also bounds how much stream time one track may run ahead of the
	// other: beyond it, Put waits. It defaults to DefaultStallTimeout
	// (3 s): longer than the few hundred milliseconds a live encoder or a
	// demuxer's queue keeps one track behind the other, well under the 10 s
	// a fragment may last.
	StallTimeout time.Duration
	// StoragePath, if set, keeps the store's fragments on disk as well
	// (disk.go), in a directory per stream under it, so that a restarted
	// producer uploads what an earlier run had accepted. StorageSize then
	// bounds the files, and StorageMemory the bytes kept in memory: a
	// fragment safely on disk leaves memory when it is full and is read
	// back when it is sent. It needs absolute fragment times (recovered
	// fragments keep their original timecodes).
	StoragePath string
	// StorageMemory bounds the store's bytes in memory when StoragePath is
	// set; it defaults to 32 MiB, or StorageSize if that is less.
	StorageMemory int64
	// OfflineWindow is where the bound starts, for Offline input that runs
	// ahead of real time, on the bytes of closed fragments kept in memory
	// before Put waits for the service (store.go); default
	// DefaultOfflineWindow. It doubles, up to StorageSize, whenever the
	// upload idles for windowStarve because of it (a link whose
	// acknowledgements take longer than the window lasts). Negative
	// disables it: such input then fills the store up to StorageSize.
	OfflineWindow int64
	// StorageOpenFile opens the files under StoragePath; default
	// os.OpenFile. Tests slow it down or make it fail.
	StorageOpenFile func(name string, flag int, perm os.FileMode) (journal.File, error)

	// E2EE, if set, encrypts every frame end to end (e2ee.go).
	E2EE *E2EEConfig
	// E2EEKeys, if set, are the e2ee-* properties whose keys Open loads
	// into E2EE.
	E2EEKeys *E2EEKeys

	Clock  clock.Clock
	Logger *slog.Logger
	// OnEvent, if set, receives every Event, never under the Sink's lock
	// (it may call back into the Sink), on the goroutine that caused it:
	// the caller of Put, SetFormat, EndTrack or Finish (drops, warnings,
	// key-frame metrics, recovery, epochs), the upload goroutines
	// (connections, acknowledgements, stream errors, the disk store) or
	// the metrics goroutine (every MetricsInterval). Events of different
	// goroutines may come at the same time: OnEvent must be safe for
	// concurrent use, and must not block (the caller waits for it).
	OnEvent func(Event)
}

// DefaultOfflineWindow is the default Config.OfflineWindow: a few 720p
// fragments or one 1080p fragment, more than loopback or a LAN carries
// during an acknowledgement's delay; a longer delay grows it.
const DefaultOfflineWindow = 2 << 20

// Config resolves Settings against the environment into a Config. getenv is
// os.Getenv in the element and a map in tests. It is pure: it reads no
// file and makes no request (Open does, at start), so that it reports only
// what the properties and variables say; every error names the property.
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
	src, err := st.credentialSources()
	if err != nil {
		return c, err
	}
	tags, err := structureStrings(st.StreamTags, "stream-tags")
	if err != nil {
		return c, err
	}
	if st.TimecodeScaleMs == 0 {
		return c, fmt.Errorf("%w: timecode-scale must be at least 1 ms", ErrSettings)
	}
	if st.FragmentDurationMs < MinFragmentDurationMs || st.FragmentDurationMs > MaxFragmentDurationMs {
		return c, fmt.Errorf("%w: fragment-duration %d ms outside %d..%d", ErrSettings, st.FragmentDurationMs, MinFragmentDurationMs, MaxFragmentDurationMs)
	}
	if st.RetentionHours > MaxRetentionHours {
		return c, fmt.Errorf("%w: retention-period %d h is over the service's %d h maximum", ErrSettings, st.RetentionHours, MaxRetentionHours)
	}
	c = Config{
		StreamName:            st.StreamName,
		Region:                region,
		Endpoint:              endpoint,
		EndpointSource:        source,
		CredentialSources:     src,
		Getenv:                getenv,
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
		StoragePath:           deref(st.StoragePath),
		StorageMemory:         int64(st.StorageMemoryMB) << 20,
		LoopbackOnly:          httpx.FromEnv(getenv).LoopbackOnly,
	}
	if st.FileStartTime != 0 {
		c.FileStartTime = time.Unix(int64(st.FileStartTime), 0)
	}
	if c.StoragePath != "" && !c.AbsoluteFragmentTimes && c.StreamingType != Offline {
		return c, fmt.Errorf("%w: storage-path needs absolute-fragment-times=true: fragments recovered after a restart are uploaded with their original times", ErrSettings)
	}
	if c.E2EEKeys, err = st.e2eeKeys(); err != nil {
		return c, err
	}
	return c, nil
}

// E2EEKeys are the e2ee-* properties: Open loads the keys they name into
// an E2EEConfig.
type E2EEKeys struct {
	Recipients       string // e2ee-recipients: inline entries and/or key files
	SigningKey       string // e2ee-signing-key: the device's key file
	Suite            e2ee.Suite
	RotationInterval time.Duration
}

// e2eeKeys checks the e2ee-* properties: nil when end-to-end encryption is
// off. Recipients without a signing key (or the reverse) is an error, never
// a plaintext stream.
func (st Settings) e2eeKeys() (*E2EEKeys, error) {
	rcpt, key := deref(st.E2EERecipients), deref(st.E2EESigningKey)
	if rcpt == "" && key == "" {
		return nil, nil
	}
	if rcpt == "" {
		return nil, fmt.Errorf("%w: e2ee-signing-key is set but e2ee-recipients is not: end-to-end encryption needs at least one recipient", ErrSettings)
	}
	if key == "" {
		return nil, fmt.Errorf("%w: e2ee-recipients is set but e2ee-signing-key is not: the device must sign its key bundles", ErrSettings)
	}
	suite := e2ee.DefaultSuite
	if st.E2EESuite != "" {
		var err error
		if suite, err = e2ee.ParseSuite(st.E2EESuite); err != nil {
			return nil, fmt.Errorf("%w: e2ee-suite: %w", ErrSettings, err)
		}
	}
	if st.E2EERotationSec < MinE2EERotationSec {
		return nil, fmt.Errorf("%w: e2ee-rotation-interval %d s is under the %d s minimum", ErrSettings, st.E2EERotationSec, MinE2EERotationSec)
	}
	return &E2EEKeys{Recipients: rcpt, SigningKey: key, Suite: suite, RotationInterval: secs(st.E2EERotationSec)}, nil
}

// load reads the keys: errors name e2ee-recipients or e2ee-signing-key.
func (k E2EEKeys) load() (*E2EEConfig, error) {
	rs, err := LoadRecipients(k.Recipients)
	if err != nil {
		return nil, err
	}
	sk, err := e2ee.LoadSigningKey(k.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("%w: e2ee-signing-key: %w", ErrSettings, err)
	}
	return &E2EEConfig{Recipients: rs, SigningKey: sk, Suite: k.Suite, RotationInterval: k.RotationInterval}, nil
}

// LoadRecipients parses an e2ee-recipients value (comma-separated inline
// entries and/or key files). An empty set is an error.
func LoadRecipients(spec string) ([]*e2ee.PublicKey, error) {
	rs, err := e2ee.LoadRecipients(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: e2ee-recipients: %w", ErrSettings, err)
	}
	return rs, nil
}

// credentialSources turns the credential properties into sources, in the
// precedence documented on credentials.Sources, and checks what can be
// checked without reading a file.
func (st Settings) credentialSources() (credentials.Sources, error) {
	src := credentials.Sources{AccessKey: st.AccessKey, SecretKey: st.SecretKey, SessionToken: st.SessionToken, CredentialPath: st.CredentialPath}
	if st.IoTCertificate != nil {
		iot, err := credentials.IoTFromFields(structureFields(st.IoTCertificate), st.StreamName)
		if err != nil {
			return src, fmt.Errorf("%w: %w", ErrSettings, err)
		}
		src.IoT = &iot
	}
	if arn := deref(st.RoleARN); arn != "" {
		src.Role = &credentials.AssumeRole{ARN: arn, SessionName: deref(st.RoleSessionName), ExternalID: deref(st.RoleExternalID),
			Duration: time.Duration(st.RoleDurationSec) * time.Second}
	}
	if err := src.Validate(); err != nil {
		return src, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	return src, nil
}

// structureFields lists a GstStructure's fields in their original order.
func structureFields(s *Structure) []credentials.Field {
	names := s.Order
	if len(names) != len(s.Fields) {
		names = names[:0:0]
		for k := range s.Fields {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	out := make([]credentials.Field, 0, len(names))
	for _, k := range names {
		v, ok := s.Fields[k]
		if !ok {
			continue
		}
		out = append(out, credentials.Field{Name: k, Type: v.Type, Value: v.Value})
	}
	return out
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
	if c.StorageMemory <= 0 {
		c.StorageMemory = DefaultStorageMemoryMB << 20
	}
	c.StorageMemory = min(c.StorageMemory, c.StorageSize)
	switch {
	case c.OfflineWindow == 0:
		c.OfflineWindow = DefaultOfflineWindow
	case c.OfflineWindow < 0:
		c.OfflineWindow = math.MaxInt64
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
	if c.StallTimeout <= 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.DataEndpointTTL <= 0 {
		c.DataEndpointTTL = MaxConnectionLifetime
	}
	return c
}
