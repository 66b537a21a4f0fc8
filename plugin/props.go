package main

/*
#include "kvsgo.h"
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"

	"github.com/kvsgo/kvsgo/pkg/sink"
)

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

// prop is one GObject property and how it maps to sink.Settings.
type prop struct {
	name, nick, blurb string
	kind              propKind
	// noEffect marks properties that only tune the official C SDK's
	// internals: accepted, documented, logged once when set.
	noEffect bool
	// secret properties read back as "*****" when set.
	secret bool
	str    func(*sink.Settings) **string
	strv   func(*sink.Settings) *string // non-nullable strings
	b      func(*sink.Settings) *bool
	u      func(*sink.Settings) *uint
	u64    func(*sink.Settings) *uint64
	st     func(*sink.Settings) **sink.Structure
	defStr *string
	defB   bool
	defU   uint
}

func sp(s string) *string { return &s }

var props = []prop{
	{name: "stream-name", nick: "Stream name", blurb: "Name of the destination stream ([a-zA-Z0-9_.-], 1 to 256 characters); also the default IoT thing name", kind: kString, strv: func(s *sink.Settings) *string { return &s.StreamName }, defStr: sp(sink.DefaultStreamName)},
	{name: "user-agent", nick: "User agent", blurb: "Name added to the User-Agent of every request", kind: kString, strv: func(s *sink.Settings) *string { return &s.UserAgent }, defStr: sp(sink.DefaultUserAgent)},
	{name: "retention-period", nick: "Retention period", blurb: "Data retention of a stream this element creates. Unit: hours; 0 = no retention (then RECEIVED acks end the stream instead of PERSISTED)", kind: kUint, u: func(s *sink.Settings) *uint { return &s.RetentionHours }, defU: sink.DefaultRetentionHours},
	{name: "streaming-type", nick: "Streaming type", blurb: "realtime and near-realtime stream live; offline streams a file as fast as the service takes it", kind: kEnum},
	{name: "content-type", nick: "Content type", blurb: "MIME type of a stream this element creates. NULL (the default) derives it from the caps (video/h264, video/h265, audio/aac, audio/alaw, audio/mulaw)", kind: kString, str: func(s *sink.Settings) **string { return &s.ContentType }},
	{name: "max-latency", nick: "Max latency", blurb: "Stream latency above which the connection is reset. Unit: seconds", kind: kUint, u: func(s *sink.Settings) *uint { return &s.MaxLatencySec }, defU: sink.DefaultMaxLatencySec},
	{name: "fragment-duration", nick: "Fragment duration", blurb: "Minimum fragment length when key-frame-fragmentation=false (1000 to 30000). Unit: milliseconds", kind: kUint, u: func(s *sink.Settings) *uint { return &s.FragmentDurationMs }, defU: sink.DefaultFragmentDurationMs},
	{name: "timecode-scale", nick: "Timecode scale", blurb: "Matroska timecode unit (at least 1). Unit: milliseconds", kind: kUint, u: func(s *sink.Settings) *uint { return &s.TimecodeScaleMs }, defU: sink.DefaultTimecodeScaleMs},
	{name: "key-frame-fragmentation", nick: "Key frame fragmentation", blurb: "If true, start a fragment at every key frame; otherwise at the first key frame after fragment-duration", kind: kBool, b: func(s *sink.Settings) *bool { return &s.KeyFrameFragmentation }, defB: sink.DefaultKeyFrameFragmentation},
	{name: "frame-timecodes", nick: "Frame timecodes", blurb: "Use the buffers' timestamps; if false, stamp frames with the wall clock on arrival", kind: kBool, b: func(s *sink.Settings) *bool { return &s.FrameTimecodes }, defB: sink.DefaultFrameTimecodes},
	{name: "absolute-fragment-times", nick: "Absolute fragment times", blurb: "Send absolute (epoch) cluster timecodes; if false, relative to the stream start", kind: kBool, b: func(s *sink.Settings) *bool { return &s.AbsoluteFragmentTimes }, defB: sink.DefaultAbsoluteFragmentTimes},
	{name: "fragment-acks", nick: "Fragment acks", blurb: "Ask the service for fragment acknowledgements and wait for the last one at EOS", kind: kBool, b: func(s *sink.Settings) *bool { return &s.FragmentAcks }, defB: sink.DefaultFragmentAcks},
	{name: "restart-on-error", nick: "Restart on error", blurb: "Reconnect and resend after a retriable error; if false the first error ends the stream", kind: kBool, b: func(s *sink.Settings) *bool { return &s.RestartOnError }, defB: sink.DefaultRestartOnError},
	{name: "recalculate-metrics", nick: "Recalculate metrics", blurb: "Accepted for compatibility; no effect in kvsgo (it tuned the official SDK's frame-rate metrics)", kind: kBool, noEffect: true, b: func(s *sink.Settings) *bool { return &s.RecalculateMetrics }, defB: sink.DefaultRecalculateMetrics},
	{name: "framerate", nick: "Framerate", blurb: "Accepted for compatibility; no effect in kvsgo (it sized the official SDK's frame index; kvsgo sizes its store in bytes). Unit: frames per second", kind: kUint, noEffect: true, u: func(s *sink.Settings) *uint { return &s.Framerate }, defU: sink.DefaultFramerate},
	{name: "avg-bandwidth-bps", nick: "Average bandwidth", blurb: "Accepted for compatibility; no effect in kvsgo (an initial metric of the official SDK). Unit: bits per second", kind: kUint, noEffect: true, u: func(s *sink.Settings) *uint { return &s.AvgBandwidthBps }, defU: sink.DefaultAvgBandwidthBps},
	{name: "buffer-duration", nick: "Buffer duration", blurb: "How much stream may wait for upload. Unit: seconds", kind: kUint, u: func(s *sink.Settings) *uint { return &s.BufferDurationSec }, defU: sink.DefaultBufferDurationSec},
	{name: "replay-duration", nick: "Replay duration", blurb: "How far back to resend after a reconnect. Unit: seconds", kind: kUint, u: func(s *sink.Settings) *uint { return &s.ReplayDurationSec }, defU: sink.DefaultReplayDurationSec},
	{name: "connection-staleness", nick: "Connection staleness", blurb: "Reset the connection after this long without a BUFFERING ack. Unit: seconds", kind: kUint, u: func(s *sink.Settings) *uint { return &s.ConnectionStaleSec }, defU: sink.DefaultConnectionStaleSec},
	{name: "codec-id", nick: "Codec ID", blurb: "Matroska CodecID of the video track; the default follows the caps (V_MPEG4/ISO/AVC or V_MPEGH/ISO/HEVC)", kind: kString, strv: func(s *sink.Settings) *string { return &s.CodecID }, defStr: sp(sink.DefaultCodecID)},
	{name: "track-name", nick: "Track name", blurb: "Matroska track name of the video track", kind: kString, strv: func(s *sink.Settings) *string { return &s.TrackName }, defStr: sp(sink.DefaultTrackName)},
	{name: "access-key", nick: "Access key", blurb: "AWS access key id. NULL (the default): use AWS_ACCESS_KEY_ID", kind: kString, str: func(s *sink.Settings) **string { return &s.AccessKey }},
	{name: "secret-key", nick: "Secret key", blurb: "AWS secret access key. NULL (the default): use AWS_SECRET_ACCESS_KEY. Reads back as ***** when set", kind: kString, secret: true, str: func(s *sink.Settings) **string { return &s.SecretKey }},
	{name: "session-token", nick: "Session token", blurb: "AWS session token. NULL (the default): use AWS_SESSION_TOKEN. Reads back as ***** when set", kind: kString, secret: true, str: func(s *sink.Settings) **string { return &s.SessionToken }},
	{name: "aws-region", nick: "AWS region", blurb: "AWS region. NULL (the default): AWS_REGION, else AWS_DEFAULT_REGION, else us-west-2. An explicit value always wins", kind: kString, str: func(s *sink.Settings) **string { return &s.AWSRegion }},
	{name: "rotation-period", nick: "Rotation period", blurb: "Accepted for compatibility; no effect (the official element stores it unused). Unit: seconds", kind: kUint, noEffect: true, u: func(s *sink.Settings) *uint { return &s.RotationPeriodSec }, defU: sink.DefaultRotationPeriodSec},
	{name: "log-config", nick: "Log configuration", blurb: "Accepted for compatibility; no effect (the official SDK's log4cplus file). kvsgo logs through GST_DEBUG=kvssink:5", kind: kString, noEffect: true, str: func(s *sink.Settings) **string { return &s.LogConfig }, defStr: sp(sink.DefaultLogConfig)},
	{name: "storage-size", nick: "Storage size", blurb: "Memory for fragments awaiting upload and acknowledgement. Unit: MB", kind: kUint, u: func(s *sink.Settings) *uint { return &s.StorageSizeMB }, defU: sink.DefaultStorageSizeMB},
	{name: "stop-stream-timeout", nick: "Stop stream timeout", blurb: "Longest wait at EOS for the last fragment acknowledgement. Unit: seconds", kind: kUint, u: func(s *sink.Settings) *uint { return &s.StopStreamTimeoutSec }, defU: sink.DefaultStopStreamTimeoutSec},
	{name: "connection-timeout", nick: "Connection timeout", blurb: "Connect (TCP and TLS) timeout of every request. Unit: seconds", kind: kUint, u: func(s *sink.Settings) *uint { return &s.ConnectionTimeoutSec }, defU: sink.DefaultConnectionTimeoutSec},
	{name: "completion-timeout", nick: "Completion timeout", blurb: "Timeout of one control-plane call. Unit: seconds", kind: kUint, u: func(s *sink.Settings) *uint { return &s.CompletionTimeoutSec }, defU: sink.DefaultCompletionTimeoutSec},
	{name: "credential-path", nick: "Credential file", blurb: "File with rotating credentials (CREDENTIALS <key> [<expiration>] <secret> [<token>])", kind: kString, str: func(s *sink.Settings) **string { return &s.CredentialPath }, defStr: sp(sink.DefaultCredentialPath)},
	{name: "iot-certificate", nick: "IoT certificate", blurb: "AWS IoT credentials provider: \"iot-certificate,endpoint=…,cert-path=…,key-path=…,ca-path=…,role-aliases=…\"", kind: kStructure, st: func(s *sink.Settings) **sink.Structure { return &s.IoTCertificate }},
	{name: "stream-tags", nick: "Stream tags", blurb: "Tags for the stream, every field a string: \"tags,team=video,env=(string)1\"", kind: kStructure, st: func(s *sink.Settings) **sink.Structure { return &s.StreamTags }},
	{name: "file-start-time", nick: "File start time", blurb: "offline: epoch the stream starts at. 0 (the default): the time the element started. Unit: seconds", kind: kUint64, u64: func(s *sink.Settings) *uint64 { return &s.FileStartTime }},
	{name: "disable-buffer-clipping", nick: "Disable buffer clipping", blurb: "Accepted for compatibility; no effect (kvsgo never clips buffers to the segment, so no frame is lost)", kind: kBool, noEffect: true, b: func(s *sink.Settings) *bool { return &s.DisableBufferClipping }},
	{name: "use-original-pts", nick: "Use original PTS", blurb: "Use buffer timestamps as epoch nanoseconds instead of rebasing them on the wall clock at the first frame", kind: kBool, b: func(s *sink.Settings) *bool { return &s.UseOriginalPTS }},
	{name: "get-kvs-metrics", nick: "Get KVS metrics", blurb: "Emit stream-client-metric on key frames", kind: kBool, b: func(s *sink.Settings) *bool { return &s.GetKVSMetrics }},
	{name: "allow-create-stream", nick: "Allow create stream", blurb: "Create the stream if it does not exist", kind: kBool, b: func(s *sink.Settings) *bool { return &s.AllowCreateStream }, defB: sink.DefaultAllowCreateStream},
	{name: "control-plane-uri", nick: "Control plane URI", blurb: "Control-plane URL. NULL (the default): AWS_ENDPOINT_URL_KINESIS_VIDEO, CONTROL_PLANE_URI, AWS_ENDPOINT_URL, else the region's AWS endpoint. http:// only for loopback", kind: kString, str: func(s *sink.Settings) **string { return &s.ControlPlaneURI }},
	{name: "sync", kind: kSync},
}

func paramSpecs() []*glib.ParamSpec {
	flags := glib.ParameterReadWrite | glib.ParameterFlags(gst.ParameterMutableReady)
	out := make([]*glib.ParamSpec, len(props))
	for i, p := range props {
		switch p.kind {
		case kString:
			out[i] = glib.NewStringParam(p.name, p.nick, p.blurb, p.defStr, flags)
		case kBool:
			out[i] = glib.NewBoolParam(p.name, p.nick, p.blurb, p.defB, flags)
		case kUint:
			out[i] = glib.NewUintParam(p.name, p.nick, p.blurb, 0, math.MaxUint32, p.defU, flags)
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

// cstr makes a C string that lives for the process (pspec strings are static).
func cstr(s string) *C.char { return C.CString(s) }

// setProp applies a GValue to the settings.
func (p *prop) set(s *sink.Settings, v *C.GValue) error {
	switch p.kind {
	case kString:
		cs := C.kvsgo_value_get_string(v)
		if p.strv != nil {
			if cs == nil {
				return fmt.Errorf("%s cannot be NULL", p.name)
			}
			*p.strv(s) = C.GoString(cs)
			return nil
		}
		if cs == nil {
			*p.str(s) = nil
		} else {
			x := C.GoString(cs)
			*p.str(s) = &x
		}
	case kBool:
		*p.b(s) = C.kvsgo_value_get_boolean(v) != 0
	case kUint:
		*p.u(s) = uint(C.kvsgo_value_get_uint(v))
	case kUint64:
		*p.u64(s) = uint64(C.kvsgo_value_get_uint64(v))
	case kEnum:
		s.StreamingType = sink.StreamingType(C.kvsgo_value_get_enum(v))
	case kStructure:
		cs := C.kvsgo_value_dup_structure(v)
		if cs == nil {
			*p.st(s) = nil
			return nil
		}
		defer C.gst_structure_free(cs)
		*p.st(s) = structureData(cs)
	}
	return nil
}

// get builds the GValue of a property.
func (p *prop) get(s *sink.Settings) *glib.Value {
	switch p.kind {
	case kString:
		v, _ := glib.ValueInit(glib.TYPE_STRING)
		var x *string
		if p.strv != nil {
			y := *p.strv(s)
			x = &y
		} else {
			x = *p.str(s)
		}
		if x != nil {
			if p.secret {
				v.SetString("*****")
			} else {
				v.SetString(*x)
			}
		}
		return v
	case kBool:
		v, _ := glib.ValueInit(glib.TYPE_BOOLEAN)
		v.SetBool(*p.b(s))
		return v
	case kUint:
		v, _ := glib.ValueInit(glib.TYPE_UINT)
		v.SetUInt(*p.u(s))
		return v
	case kUint64:
		v, _ := glib.ValueInit(glib.TYPE_UINT64)
		v.SetUInt64(*p.u64(s))
		return v
	case kEnum:
		v, _ := glib.ValueInit(glib.Type(C.kvsgo_streaming_type_get_type()))
		v.SetEnum(int(s.StreamingType))
		return v
	case kStructure:
		v, _ := glib.ValueInit(glib.Type(C.gst_structure_get_type()))
		if st := *p.st(s); st != nil {
			cs := C.CString(structureString(st))
			defer C.free(unsafe.Pointer(cs))
			if c := C.kvsgo_structure_from_string(cs); c != nil {
				C.kvsgo_value_take_structure((*C.GValue)(v.Native()), c)
			}
		}
		return v
	}
	return nil
}

// structureData copies a GstStructure into plain data.
func structureData(cs *C.GstStructure) *sink.Structure {
	st := &sink.Structure{Name: C.GoString(C.kvsgo_structure_name(cs)), Fields: map[string]sink.TypedValue{}}
	n := int(C.kvsgo_structure_n_fields(cs))
	for i := 0; i < n; i++ {
		f := C.kvsgo_structure_field_name(cs, C.gint(i))
		name := C.GoString(f)
		val := C.kvsgo_structure_field_string(cs, f)
		tv := sink.TypedValue{Type: C.GoString(C.kvsgo_structure_field_type(cs, f))}
		if val != nil {
			tv.Value = C.GoString(val)
			C.g_free(C.gpointer(unsafe.Pointer(val)))
		}
		st.Fields[name] = tv
		st.Order = append(st.Order, name)
	}
	return st
}

// structureString serialises plain structure data back for get_property.
func structureString(st *sink.Structure) string {
	out := st.Name
	for _, k := range st.Order {
		f := st.Fields[k]
		if f.Type == "gchararray" {
			out += fmt.Sprintf(", %s=(string)%q", k, f.Value)
		} else {
			out += fmt.Sprintf(", %s=%s", k, f.Value)
		}
	}
	return out
}
