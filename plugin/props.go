package main

/*
#include "plugin_desc.h"
#include <stdlib.h>
*/
import "C"

import (
	"math"
	"unsafe"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"

	"github.com/kvsgo/kvsgo/pkg/sink"
)

// The properties: every property of the official kvssink, with its name and
// GLib type, plus kvsgo's control-plane-uri and GstBaseSink's sync (shadowed
// to default to false). Values live in sink.Settings; the element snapshots
// them at start. Optional strings are NULL when unset: never a sentinel such
// as the official "access_key".

type propKind int

const (
	kString propKind = iota
	kBool
	kUint
	kUint64
	kEnum
	kStructure
	kSync // GstBaseSink's sync, shadowed to default to FALSE
)

// prop is one GObject property and where its value lives in sink.Settings.
// Exactly one accessor matching kind is set.
type prop struct {
	name, nick, blurb string
	kind              propKind
	// noEffect marks properties that only tuned the official C SDK's
	// internals: accepted, documented, logged once at INFO when set.
	noEffect bool
	// secret properties read back as "*****" when set, NULL when unset.
	secret bool
	// playing properties may change while PLAYING (GST_PARAM_MUTABLE_PLAYING);
	// the element hands the new value to the running core.
	playing bool

	str  func(*sink.Settings) **string         // nullable string
	strv func(*sink.Settings) *string          // string with a non-NULL default; NULL restores it
	b    func(*sink.Settings) *bool            //
	u    func(*sink.Settings) *uint            // 0..G_MAXUINT
	u64  func(*sink.Settings) *uint64          // 0..G_MAXUINT64
	st   func(*sink.Settings) **sink.Structure // boxed GstStructure

	defStr *string // pspec default of string properties
	defB   bool
	defU   uint
	// minU and maxU bound a kUint property (maxU 0 means G_MAXUINT): the
	// pspec enforces them, so gst-inspect shows them and g_object_set and
	// gst-launch parsing refuse a value outside them.
	minU, maxU uint
}

// uintRange returns the bounds declared in p's pspec.
func (p *prop) uintRange() (lo, hi uint) {
	hi = p.maxU
	if hi == 0 {
		hi = math.MaxUint32
	}
	return p.minU, hi
}

func sp(s string) *string { return &s }

// noEffect is the start of the blurb of every property kvsgo accepts but
// ignores; test/inspect checks it.
const noEffect = "Accepted for compatibility; no effect in kvsgo"

// secretMask is what get_property returns for a secret that is set.
const secretMask = "*****"

