package main

/*
#include "av.h"
#include "plugin_desc.h"
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"

	"github.com/kvsgo/kvsgo/pkg/sink"
)

// The request pads' caps, as the official element's video_%u and audio_%u
// (plus the byte-stream and avc3/hev1 forms the core converts).
const (
	videoCaps = "video/x-h264, stream-format=(string){ avc, avc3, byte-stream }, alignment=(string)au; " +
		"video/x-h265, stream-format=(string){ hvc1, hev1, byte-stream }, alignment=(string)au"
	audioCaps = "audio/mpeg, mpegversion=(int){ 2, 4 }, stream-format=(string)raw, channels=(int)[ 1, MAX ], rate=(int)[ 1, MAX ]; " +
		"audio/x-alaw, channels=(int){ 1, 2 }, rate=(int)[ 8000, 192000 ]; " +
		"audio/x-mulaw, channels=(int){ 1, 2 }, rate=(int)[ 8000, 192000 ]"
)

// addPadTemplates adds video_%u and audio_%u before the always sink pad:
// a bare "sink." link takes the first compatible template when the sink
// pad is already linked, so the request templates must come first.
func addPadTemplates(c *gst.ElementClass) {
	c.AddPadTemplate(gst.NewPadTemplate("video_%u", gst.PadDirectionSink, gst.PadPresenceRequest, gst.NewCapsFromString(videoCaps)))
	c.AddPadTemplate(gst.NewPadTemplate("audio_%u", gst.PadDirectionSink, gst.PadPresenceRequest, gst.NewCapsFromString(audioCaps)))
	c.AddPadTemplate(gst.NewPadTemplate("sink", gst.PadDirectionSink, gst.PadPresenceAlways, gst.NewCapsFromString(sinkCaps)))
}

// avPads is what the element's pads carry for one run (start to stop).
type avPads struct {
	av          bool           // a video and an audio pad are linked
	primaryKind sink.TrackKind // GstBaseSink's pad (from its caps)
	secondKind  sink.TrackKind // the plain request pad
}

// contentTypes maps caps media types to the official content types.
var contentTypes = map[string]string{
	"video/x-h264": "video/h264", "video/x-h265": "video/h265",
	"audio/mpeg": "audio/aac", "audio/x-alaw": "audio/alaw", "audio/x-mulaw": "audio/mulaw",
}

// padsAtStart reads which pads are linked and sets the core's tracks and
// content type as the official element does at start.
func (e *element) padsAtStart(cfg *sink.Config) {
	var primary C.gboolean
	var second C.int
	var pm, sm *C.gchar
	C.kvsgo_av_pads(e.el, &primary, &second, &pm, &sm)
	primaryMedia, secondMedia := C.GoString(pm), C.GoString(sm)
	C.g_free(C.gpointer(unsafe.Pointer(pm)))
	C.g_free(C.gpointer(unsafe.Pointer(sm)))
	p := avPads{secondKind: sink.TrackKind(second)}
	p.av = primary != 0 && p.secondKind != sink.TrackAny
	var parts []string
	if ct := contentTypes[primaryMedia]; ct != "" {
		parts = append(parts, ct)
	}
	if ct := contentTypes[secondMedia]; ct != "" && p.av {
		if p.secondKind == sink.TrackVideo {
			parts = append([]string{ct}, parts...) // video first
		} else {
			parts = append(parts, ct)
		}
	}
	if len(parts) > 0 {
		cfg.MediaType = join(parts)
	}
	cfg.AV = p.av
	stall := cfg.StallTimeout
	if stall <= 0 {
		stall = sink.DefaultStallTimeout
	}
	C.kvsgo_av_set_stall(e.el, C.gint64(stall.Microseconds()))
	e.mu.Lock()
	e.pads = p
	e.mu.Unlock()
}

func join(parts []string) string {
	out := parts[0]
	for _, p := range parts[1:] {
		out += "," + p
	}
	return out
}

// padName names the pad carrying a track, for messages.
func (e *element) padName(primary bool) string {
	n := C.kvsgo_av_pad_name(e.el, 0, boolC(primary))
	if n == nil {
		return "?"
	}
	defer C.g_free(C.gpointer(unsafe.Pointer(n)))
	return C.GoString(n)
}

// trackPad names the pad that carries a track of this run.
func (e *element) trackPad(k sink.TrackKind) string {
	e.mu.Lock()
	p := e.pads
	e.mu.Unlock()
	return e.padName(!p.av || k != p.secondKind)
}

func boolC(b bool) C.gboolean {
	if b {
		return C.TRUE
	}
	return C.FALSE
}

// goElement returns the element of a kvssink or kvsgosink GObject.
func goElement(el *C.GstElement) *element {
	switch v := glib.FromObjectUnsafePrivate(unsafe.Pointer(el)).(type) {
	case *kvsSink:
		return &v.element
	case *kvsgoSink:
		return &v.element
	}
	return nil
}

//export kvsgoAvCaps
func kvsgoAvCaps(el *C.GstElement, pad *C.GstPad, kind C.int, caps *C.GstCaps) (ok C.gboolean) {
	e := goElement(el)
	defer e.recoverPanic("caps", func() { ok = C.FALSE })
	name := e.padName(false)
	core := e.getCore()
	e.mu.Lock()
	p := e.pads
	e.mu.Unlock()
	if core == nil || !p.av {
		e.post(kindError, domainStream, int(gst.StreamErrorFailed),
			fmt.Sprintf("Pad %s was linked after kvssink started: its tracks are fixed at start; link every pad before PAUSED", name), "caps: "+capsString(caps))
		return C.FALSE
	}
	f, err := formatFromCaps(caps)
	if err == nil && sink.KindOf(f.Codec) != p.secondKind {
		err = fmt.Errorf("%w: %s caps on the %s pad", sink.ErrFormat, sink.KindOf(f.Codec), p.secondKind)
	}
	if err == nil && p.primaryKind == p.secondKind {
		err = fmt.Errorf("%w: pads %s and %s both carry %s; kvssink takes one video and one audio track", sink.ErrFormat, e.padName(true), name, p.secondKind)
	}
	if err == nil {
		err = core.SetFormat(f)
	}
	if err != nil {
		e.fail(fmt.Sprintf("Cannot stream these caps on pad %s", name), err, "caps: "+capsString(caps))
		return C.FALSE
	}
	e.log(levelDebug, name+" caps: "+capsString(caps))
	return C.TRUE
}

//export kvsgoAvChain
func kvsgoAvChain(el *C.GstElement, pad *C.GstPad, kind C.int, cb *C.GstBuffer) (ret C.GstFlowReturn) {
	e := goElement(el)
	defer e.recoverPanic("chain", func() { ret = C.GST_FLOW_ERROR })
	core := e.getCore()
	e.mu.Lock()
	p := e.pads
	e.mu.Unlock()
	if core == nil {
		return C.GST_FLOW_FLUSHING
	}
	if !p.av {
		e.post(kindError, domainStream, int(gst.StreamErrorFailed),
			fmt.Sprintf("Pad %s was linked after kvssink started: its tracks are fixed at start; link every pad before PAUSED", e.padName(false)), "")
		return C.GST_FLOW_ERROR
	}
	var b C.KvsgoBuffer
	if C.kvsgo_buffer_map(cb, skipFlags, &b) == 0 {
		e.post(kindError, domainResource, int(gst.ResourceErrorRead), "Could not map a buffer for reading on pad "+e.padName(false), "")
		return C.GST_FLOW_ERROR
	}
	defer C.kvsgo_buffer_unmap(cb, &b)
	if C.guint(b.flags)&skipFlags != 0 {
		return C.GST_FLOW_OK
	}
	C.kvsgo_av_to_running(e.el, C.FALSE, &b)
	f := frameOf(b.pts, b.dts, b.duration, b.flags, b.data, b.size, sink.TrackKind(kind))
	// The call is cancelled by unlock (the element's context) and by a
	// flush of this pad alone (kvsgoAvFlush).
	ctx, stop := context.WithCancel(e.context())
	e.ctxMu.Lock()
	e.secondStop = stop
	e.ctxMu.Unlock()
	err := core.Put(ctx, f)
	e.ctxMu.Lock()
	e.secondStop = nil
	e.ctxMu.Unlock()
	stop()
	switch {
	case err == nil:
		return C.GST_FLOW_OK
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return C.KVSGO_FLOW_RETRY
	case errors.Is(err, sink.ErrClosed):
		return C.GST_FLOW_EOS // the stream ended without waiting for this pad
	}
	e.fail("Streaming failed on pad "+e.padName(false), err, "")
	return C.GST_FLOW_ERROR
}

//export kvsgoAvEos
func kvsgoAvEos(el *C.GstElement, kind C.int) {
	e := goElement(el)
	defer e.recoverPanic("eos", nil)
	if core := e.getCore(); core != nil {
		if err := core.EndTrack(sink.TrackKind(kind)); err != nil {
			e.fail("Streaming failed at the end of pad "+e.padName(false), err, "")
		}
	}
}

//export kvsgoAvPrimaryEos
func kvsgoAvPrimaryEos(el *C.GstElement) {
	e := goElement(el)
	defer e.recoverPanic("eos", nil)
	e.mu.Lock()
	p := e.pads
	e.mu.Unlock()
	if core := e.getCore(); core != nil && p.av {
		if err := core.EndTrack(p.primaryKind); err != nil {
			e.fail("Streaming failed at the end of pad "+e.padName(true), err, "")
		}
	}
}

//export kvsgoAvFlush
func kvsgoAvFlush(el *C.GstElement) {
	e := goElement(el)
	e.ctxMu.Lock()
	if e.secondStop != nil {
		e.secondStop()
	}
	e.ctxMu.Unlock()
}

//export kvsgoAvPlaying
func kvsgoAvPlaying(el *C.GstElement, playing C.gboolean) {
	e := goElement(el)
	defer e.recoverPanic("change_state", nil)
	if core := e.getCore(); core != nil {
		core.SetPlaying(playing != 0)
	}
}

//export kvsgoAvWarn
func kvsgoAvWarn(el *C.GstElement, msg *C.char) {
	e := goElement(el)
	e.post(kindWarning, domainStream, int(gst.StreamErrorFailed), C.GoString(msg), "")
}

//export kvsgoAvCustom
func kvsgoAvCustom(el *C.GstElement, ev *C.GstEvent) {
	e := goElement(el)
	defer e.recoverPanic("event", nil)
	s := C.kvsgo_event_structure(ev)
	if s != nil && C.GoString(C.kvsgo_structure_name(s)) == "kvs-add-metadata" {
		e.addMetadata(s)
	}
}
