package main

/*
#include "plugin_desc.h"
*/
import "C"

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/sink"
	"github.com/kvsgo/kvsgo/pkg/source"
)

// kvssrc's properties: the connection and credential properties of kvssink
// (the same entries of props, acting on a sink.Settings, so that both
// elements resolve endpoint, region, credentials and CAs alike), then its
// own (srcProps).

// srcSharedProps are the kvssink properties kvssrc has too.
var srcSharedProps = []string{
	"stream-name", "aws-region", "control-plane-uri", "access-key", "secret-key", "session-token",
	"credential-path", "iot-certificate", "role-arn", "role-session-name", "role-external-id", "role-duration",
	"ca-cert-path", "connection-timeout", "completion-timeout", "user-agent",
}

// srcSettings are kvssrc's own properties.
type srcSettings struct {
	startSelector     string
	fragmentNumber    string
	startTime         string // RFC 3339
	endTime           string // RFC 3339; set: archived playback
	timestamps        string // producer or server (archived)
	continuationToken string
	privateKeys       string
	deviceKeys        string
	idleTimeoutSec    uint
	reconnectSec      uint
	latencyMs         uint
}

const (
	defaultSrcLatencyMs  = 3000
	defaultReconnectSec  = uint(source.DefaultReconnectTimeout / time.Second)
	defaultStartSelector = "now"
)

type srcProp struct {
	name, nick, blurb string
	str               func(*srcSettings) *string
	u                 func(*srcSettings) *uint
	defStr            string
	defU              uint
}

var srcOwnProps = []srcProp{
	{name: "start-selector", nick: "Start selector", defStr: defaultStartSelector,
		str:   func(s *srcSettings) *string { return &s.startSelector },
		blurb: "Where live playback starts: now, earliest, fragment-number (after fragment-number), producer-timestamp or server-timestamp (from start-time), continuation-token (after continuation-token). Ignored when end-time is set. Default: now"},
	{name: "fragment-number", nick: "Fragment number",
		str:   func(s *srcSettings) *string { return &s.fragmentNumber },
		blurb: "With start-selector=fragment-number: the fragment to start at. Default: NULL"},
	{name: "start-time", nick: "Start time",
		str:   func(s *srcSettings) *string { return &s.startTime },
		blurb: "RFC 3339 time (e.g. 2026-12-05T19:00:00.5Z): where producer-timestamp and server-timestamp live playback starts, and the start of archived playback. Default: NULL"},
	{name: "end-time", nick: "End time",
		str:   func(s *srcSettings) *string { return &s.endTime },
		blurb: "RFC 3339 time: when set, the element plays the archived fragments from start-time to end-time (ListFragments + GetMediaForFragmentList) and ends with EOS, instead of live GetMedia. Default: NULL (live)"},
	{name: "timestamp-type", nick: "Timestamp type", defStr: "producer",
		str:   func(s *srcSettings) *string { return &s.timestamps },
		blurb: "Archived playback: which fragment timestamps start-time and end-time select, producer or server. Default: producer"},
	{name: "continuation-token", nick: "Continuation token",
		str:   func(s *srcSettings) *string { return &s.continuationToken },
		blurb: "With start-selector=continuation-token: the token to resume after (as in a kvs-fragment-received message). Default: NULL"},
	{name: "private-keys", nick: "Private keys",
		str:   func(s *srcSettings) *string { return &s.privateKeys },
		blurb: "End-to-end encrypted streams: comma-separated paths of this consumer's recipient private key files (as kvsdecrypt); frames are decrypted in-line. Needs device-keys. Default: NULL (plain stream)"},
	{name: "device-keys", nick: "Device keys",
		str:   func(s *srcSettings) *string { return &s.deviceKeys },
		blurb: "End-to-end encrypted streams: comma-separated device public signing keys to trust (files or inline \"ed25519:...\"), as kvsdecrypt. Default: NULL"},
	{name: "idle-timeout", nick: "Idle timeout",
		u:     func(s *srcSettings) *uint { return &s.idleTimeoutSec },
		blurb: "Live: end the stream with EOS once no new frame has arrived for this long (0 = play until stopped). Unit: seconds. Default: 0"},
	{name: "reconnect-timeout", nick: "Reconnect timeout", defU: defaultReconnectSec,
		u:     func(s *srcSettings) *uint { return &s.reconnectSec },
		blurb: "After a dropped connection or a service error worth retrying, reconnect from the last continuation token until this long has passed without a frame, then fail with an element error. Unit: seconds. Default: 30"},
	{name: "latency", nick: "Latency", defU: defaultSrcLatencyMs,
		u:     func(s *srcSettings) *uint { return &s.latencyMs },
		blurb: "Live: the latency the element reports, from the producer's capture to a frame leaving the element: a fragment's duration (the service delivers whole fragments) plus upload and delivery. Unit: milliseconds. Default: 3000"},
}

// srcPropIndex: pspec id -> (shared props index, or -1; own index).
type srcPropRef struct{ shared, own int }

var srcPropRefs []srcPropRef