var props = []prop{
	{name: "stream-name", nick: "Stream name", kind: kString, defStr: sp(sink.DefaultStreamName),
		strv:  func(s *sink.Settings) *string { return &s.StreamName },
		blurb: "Name of the destination stream: 1 to 256 letters, digits, '_', '.' or '-'. Default: DEFAULT_STREAM"},
	{name: "user-agent", nick: "User agent", kind: kString, defStr: sp(sink.DefaultUserAgent),
		strv:  func(s *sink.Settings) *string { return &s.UserAgent },
		blurb: "Product name at the start of the User-Agent header of every request: Kinesis Video Streams control plane and PutMedia, STS and the IoT credentials provider (the SDK's own tokens follow it). Default: " + sink.DefaultUserAgent},
	{name: "retention-period", nick: "Retention period", kind: kUint, defU: sink.DefaultRetentionHours, maxU: sink.MaxRetentionHours,
		u:     func(s *sink.Settings) *uint { return &s.RetentionHours },
		blurb: "Data retention of a stream this element creates; with 0 the service keeps nothing and EOS waits for RECEIVED instead of PERSISTED acks. Unit: hours. Default: 2"},
	{name: "streaming-type", nick: "Streaming type", kind: kEnum,
		blurb: "realtime and near-realtime: live, when storage-size or buffer-duration is reached the oldest fragment not yet received by the service is dropped (an element warning and a kvs-dropped-frames message count the frames and name the time range); offline: upload as fast as the service takes it, blocking upstream instead of dropping (input faster than real time waits once a window of finished fragments, 2 MiB growing on slow links, awaits acknowledgement). Default: realtime"},
	{name: "content-type", nick: "Content type", kind: kString, noEffect: true,
		str:   func(s *sink.Settings) **string { return &s.ContentType },
		blurb: noEffect + " (as in the official element, the MIME type of the stream always follows the caps: video/h264, video/h265, audio/aac, audio/alaw or audio/mulaw). Default: NULL"},
	{name: "max-latency", nick: "Max latency", kind: kUint, defU: sink.DefaultMaxLatencySec,
		u:     func(s *sink.Settings) *uint { return &s.MaxLatencySec },
		blurb: "Reset the PutMedia connection when the oldest fragment the service has not received was produced this long ago (at most once per max-latency; realtime and near-realtime with fragment-acks; 0 = off). Unit: seconds. Default: 60"},
	{name: "fragment-duration", nick: "Fragment duration", kind: kUint, defU: sink.DefaultFragmentDurationMs,
		minU: sink.MinFragmentDurationMs, maxU: sink.MaxFragmentDurationMs,
		u:     func(s *sink.Settings) *uint { return &s.FragmentDurationMs },
		blurb: "Fragment length when key-frame-fragmentation=false: a fragment starts at the first key frame after it. Unit: milliseconds. Default: 2000"},
	{name: "timecode-scale", nick: "Timecode scale", kind: kUint, defU: sink.DefaultTimecodeScaleMs, minU: 1,
		u:     func(s *sink.Settings) *uint { return &s.TimecodeScaleMs },
		blurb: "Matroska timecode unit. Unit: milliseconds. Default: 1"},
	{name: "key-frame-fragmentation", nick: "Key frame fragmentation", kind: kBool, defB: sink.DefaultKeyFrameFragmentation,
		b:     func(s *sink.Settings) *bool { return &s.KeyFrameFragmentation },
		blurb: "If true, start a new fragment at every key frame; otherwise at the first key frame after fragment-duration. Default: true"},
	{name: "frame-timecodes", nick: "Frame timecodes", kind: kBool, defB: sink.DefaultFrameTimecodes,
		b:     func(s *sink.Settings) *bool { return &s.FrameTimecodes },
		blurb: "If true, timestamp frames with the buffers' PTS/DTS; otherwise with the wall clock when they arrive. Default: true"},
	{name: "absolute-fragment-times", nick: "Absolute fragment times", kind: kBool, defB: sink.DefaultAbsoluteFragmentTimes,
		b:     func(s *sink.Settings) *bool { return &s.AbsoluteFragmentTimes },
		blurb: "If true, fragment timecodes are absolute (epoch); otherwise relative to the start of the upload. Default: true"},
	{name: "fragment-acks", nick: "Fragment acks", kind: kBool, defB: sink.DefaultFragmentAcks,
		b:     func(s *sink.Settings) *bool { return &s.FragmentAcks },
		blurb: "If true, ask the service for fragment acknowledgements and wait for the last one at EOS. Default: true"},
	{name: "restart-on-error", nick: "Restart on error", kind: kBool, defB: sink.DefaultRestartOnError,
		b:     func(s *sink.Settings) *bool { return &s.RestartOnError },
		blurb: "If true, reconnect and resend after a retriable error; otherwise the first error ends the stream. Default: true"},
	{name: "recalculate-metrics", nick: "Recalculate metrics", kind: kBool, noEffect: true, defB: sink.DefaultRecalculateMetrics,
		b:     func(s *sink.Settings) *bool { return &s.RecalculateMetrics },
		blurb: noEffect + " (it switched the official SDK's frame-rate and bit-rate averaging on and off). Default: true"},
	{name: "framerate", nick: "Framerate", kind: kUint, noEffect: true, defU: sink.DefaultFramerate,
		u:     func(s *sink.Settings) *uint { return &s.Framerate },
		blurb: noEffect + " (it sized the official SDK's frame index; kvsgo bounds its store in bytes with storage-size). Unit: frames per second. Default: 25"},
	{name: "avg-bandwidth-bps", nick: "Average bandwidth", kind: kUint, noEffect: true, defU: sink.DefaultAvgBandwidthBps,
		u:     func(s *sink.Settings) *uint { return &s.AvgBandwidthBps },
		blurb: noEffect + " (it seeded the official SDK's bandwidth metric). Unit: bits per second. Default: 4194304"},
	{name: "buffer-duration", nick: "Buffer duration", kind: kUint, defU: sink.DefaultBufferDurationSec,
		u:     func(s *sink.Settings) *uint { return &s.BufferDurationSec },
		blurb: "Longest stretch of stream kept for upload and replay; with storage-size the store's second limit. Also how long an outage is retried once streaming worked. Unit: seconds. Default: 120"},
	{name: "replay-duration", nick: "Replay duration", kind: kUint, defU: sink.DefaultReplayDurationSec,
		u:     func(s *sink.Settings) *uint { return &s.ReplayDurationSec },
		blurb: "How far back a new connection resends fragments sent but never acknowledged (realtime and near-realtime; older ones are reported dropped); at most buffer-duration. Unit: seconds. Default: 40"},
	{name: "connection-staleness", nick: "Connection staleness", kind: kUint, defU: sink.DefaultConnectionStaleSec,
		u:     func(s *sink.Settings) *uint { return &s.ConnectionStaleSec },
		blurb: "Reset the connection when a fragment was being sent for this long without a BUFFERING acknowledgement (0 = off). Unit: seconds. Default: 60"},
	{name: "codec-id", nick: "Codec ID", kind: kString, defStr: sp(sink.DefaultCodecID),
		strv:  func(s *sink.Settings) *string { return &s.CodecID },
		blurb: "Matroska CodecID of the track; H.265, AAC and G.711 caps override the H.264 default. Default: " + sink.DefaultCodecID},
	{name: "track-name", nick: "Track name", kind: kString, defStr: sp(sink.DefaultTrackName),
		strv:  func(s *sink.Settings) *string { return &s.TrackName },
		blurb: "Matroska name of the track. Default: " + sink.DefaultTrackName},
	{name: "access-key", nick: "Access key", kind: kString,
		str:   func(s *sink.Settings) **string { return &s.AccessKey },
		blurb: "AWS access key ID. Default: NULL, which means AWS_ACCESS_KEY_ID from the environment"},
	{name: "secret-key", nick: "Secret key", kind: kString, secret: true,
		str:   func(s *sink.Settings) **string { return &s.SecretKey },
		blurb: "AWS secret access key; reads back as ***** when set, never as the key. Default: NULL, which means AWS_SECRET_ACCESS_KEY from the environment"},
	{name: "session-token", nick: "Session token", kind: kString, secret: true,
		str:   func(s *sink.Settings) **string { return &s.SessionToken },
		blurb: "AWS session token of temporary credentials; reads back as ***** when set, never as the token. Default: NULL, which means AWS_SESSION_TOKEN from the environment, if set"},
	{name: "aws-region", nick: "AWS region", kind: kString,
		str:   func(s *sink.Settings) **string { return &s.AWSRegion },
		blurb: "AWS region, e.g. eu-west-1; a value set here wins over the environment. Default: NULL, which means AWS_REGION, else AWS_DEFAULT_REGION, else us-west-2"},
	{name: "rotation-period", nick: "Rotation period", kind: kUint, noEffect: true, defU: sink.DefaultRotationPeriodSec,
		u:     func(s *sink.Settings) *uint { return &s.RotationPeriodSec },
		blurb: noEffect + " (the official element stores it and never uses it). Unit: seconds. Default: 3600"},
	{name: "log-config", nick: "Log configuration", kind: kString, noEffect: true,
		str:   func(s *sink.Settings) **string { return &s.LogConfig },
		blurb: noEffect + " (it named the official SDK's log4cplus configuration file; kvsgo logs through the GStreamer debug log: GST_DEBUG=kvssink:5). Default: NULL"},
	{name: "storage-size", nick: "Storage size", kind: kUint, defU: sink.DefaultStorageSizeMB,
		u:     func(s *sink.Settings) *uint { return &s.StorageSizeMB },
		blurb: "Memory for fragments waiting for upload or acknowledgement (kvsgo: with storage-path, the disk space for them instead; storage-memory bounds memory); when full, streaming-type decides between dropping the oldest and blocking. Unit: MiB. Default: 128"},
	{name: "stop-stream-timeout", nick: "Stop stream timeout", kind: kUint, defU: sink.DefaultStopStreamTimeoutSec,
		u:     func(s *sink.Settings) *uint { return &s.StopStreamTimeoutSec },
		blurb: "Longest wait at EOS for the last fragment acknowledgement; after it the element posts an error. Unit: seconds. Default: 120"},
	{name: "connection-timeout", nick: "Connection timeout", kind: kUint, defU: sink.DefaultConnectionTimeoutSec,
		u:     func(s *sink.Settings) *uint { return &s.ConnectionTimeoutSec },
		blurb: "Timeout to connect (TCP and TLS) to the service, per connection. Unit: seconds. Default: 5"},
	{name: "completion-timeout", nick: "Completion timeout", kind: kUint, defU: sink.DefaultCompletionTimeoutSec,
		u:     func(s *sink.Settings) *uint { return &s.CompletionTimeoutSec },
		blurb: "Timeout of one control-plane call (DescribeStream, CreateStream, GetDataEndpoint, ...), connection included. Unit: seconds. Default: 10"},
	{name: "credential-path", nick: "Credential file", kind: kString, defStr: sp(sink.DefaultCredentialPath),
		str:   func(s *sink.Settings) **string { return &s.CredentialPath },
		blurb: "File of rotating credentials (CREDENTIALS <access key> [<expiration>] <secret key> [<session token>]), used when neither the properties nor the environment hold a key. Default: .kvs/credential"},
	{name: "iot-certificate", nick: "IoT certificate", kind: kStructure,
		st:    func(s *sink.Settings) **sink.Structure { return &s.IoTCertificate },
		blurb: "Credentials from the AWS IoT credentials provider, first in the credential order; every field a string: \"iot-certificate, endpoint=<host[:port]>, cert-path=..., key-path=..., ca-path=<PEM file or directory>, role-aliases=...[, iot-thing-name=...][, connection-timeout=(string)3][, completion-timeout=(string)5]\" (thing name defaults to stream-name; timeouts in seconds). The element posts a kvs-iot-certificate element message with the certificate-id it presents. Default: NULL (not used)"},
	{name: "role-arn", nick: "Role ARN", kind: kString,
		str:   func(s *sink.Settings) **string { return &s.RoleARN },
		blurb: "kvsgo only: an IAM role to assume (STS AssumeRole) with whichever credentials were found (iot-certificate, access-key, environment, credential-path, else the AWS default chain); renewed before it expires. Default: NULL (no role)"},
	{name: "role-session-name", nick: "Role session name", kind: kString,
		str:   func(s *sink.Settings) **string { return &s.RoleSessionName },
		blurb: "kvsgo only: session name of role-arn, 2 to 64 characters. Default: NULL, which means kvsgo-<unix time>"},
	{name: "role-external-id", nick: "Role external ID", kind: kString, secret: true,
		str:   func(s *sink.Settings) **string { return &s.RoleExternalID },
		blurb: "kvsgo only: external ID the role's trust policy requires; reads back as ***** when set. Default: NULL"},
	{name: "role-duration", nick: "Role duration", kind: kUint, maxU: sink.MaxRoleDurationSec,
		u:     func(s *sink.Settings) *uint { return &s.RoleDurationSec },
		blurb: "kvsgo only: lifetime of role-arn's credentials, 900 to 43200 and at most the role's maximum. Unit: seconds. Default: 0, which means STS's default (900)"},
	{name: "stream-tags", nick: "Stream tags", kind: kStructure,
		st:    func(s *sink.Settings) **sink.Structure { return &s.StreamTags },
		blurb: "Tags of a stream this element creates, every field a string: \"tags, team=video, id=(string)42\". Default: NULL (no tags)"},
	{name: "file-start-time", nick: "File start time", kind: kUint64,
		u64:   func(s *sink.Settings) *uint64 { return &s.FileStartTime },
		blurb: "offline only: the epoch time the stream starts at; buffer timestamps count from it. Unit: seconds since 1970. Default: 0, which means the time the element was created"},
	{name: "disable-buffer-clipping", nick: "Disable buffer clipping", kind: kBool, noEffect: true,
		b:     func(s *sink.Settings) *bool { return &s.DisableBufferClipping },
		blurb: noEffect + " (the official element clipped buffers to the segment in its collect pads; kvsgo never clips, so no frame is dropped). Default: false"},
	{name: "use-original-pts", nick: "Use original PTS", kind: kBool,
		b:     func(s *sink.Settings) *bool { return &s.UseOriginalPTS },
		blurb: "If true, buffer timestamps are epoch times in nanoseconds and are used as they are; otherwise they are moved so that the first frame is stamped with the wall clock. Default: false"},
	{name: "get-kvs-metrics", nick: "Get KVS metrics", kind: kBool,
		b:     func(s *sink.Settings) *bool { return &s.GetKVSMetrics },
		blurb: "If true, emit stream-client-metric (official KvsSinkMetric layout) and post a kvs-metrics element message on every key frame. Default: false"},
	{name: "allow-create-stream", nick: "Allow create stream", kind: kBool, defB: sink.DefaultAllowCreateStream,
		b:     func(s *sink.Settings) *bool { return &s.AllowCreateStream },
		blurb: "If true, create the stream when it does not exist. Default: true"},
	{name: "control-plane-uri", nick: "Control plane URI", kind: kString,
		str:   func(s *sink.Settings) **string { return &s.ControlPlaneURI },
		blurb: "kvsgo only: the control-plane URL, e.g. http://127.0.0.1:4567 (plain http only for loopback hosts). Default: NULL, which means AWS_ENDPOINT_URL_KINESIS_VIDEO, else CONTROL_PLANE_URI, else AWS_ENDPOINT_URL, else https://kinesisvideo.<region>.amazonaws.com"},
	{name: "e2ee-recipients", nick: "E2EE recipients", kind: kString, playing: true,
		str:   func(s *sink.Settings) **string { return &s.E2EERecipients },
		blurb: "kvsgo only: end-to-end encryption. Comma-separated recipient public keys, inline (x25519:BASE64, xwing:BASE64) and/or key files written by `kvsgo keygen` (FILE.pub); only their holders can decrypt the video. Setting it turns E2EE on (with e2ee-signing-key); zero valid recipients is an error, never a plaintext stream. May change while playing: the next fragment starts a new epoch for the new set. Default: NULL (no encryption)"},
	{name: "e2ee-signing-key", nick: "E2EE signing key", kind: kString,
		str:   func(s *sink.Settings) **string { return &s.E2EESigningKey },
		blurb: "kvsgo only: path of this device's Ed25519 private key file (`kvsgo keygen -kind ed25519`); it signs every key bundle, and consumers pin its public key. Required with e2ee-recipients. Default: NULL"},
	{name: "e2ee-suite", nick: "E2EE cipher suite", kind: kString, defStr: sp(sink.DefaultE2EESuite),
		strv:  func(s *sink.Settings) *string { return &s.E2EESuite },
		blurb: "kvsgo only: SFrame cipher suite of end-to-end encryption: aes-256-gcm (RFC 9605 suite 5) or aes-128-gcm (suite 4). Default: aes-256-gcm"},
	{name: "e2ee-rotation-interval", nick: "E2EE rotation interval", kind: kUint, defU: sink.DefaultE2EERotationSec, minU: sink.MinE2EERotationSec,
		u:     func(s *sink.Settings) *uint { return &s.E2EERotationSec },
		blurb: "kvsgo only: longest life of an encryption epoch; a new epoch (fresh key, new bundle) starts at the first fragment after it. Unit: seconds. Default: 3600"},
	{name: "ca-cert-path", nick: "CA certificates", kind: kString,
		str:   func(s *sink.Settings) **string { return &s.CACertPath },
		blurb: "kvsgo only: a PEM file or a directory of PEM files whose certificates are trusted instead of the system roots for every HTTPS connection. Default: NULL, which means KVSSINK_CA_CERT_PATH, else the system roots"},
	{name: "metrics-interval", nick: "Metrics interval", kind: kUint,
		u:     func(s *sink.Settings) *uint { return &s.MetricsIntervalMs },
		blurb: "kvsgo only: post a kvs-metrics element message this often (bytes, frames and fragments sent and acknowledged, dropped frames, latency, store fill); 0 = never. Unit: milliseconds. Default: 0"},
	{name: "storage-path", nick: "Storage path", kind: kString,
		str:   func(s *sink.Settings) **string { return &s.StoragePath },
		blurb: "kvsgo only: a directory where fragments are also kept on disk until the service acknowledges them (a subdirectory per stream), so that after a crash, kill or power cut the next run uploads every frame this one had accepted, first and with its original times; storage-size then bounds the files and storage-memory the memory (fragments safely on disk leave memory when it is full and are read back to be sent). A live stream never waits for a slow disk (what the disk cannot keep up with is held in memory only); offline waits. A directory that fails is an element warning and the stream goes on in memory; two elements streaming the same stream from one directory is an error. Default: NULL (memory only)"},
	{name: "storage-memory", nick: "Storage memory", kind: kUint, defU: sink.DefaultStorageMemoryMB,
		u:     func(s *sink.Settings) *uint { return &s.StorageMemoryMB },
		blurb: "kvsgo only, with storage-path: memory for fragments waiting for upload or acknowledgement (at most storage-size); when it is full, fragments already on disk leave memory and are read back when they are sent. Unit: MiB. Default: 32"},
	{name: "sync", kind: kSync},
}

