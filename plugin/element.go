package main

/*
#include "plugin_desc.h"
#include "starterr.h"
#include "av.h"
#include "render.h"
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/base"

	"github.com/kvsgo/kvsgo/pkg/sink"
)

// element is one kvssink instance: a GstBaseSink whose virtual methods
// forward to a sink.Sink between start and stop.
//
// Threads: properties, start, stop, unlock and unlock_stop run on
// application threads; set_caps, render and event on the streaming thread;
// onEvent on the core's upload goroutine. mu guards settings and core;
// ctxMu guards the context that unlock cancels.
type element struct {
	el      *C.GstElement // the GObject; valid for the lifetime of this Go value
	created time.Time     // what file-start-time=0 means

	mu       sync.Mutex
	settings sink.Settings
	structs  map[string]string // serialisation of the GstStructure properties that are set
	logged   map[string]bool   // no-effect properties already logged
	core     *sink.Sink        // between start and stop
	drain    *drainer          // between start and stop: the render queue's consumer
	pads     avPads            // what the pads carry, between start and stop

	acks    ackCounts
	started time.Time // when the core started (metrics uptime)
	first   atomic.Bool

	ctxMu  sync.Mutex
	ctx    context.Context // every blocking core call; cancelled by unlock, re-armed by unlock_stop and start
	cancel context.CancelFunc
	// secondStop cancels the second pad's call in progress (its own
	// FLUSH_START), nil when none runs.
	secondStop context.CancelFunc
}

func (e *element) InstanceInit(obj *glib.Object) {
	e.el = (*C.GstElement)(obj.Unsafe())
	e.created = time.Now()
	e.settings = sink.DefaultSettings()
	if e.settings.CredentialPath == nil {
		p := sink.DefaultCredentialPath
		e.settings.CredentialPath = &p
	}
	e.structs = map[string]string{}
	e.logged = map[string]bool{}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	C.kvsgo_av_instance_init(e.el)
	C.kvsgo_render_instance_init(e.el)
	// The official element never syncs on the clock; neither do we by
	// default. The shadowing "sync" pspec shows the same default.
	C.kvsgo_base_sink_set_sync(e.el, C.FALSE)
}

// ---- properties ----

func (e *element) SetProperty(_ *glib.Object, id uint, value *glib.Value) {
	defer e.recoverPanic("set_property", nil)
	if int(id) >= len(props) {
		return
	}
	p := &props[id]
	v := (*C.GValue)(value.Native())
	if p.kind == kSync {
		C.kvsgo_base_sink_set_sync(e.el, C.kvsgo_value_get_boolean(v))
		return
	}
	e.mu.Lock()
	if s := p.set(&e.settings, v); s != nil {
		e.structs[p.name] = *s
	} else if p.kind == kStructure {
		delete(e.structs, p.name)
	}
	first := p.noEffect && !e.logged[p.name]
	if first {
		e.logged[p.name] = true
	}
	e.mu.Unlock()
	if first {
		e.log(levelInfo, fmt.Sprintf("property %s: accepted for compatibility with the official kvssink; it has no effect in kvsgo", p.name))
	}
	if p.playing {
		e.changedWhilePlaying(p.name)
	}
}

// changedWhilePlaying hands a property that may change while playing to the
// running core (before start, Settings alone carries it).
func (e *element) changedWhilePlaying(name string) {
	e.mu.Lock()
	core, st := e.core, e.settings
	e.mu.Unlock()
	if core == nil || name != "e2ee-recipients" {
		return
	}
	spec := ""
	if st.E2EERecipients != nil {
		spec = *st.E2EERecipients
	}
	if st.E2EESigningKey == nil {
		e.fail("Cannot turn end-to-end encryption on while streaming", fmt.Errorf("%w: set e2ee-recipients and e2ee-signing-key before start", sink.ErrSettings), "")
		return
	}
	if err := core.ChangeRecipients(spec); err != nil {
		e.fail("Cannot change the E2EE recipients; the stream stops rather than keep encrypting to the previous set", err, "")
		return
	}
	e.log(levelInfo, "e2ee-recipients changed: the next fragment starts a new epoch")
}

// GetProperty never returns secret-key or session-token: a set secret reads
// back as "*****", an unset one as NULL.
func (e *element) GetProperty(_ *glib.Object, id uint) (v *glib.Value) {
	defer e.recoverPanic("get_property", nil)
	if int(id) >= len(props) {
		return nil
	}
	p := &props[id]
	if p.kind == kSync {
		v, _ := glib.ValueInit(glib.TYPE_BOOLEAN)
		v.SetBool(C.kvsgo_base_sink_get_sync(e.el) != 0)
		return v
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var ser *string
	if s, ok := e.structs[p.name]; ok {
		ser = &s
	}
	return p.get(&e.settings, ser)
}

// ---- GstBaseSink virtual methods ----

// Start snapshots the settings, resolves them against the environment (pure),
// opens what they name (CA bundle, keys, credentials: Config.Open, under
// the context unlock cancels) and starts the core (stream lookup or
// creation, data endpoint).
func (e *element) Start(_ *base.GstBaseSink) (ok bool) {
	defer e.recoverPanic("start", func() { ok = false })
	e.rearm()
	e.mu.Lock()
	st := e.settings
	e.mu.Unlock()
	if st.FileStartTime == 0 {
		st.FileStartTime = uint64(e.created.Unix())
	}
	cfg, err := st.Config(os.Getenv)
	if err == nil {
		cfg, err = cfg.Open(e.context())
	}
	if err != nil {
		e.fail(startFailure(st.StreamName, err), err, "")
		C.kvsgo_start_failed(e.el)
		return false
	}
	cfg.Logger = newLogger(e.el)
	cfg.OnEvent = e.onEvent
	e.padsAtStart(&cfg)        // av.go
	e.announceCredentials(cfg) // credentials.go
	where := fmt.Sprintf("stream=%s region=%s endpoint=%s (from %s) credentials=%s",
		cfg.StreamName, cfg.Region, cfg.Endpoint, cfg.EndpointSource, cfg.CredSource)
	core, err := sink.New(cfg)
	if err != nil {
		e.fail(fmt.Sprintf("Invalid settings for stream %q", st.StreamName), err, where)
		C.kvsgo_start_failed(e.el)
		return false
	}
	// Set before the core starts: its metrics goroutine reads them.
	e.started = time.Now()
	e.first.Store(true)
	if err := core.Start(e.context()); err != nil {
		core.Close()
		e.fail(fmt.Sprintf("Could not start streaming to %q", st.StreamName), err, where)
		C.kvsgo_start_failed(e.el)
		return false
	}
	e.log(levelInfo, "started: "+where)
	core.SetPlaying(false) // READY to PAUSED: no track stalls before PLAYING
	d, err := e.startDrainer(core)
	if err != nil {
		core.Close()
		e.fail(fmt.Sprintf("Could not start streaming to %q", st.StreamName), err, where)
		C.kvsgo_start_failed(e.el)
		return false
	}
	e.mu.Lock()
	e.core, e.drain = core, d
	e.mu.Unlock()
	return true
}

// Stop closes the core: any upload still running is aborted.
func (e *element) Stop(_ *base.GstBaseSink) (ok bool) {
	defer e.recoverPanic("stop", func() { ok = false })
	e.mu.Lock()
	core, d := e.core, e.drain
	e.core, e.drain = nil, nil
	e.mu.Unlock()
	if d != nil {
		d.abort() // frames still queued are not stored: the stream is being torn down
	}
	if core != nil {
		core.Close()
	}
	return true
}

func (e *element) isAV() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pads.av
}

func (e *element) primaryKind() sink.TrackKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pads.primaryKind
}

func (e *element) getCore() *sink.Sink {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.core
}

// SetCaps hands the media format to the core.
func (e *element) SetCaps(_ *base.GstBaseSink, caps *gst.Caps) (ok bool) {
	defer e.recoverPanic("set_caps", func() { ok = false })
	c := (*C.GstCaps)(unsafe.Pointer(caps.Instance()))
	if !e.barrier() { // buffers of the previous caps go first
		return false
	}
	core := e.getCore()
	if core == nil {
		e.post(kindError, domainCore, int(gst.CoreErrorStateChange), "Caps arrived before the element started", "caps: "+capsString(c))
		return false
	}
	f, err := formatFromCaps(c)
	e.mu.Lock()
	p := &e.pads
	p.primaryKind = sink.KindOf(f.Codec)
	if err == nil && p.av && p.primaryKind == p.secondKind {
		err = fmt.Errorf("%w: pads %s and %s both carry %s; kvssink takes one video and one audio track", sink.ErrFormat, e.padName(true), e.padName(false), p.secondKind)
	}
	e.mu.Unlock()
	if err == nil {
		err = core.SetFormat(f)
	}
	if err != nil {
		e.fail(fmt.Sprintf("Cannot stream these caps on pad %s", e.padName(true)), err, "caps: "+capsString(c))
		return false
	}
	e.log(levelDebug, "caps: "+capsString(c))
	return true
}

// skipFlags marks buffers that are not frames to upload, as in the official
// element.
const skipFlags = C.guint(gst.BufferFlagDecodeOnly | gst.BufferFlagCorrupted)

// Render is render.c's: buffers go through a queue that drainer (render.go)
// empties into the core.

func clockTime(t C.guint64) time.Duration {
	if uint64(t) == uint64(gst.ClockTimeNone) || uint64(t) > uint64(1<<63-1) {
		return sink.NoTime
	}
	return time.Duration(t)
}

// Event ends the stream at EOS before GstBaseSink posts the EOS message,
// and takes kvs-add-metadata. The event belongs to this method: it goes to
// the parent, or is unreffed here.
func (e *element) Event(self *base.GstBaseSink, ev *gst.Event) (ok bool) {
	chained := false
	defer func() {
		if !chained {
			ev.Unref()
		}
	}()
	defer e.recoverPanic("event", func() { ok = false })
	switch ev.Type() {
	case gst.EventTypeEOS:
		if !e.barrier() { // a flush or shutdown came first
			return false
		}
		if core := e.getCore(); core != nil {
			ctx := e.context()
			if err := core.Finish(ctx); err != nil {
				if ctx.Err() != nil { // unlock: the pipeline is shutting down
					return false
				}
				e.fail("The stream did not end cleanly", err, "")
				return false
			}
		}
	case gst.EventTypeCustomDownstream, gst.EventTypeCustomOOB:
		s := C.kvsgo_event_structure((*C.GstEvent)(unsafe.Pointer(ev.Instance())))
		if s != nil && C.GoString(C.kvsgo_structure_name(s)) == "kvs-add-metadata" {
			e.barrier() // in order with the buffers before it
			e.addMetadata(s)
			return true
		}
	}
	chained = true
	return self.ParentEvent(ev)
}

// Unlock wakes a render or event blocked in the core (flush, state change).
func (e *element) Unlock(_ *base.GstBaseSink) (ok bool) {
	defer e.recoverPanic("unlock", func() { ok = false })
	C.kvsgo_render_unlock(e.el, C.TRUE)
	e.ctxMu.Lock()
	e.cancel()
	e.ctxMu.Unlock()
	return true
}

// UnlockStop re-arms the context for the next blocking call.
func (e *element) UnlockStop(_ *base.GstBaseSink) (ok bool) {
	defer e.recoverPanic("unlock_stop", func() { ok = false })
	C.kvsgo_render_unlock(e.el, C.FALSE)
	e.rearm()
	return true
}

func (e *element) rearm() {
	e.ctxMu.Lock()
	defer e.ctxMu.Unlock()
	if e.ctx.Err() != nil {
		e.ctx, e.cancel = context.WithCancel(context.Background())
	}
}

func (e *element) context() context.Context {
	e.ctxMu.Lock()
	defer e.ctxMu.Unlock()
	return e.ctx
}

// ---- core events: signals and messages ----

// onEvent runs on the core's upload goroutine (or the streaming thread for
// drops and per-key-frame metrics); it must not block. Every event becomes
// an element message (readable from any language); acks, metrics and
// fatal errors also raise the official signals.
func (e *element) onEvent(ev sink.Event) {
	defer e.recoverPanic("event callback", nil)
	switch ev.Kind {
	case sink.EventAck:
		// ERROR acks arrive as EventStreamError; these all succeeded.
		e.acks.count(ev.AckType)
		num := C.CString(ev.FragmentNumber)
		defer C.free(unsafe.Pointer(num))
		const resultOK = 200 // SERVICE_CALL_RESULT_OK
		C.kvsgo_emit_fragment_ack(e.el, C.gint(ackType(ev.AckType)), C.guint64(ev.FragmentTimecode), num, resultOK)
		e.message("kvs-fragment-ack", str("type", ev.AckType), u64("timecode", ev.FragmentTimecode), str("fragment-number", ev.FragmentNumber))
	case sink.EventStreamError:
		e.acks.count("ERROR")
		num := C.CString(ev.FragmentNumber)
		defer C.free(unsafe.Pointer(num))
		C.kvsgo_emit_fragment_ack(e.el, C.gint(ackType("ERROR")), C.guint64(ev.FragmentTimecode), num, C.gint(ev.ErrorID))
		e.message("kvs-stream-error",
			str("error-name", ev.ErrorName), i32("error-id", ev.ErrorID), u64("status", sink.AckStatus(ev.ErrorID)),
			u64("timecode", ev.FragmentTimecode), str("fragment-number", ev.FragmentNumber),
			boolean("retriable", ev.Retriable), str("message", ev.Message))
		e.post(kindWarning, domainStream, int(gst.StreamErrorFailed),
			fmt.Sprintf("Kinesis Video Streams error %d %s: %s", ev.ErrorID, ev.ErrorName, ev.Message), "")
	case sink.EventConnectionLost:
		e.message("kvs-connection-lost", str("reason", ev.Reason), str("message", ev.Message))
		e.post(kindWarning, domainResource, int(gst.ResourceErrorWrite), ev.Message, "")
	case sink.EventConnected:
		if ev.Restored {
			e.message("kvs-connection-restored", u64("resume-timecode", ev.FragmentTimecode), str("message", ev.Message))
		}
		e.log(levelInfo, ev.String())
	case sink.EventDropped:
		d := ev.Dropped
		e.message("kvs-dropped-frames", u64("frames", uint64(d.Frames)), u64("fragments", uint64(d.Fragments)),
			u64("from", uint64(d.From)), u64("to", uint64(d.To)), str("reason", d.Reason),
			str("tracks", d.Tracks()), u64("video-frames", uint64(d.VideoFrames)), u64("audio-frames", uint64(d.AudioFrames)))
		e.post(kindWarning, domainResource, int(gst.ResourceErrorWrite),
			fmt.Sprintf("Dropped %d frame(s) in %d fragment(s), stream time %s to %s: %s (tracks: %s)", d.Frames, d.Fragments, streamTime(d.From), streamTime(d.To), ev.Message, d.Tracks()), "")
	case sink.EventMetrics:
		e.metrics(ev.Metrics, ev.KeyFrame)
	case sink.EventRecovered:
		r := ev.Recovered
		e.message("kvs-recovered", u64("fragments", uint64(r.Fragments)), u64("frames", uint64(r.Frames)),
			u64("from", uint64(r.From)), u64("to", uint64(r.To)), u64("received", uint64(r.Received)))
		e.log(levelInfo, ev.Message)
	case sink.EventEpoch:
		ep := ev.Epoch
		ids := make([]string, len(ep.Recipients))
		for i, r := range ep.Recipients {
			ids[i] = fmt.Sprintf("%x", r[:])
		}
		e.message("kvs-e2ee-epoch", str("epoch-id", fmt.Sprintf("%08x", ep.ID)), u64("first-pts", ep.FirstPTS),
			str("suite", ep.Suite.String()), str("recipients", strings.Join(ids, ",")), u64("bundle-size", uint64(ep.BundleSize)))
		e.log(levelInfo, ev.Message)
	case sink.EventTracks:
		e.post(kindInfo, domainStream, int(gst.StreamErrorFailed), ev.Message, "")
		e.log(levelInfo, ev.Message)
	case sink.EventWarning:
		msg := ev.Message
		if ev.Track != sink.TrackAny {
			msg = "pad " + e.trackPad(ev.Track) + ": " + msg // av.go
		}
		e.post(kindWarning, domainResource, int(gst.ResourceErrorWrite), msg, "")
	}
}

// ackType is the official FRAGMENT_ACK_TYPE of an ack's EventType.
func ackType(t string) int {
	switch t {
	case "BUFFERING":
		return 1
	case "RECEIVED":
		return 2
	case "PERSISTED":
		return 3
	case "ERROR":
		return 4
	case "IDLE":
		return 5
	}
	return 0
}

// ---- errors ----

// fail reports a core error: an element error in the domain errorCode
// chooses, and the official stream-error signal.
// The message and the signal come first, so that an application that stops
// at the first ERROR has seen them.
func (e *element) fail(text string, err error, dbg string) {
	domain, code := errorCode(err)
	e.message("kvs-stream-failed", u64("status", sink.Status(err)), str("message", err.Error()))
	C.kvsgo_emit_stream_error(e.el, C.guint64(sink.Status(err)))
	e.postAt(1, kindError, domain, code, fmt.Sprintf("%s: %v", text, err), dbg)
}

// recoverPanic turns a panic in a virtual method into an element error; then
// runs onPanic (to set the failure return value). Use it as
// defer e.recoverPanic(...): recover works only in the deferred call itself.
func (e *element) recoverPanic(what string, onPanic func()) {
	r := recover()
	if r == nil {
		return
	}
	e.post(kindError, domainCore, int(gst.CoreErrorFailed),
		fmt.Sprintf("Internal error in kvssink %s: %v", what, r), string(debug.Stack()))
	if onPanic != nil {
		onPanic()
	}
}

const (
	kindError   = 0
	kindWarning = 1
	kindInfo    = 2

	domainResource = 0
	domainStream   = 1
	domainLibrary  = 2
	domainCore     = 3
)

func (e *element) post(kind, domain, code int, text, dbg string) {
	e.postAt(1, kind, domain, code, text, dbg)
}

// postAt posts an element message naming a Go function as its source: the
// caller of postAt's caller for skip=1.
func (e *element) postAt(skip, kind, domain, code int, text, dbg string) {
	file, fn, line := caller(skip + 1)
	ct, cd, cf, cfn := C.CString(text), C.CString(dbg), C.CString(file), C.CString(fn)
	defer C.free(unsafe.Pointer(ct))
	defer C.free(unsafe.Pointer(cd))
	defer C.free(unsafe.Pointer(cf))
	defer C.free(unsafe.Pointer(cfn))
	C.kvsgo_post(e.el, C.int(kind), C.int(domain), C.int(code), ct, cd, cf, cfn, C.int(line))
}

// caller returns the file base name, function name and line of a caller:
// caller(0) is the function calling caller, caller(1) its caller, ...
func caller(skip int) (file, fn string, line int) {
	pc, f, l, ok := runtime.Caller(skip + 1)
	if !ok {
		return "kvsgo", "?", 0
	}
	fn = "?"
	if fr := runtime.FuncForPC(pc); fr != nil {
		fn = filepath.Ext(fr.Name())
		if len(fn) > 1 {
			fn = fn[1:]
		}
	}
	return filepath.Base(f), fn, l
}

func capsString(c *C.GstCaps) string {
	s := C.kvsgo_caps_to_string(c)
	defer C.g_free(C.gpointer(unsafe.Pointer(s)))
	return C.GoString(s)
}

func structureString(s *C.GstStructure) string {
	cs := C.kvsgo_structure_to_string(s)
	defer C.g_free(C.gpointer(unsafe.Pointer(cs)))
	return C.GoString(cs)
}

// addMetadata handles the official kvs-add-metadata event: fields name
// (string), value (string) and persist (boolean). A tag the service would
// reject is an element warning naming the limit; the stream goes on.
func (e *element) addMetadata(s *C.GstStructure) {
	core := e.getCore()
	if core == nil {
		return
	}
	name, value := fieldString(s, "name"), fieldString(s, "value")
	persist := fieldString(s, "persist") == "true"
	if err := core.PutMetadata(name, value, persist); err != nil {
		e.post(kindWarning, domainStream, int(gst.StreamErrorFailed), fmt.Sprintf("kvs-add-metadata: %v", err), structureString(s))
		return
	}
	e.log(levelDebug, fmt.Sprintf("fragment metadata %s=%q (persist=%v)", name, value, persist))
}