func srcParamSpecs() []*glib.ParamSpec {
	var out []*glib.ParamSpec
	shared := paramSpecs() // kvssink's, for the shared entries
	srcPropRefs = srcPropRefs[:0]
	for _, name := range srcSharedProps {
		for i := range props {
			if props[i].name != name {
				continue
			}
			if name == "stream-name" {
				out = append(out, glib.NewStringParam("stream-name", "Stream name",
					"Name of the stream to play: 1 to 256 letters, digits, '_', '.' or '-'. Default: DEFAULT_STREAM",
					sp(sink.DefaultStreamName), glib.ParameterReadWrite|glib.ParameterFlags(gst.ParameterMutableReady)))
			} else {
				out = append(out, shared[i])
			}
			srcPropRefs = append(srcPropRefs, srcPropRef{shared: i, own: -1})
		}
	}
	flags := glib.ParameterReadWrite | glib.ParameterFlags(gst.ParameterMutableReady)
	for i, p := range srcOwnProps {
		if p.str != nil {
			var def *string
			if p.defStr != "" {
				def = sp(p.defStr)
			}
			out = append(out, glib.NewStringParam(p.name, p.nick, p.blurb, def, flags))
		} else {
			out = append(out, glib.NewUintParam(p.name, p.nick, p.blurb, 0, math.MaxUint32, p.defU, flags))
		}
		srcPropRefs = append(srcPropRefs, srcPropRef{shared: -1, own: i})
	}
	return out
}

func defaultSrcSettings() srcSettings {
	var s srcSettings
	for _, p := range srcOwnProps {
		if p.str != nil {
			*p.str(&s) = p.defStr
		} else {
			*p.u(&s) = p.defU
		}
	}
	return s
}

func parseTime(prop, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q is not an RFC 3339 time such as 2026-12-05T19:00:00Z", source.ErrSettings, prop, v)
	}
	return t, nil
}

// sourceConfig turns the settings into a source.Config (without the
// connection, which sink.Settings.Config resolves).
func (s srcSettings) sourceConfig(c sink.Config) (source.Config, error) {
	cfg := source.Config{StreamName: c.StreamName, Region: c.Region, Endpoint: c.Endpoint, Credentials: c.Credentials,
		HTTPClient: c.HTTPClient, CompletionTimeout: c.CompletionTimeout,
		IdleTimeout:      time.Duration(s.idleTimeoutSec) * time.Second,
		ReconnectTimeout: time.Duration(s.reconnectSec) * time.Second}
	if cfg.ReconnectTimeout == 0 {
		cfg.ReconnectTimeout = source.DefaultReconnectTimeout
	}
	if s.endTime != "" {
		if s.startTime == "" {
			return cfg, fmt.Errorf("%w: end-time is set (archived playback) but start-time is not", source.ErrSettings)
		}
		from, err := parseTime("start-time", s.startTime)
		if err != nil {
			return cfg, err
		}
		to, err := parseTime("end-time", s.endTime)
		if err != nil {
			return cfg, err
		}
		r := &source.Range{Start: from, End: to}
		switch strings.ToLower(s.timestamps) {
		case "", "producer":
		case "server":
			r.ServerTimestamps = true
		default:
			return cfg, fmt.Errorf("%w: timestamp-type %q is not producer or server", source.ErrSettings, s.timestamps)
		}
		cfg.Archive = r
	} else {
		sel := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s.startSelector), "-", "_"))
		if sel == "" {
			sel = "NOW"
		}
		cfg.Start = kvs.StartSelector{Type: sel, AfterFragmentNumber: s.fragmentNumber, ContinuationToken: s.continuationToken}
		if (sel == "PRODUCER_TIMESTAMP" || sel == "SERVER_TIMESTAMP") && s.startTime != "" {
			t, err := parseTime("start-time", s.startTime)
			if err != nil {
				return cfg, err
			}
			cfg.Start.StartTimestamp = t
		}
	}
	if (s.privateKeys != "") != (s.deviceKeys != "") {
		return cfg, fmt.Errorf("%w: private-keys and device-keys go together: this consumer's private keys and the camera's public key", source.ErrSettings)
	}
	if s.privateKeys != "" {
		dc, err := decryptSettings{privateKeys: s.privateKeys, deviceKeys: s.deviceKeys, streamName: c.StreamName}.config()
		if err != nil {
			return cfg, fmt.Errorf("%w: %w", source.ErrSettings, err)
		}
		cfg.Decrypt = &dc
	}
	return cfg, nil
}

// ---- GObject properties ----

func (e *srcElement) SetProperty(_ *glib.Object, id uint, value *glib.Value) {
	defer e.msg().recoverPanic("kvssrc set_property", nil)
	if int(id) >= len(srcPropRefs) {
		return
	}
	ref := srcPropRefs[id]
	e.mu.Lock()
	defer e.mu.Unlock()
	if ref.shared >= 0 {
		p := &props[ref.shared]
		if s := p.set(&e.shared, (*C.GValue)(value.Native())); s != nil {
			e.structs[p.name] = *s
		} else if p.kind == kStructure {
			delete(e.structs, p.name)
		}
		return
	}
	p := srcOwnProps[ref.own]
	if p.str != nil {
		s, err := value.GetString()
		if err != nil || (s == "" && p.defStr != "") {
			s = p.defStr
		}
		*p.str(&e.own) = s
		if p.name == "end-time" {
			e.setLive(s == "")
		}
		return
	}
	v, _ := value.GoValue()
	if u, ok := v.(uint); ok {
		*p.u(&e.own) = u
	}
}

func (e *srcElement) GetProperty(_ *glib.Object, id uint) *glib.Value {
	defer e.msg().recoverPanic("kvssrc get_property", nil)
	if int(id) >= len(srcPropRefs) {
		return nil
	}
	ref := srcPropRefs[id]
	e.mu.Lock()
	defer e.mu.Unlock()
	if ref.shared >= 0 {
		p := &props[ref.shared]
		var ser *string
		if s, ok := e.structs[p.name]; ok {
			ser = &s
		}
		return p.get(&e.shared, ser)
	}
	p := srcOwnProps[ref.own]
	if p.str != nil {
		v, _ := glib.ValueInit(glib.TYPE_STRING)
		if s := *p.str(&e.own); s != "" {
			v.SetString(s)
		}
		return v
	}
	v, _ := glib.ValueInit(glib.TYPE_UINT)
	v.SetUInt(*p.u(&e.own))
	return v
}