// paramSpecs builds the pspecs of one class (a pspec belongs to one class).
func paramSpecs() []*glib.ParamSpec {
	flags := glib.ParameterReadWrite | glib.ParameterFlags(gst.ParameterMutableReady)
	out := make([]*glib.ParamSpec, len(props))
	for i, p := range props {
		flags := flags
		if p.playing {
			flags |= glib.ParameterFlags(gst.ParameterMutablePlaying)
		}
		switch p.kind {
		case kString:
			out[i] = glib.NewStringParam(p.name, p.nick, p.blurb, p.defStr, flags)
		case kBool:
			out[i] = glib.NewBoolParam(p.name, p.nick, p.blurb, p.defB, flags)
		case kUint:
			lo, hi := p.uintRange()
			out[i] = glib.NewUintParam(p.name, p.nick, p.blurb, lo, hi, p.defU, flags)
		case kUint64:
			out[i] = glib.NewUint64Param(p.name, p.nick, p.blurb, 0, math.MaxUint64, 0, flags)
		case kEnum:
			out[i] = glib.ToParamSpec(unsafe.Pointer(C.kvsgo_pspec_streaming_type(cstr(p.name), cstr(p.nick), cstr(p.blurb), C.gint(sink.DefaultStreamingType))))
		case kStructure:
			out[i] = glib.ToParamSpec(unsafe.Pointer(C.kvsgo_pspec_structure(cstr(p.name), cstr(p.nick), cstr(p.blurb))))
		case kSync:
			out[i] = glib.ToParamSpec(unsafe.Pointer(C.kvsgo_pspec_sync()))
		}
	}
	return out
}

// cstr makes a C string that lives as long as the process, as the pspec
// strings flagged G_PARAM_STATIC_STRINGS must.
func cstr(s string) *C.char { return C.CString(s) }

// set stores a GValue of p's type in st. For a structure property it also
// returns the structure's serialisation, which get_property parses back.
func (p *prop) set(st *sink.Settings, v *C.GValue) (serialised *string) {
	switch p.kind {
	case kString:
		cs := C.kvsgo_value_get_string(v)
		if p.strv != nil {
			if cs == nil {
				*p.strv(st) = *p.defStr // NULL restores the default
			} else {
				*p.strv(st) = C.GoString(cs)
			}
			return nil
		}
		if cs == nil {
			*p.str(st) = nil
		} else {
			x := C.GoString(cs)
			*p.str(st) = &x
		}
	case kBool:
		*p.b(st) = C.kvsgo_value_get_boolean(v) != 0
	case kUint:
		*p.u(st) = uint(C.kvsgo_value_get_uint(v))
	case kUint64:
		*p.u64(st) = uint64(C.kvsgo_value_get_uint64(v))
	case kEnum:
		st.StreamingType = sink.StreamingType(C.kvsgo_value_get_enum(v))
	case kStructure:
		// The structure is borrowed from the GValue: copy what we need now.
		cs := C.kvsgo_value_get_structure(v)
		if cs == nil {
			*p.st(st) = nil
			return nil
		}
		*p.st(st) = structureData(cs)
		s := C.kvsgo_structure_to_string(cs)
		x := C.GoString(s)
		C.g_free(C.gpointer(unsafe.Pointer(s)))
		return &x
	}
	return nil
}

// get returns the GValue of p. serialised is the stored serialisation of a
// structure property.
func (p *prop) get(st *sink.Settings, serialised *string) *glib.Value {
	switch p.kind {
	case kString:
		v, _ := glib.ValueInit(glib.TYPE_STRING)
		var x *string
		if p.strv != nil {
			x = p.strv(st)
		} else {
			x = *p.str(st)
		}
		switch {
		case x == nil: // NULL
		case p.secret:
			v.SetString(secretMask)
		default:
			v.SetString(*x)
		}
		return v
	case kBool:
		v, _ := glib.ValueInit(glib.TYPE_BOOLEAN)
		v.SetBool(*p.b(st))
		return v
	case kUint:
		v, _ := glib.ValueInit(glib.TYPE_UINT)
		v.SetUInt(*p.u(st))
		return v
	case kUint64:
		v, _ := glib.ValueInit(glib.TYPE_UINT64)
		v.SetUInt64(*p.u64(st))
		return v
	case kEnum:
		v, _ := glib.ValueInit(glib.Type(C.kvsgo_streaming_type_get_type()))
		v.SetEnum(int(st.StreamingType))
		return v
	case kStructure:
		v, _ := glib.ValueInit(glib.Type(C.gst_structure_get_type()))
		if *p.st(st) != nil && serialised != nil {
			cs := C.CString(*serialised)
			defer C.free(unsafe.Pointer(cs))
			C.kvsgo_value_take_structure_string((*C.GValue)(v.Native()), cs)
		}
		return v
	}
	return nil
}

// structureData copies a GstStructure into plain data: its name, its fields
// in order, each with the GType name of its value and its string form (the
// string itself for G_TYPE_STRING, gst_value_serialize otherwise).
func structureData(cs *C.GstStructure) *sink.Structure {
	st := &sink.Structure{Name: C.GoString(C.kvsgo_structure_name(cs)), Fields: map[string]sink.TypedValue{}}
	n := int(C.kvsgo_structure_n_fields(cs))
	for i := 0; i < n; i++ {
		f := C.kvsgo_structure_field_name(cs, C.gint(i))
		name := C.GoString(f)
		tv := sink.TypedValue{Type: C.GoString(C.kvsgo_structure_field_type(cs, f))}
		if val := C.kvsgo_structure_field_string(cs, f); val != nil {
			tv.Value = C.GoString(val)
			C.g_free(C.gpointer(unsafe.Pointer(val)))
		}
		st.Fields[name] = tv
		st.Order = append(st.Order, name)
	}
	return st
}
