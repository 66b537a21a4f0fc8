package main

/*
#include "kvsgo.h"
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"
	"unsafe"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/base"

	"github.com/kvsgo/kvsgo/pkg/sink"
)

// element is one kvssink instance.
type element struct {
	el *C.GstElement // the GObject; valid for the element's lifetime

	mu       sync.Mutex
	settings sink.Settings
	logged   map[string]bool // no-effect properties already logged

	core *sink.Sink // between Start and Stop

	ctxMu  sync.Mutex
	ctx    context.Context // cancelled by Unlock, re-armed by UnlockStop
	cancel context.CancelFunc
}

func (e *element) InstanceInit(obj *glib.Object) {
	e.el = (*C.GstElement)(obj.Unsafe())
	e.settings = sink.DefaultSettings()
	e.logged = map[string]bool{}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	C.kvsgo_base_sink_set_sync(e.el, C.FALSE)
}

func (e *element) SetProperty(obj *glib.Object, id uint, value *glib.Value) {
	if int(id) >= len(props) {
		return
	}
	p := &props[id]
	if p.kind == kSync {
		C.kvsgo_base_sink_set_sync(e.el, C.kvsgo_value_get_boolean((*C.GValue)(value.Native())))
		return
	}
	e.mu.Lock()
	err := p.set(&e.settings, (*C.GValue)(value.Native()))
	first := p.noEffect && !e.logged[p.name]
	if first {
		e.logged[p.name] = true
	}
	e.mu.Unlock()
	if err != nil {
		e.log(2, fmt.Sprintf("property %s: %v", p.name, err))
	}
	if first {
		e.log(4, fmt.Sprintf("property %s is accepted for compatibility with the official kvssink and has no effect in kvsgo", p.name))
	}
}

func (e *element) GetProperty(obj *glib.Object, id uint) *glib.Value {
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
	return p.get(&e.settings)
}

// guard turns a panic in a virtual method into an element error.
func (e *element) guard(what string, failed *bool) {
	if r := recover(); r != nil {
		e.post(0, 3, int(gst.CoreErrorFailed), fmt.Sprintf("internal error in %s", what), fmt.Sprintf("%v\n%s", r, debug.Stack()))
		*failed = true
	}
}

func (e *element) Start(self *base.GstBaseSink) (ok bool) {
	failed := false
	defer func() {
		if failed {
			ok = false
		}
	}()
	defer e.guard("start", &failed)
	e.mu.Lock()
	st := e.settings
	e.mu.Unlock()
	cfg, err := st.Config(os.Getenv)
	if err != nil {
		e.fail("Invalid kvssink settings", err)
		return false
	}
	cfg.Logger = newLogger(e.el)
	cfg.OnEvent = e.onEvent
	core, err := sink.New(cfg)
	if err != nil {
		e.fail("Invalid kvssink settings", err)
		return false
	}
	if err := core.Start(e.context()); err != nil {
		core.Close()
		e.fail(fmt.Sprintf("Could not start streaming to %s", st.StreamName), err)
		return false
	}
	e.mu.Lock()
	e.core = core
	e.mu.Unlock()
	return true
}

func (e *element) Stop(self *base.GstBaseSink) bool {
	e.mu.Lock()
	core := e.core
	e.core = nil
	e.mu.Unlock()
	if core != nil {
		core.Close()
	}
	return true
}

func (e *element) getCore() *sink.Sink {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.core
}

func (e *element) SetCaps(self *base.GstBaseSink, caps *gst.Caps) (ok bool) {
	failed := false
	defer func() {
		if failed {
			ok = false
		}
	}()
	defer e.guard("set_caps", &failed)
	core := e.getCore()
	if core == nil {
		return false
	}
	c := (*C.GstCaps)(unsafe.Pointer(caps.Instance()))
	f, err := formatFromCaps(c)
	if err == nil {
		err = core.SetFormat(f)
	}
	if err != nil {
		s := C.kvsgo_caps_to_string(c)
		desc := C.GoString(s)
		C.g_free(C.gpointer(unsafe.Pointer(s)))
		e.post(0, 1, int(gst.StreamErrorFormat), fmt.Sprintf("Cannot stream these caps: %v", err), "caps: "+desc)
		return false
	}
	return true
}

func (e *element) Render(self *base.GstBaseSink, buf *gst.Buffer) (ret gst.FlowReturn) {
	failed := false
	defer func() {
		if failed {
			ret = gst.FlowError
		}
	}()
	defer e.guard("render", &failed)
	core := e.getCore()
	if core == nil {
		return gst.FlowFlushing
	}
	cb := (*C.GstBuffer)(unsafe.Pointer(buf.Instance()))
	var b C.KvsgoBuffer
	if C.kvsgo_buffer_map(cb, &b) == 0 {
		e.post(0, 0, int(gst.ResourceErrorRead), "Could not map a buffer", "")
		return gst.FlowError
	}
	defer C.kvsgo_buffer_unmap(cb, &b)
	flags := gst.BufferFlags(b.flags)
	if flags&(gst.BufferFlagDecodeOnly|gst.BufferFlagCorrupted) != 0 {
		return gst.FlowOK
	}
	f := sink.Frame{
		PTS:      clockTime(b.pts),
		DTS:      clockTime(b.dts),
		Duration: clockTime(b.duration),
		Keyframe: flags&gst.BufferFlagDeltaUnit == 0,
		Data:     unsafe.Slice((*byte)(unsafe.Pointer(b.data)), int(b.size)),
	}
	err := core.Put(e.context(), f)
	switch {
	case err == nil:
		return gst.FlowOK
	case errors.Is(err, context.Canceled):
		return gst.FlowFlushing
	}
	e.fail("Streaming failed", err)
	return gst.FlowError
}

func clockTime(t C.guint64) time.Duration {
	if uint64(t) == uint64(gst.ClockTimeNone) {
		return sink.NoTime
	}
	return time.Duration(t)
}

func (e *element) Event(self *base.GstBaseSink, ev *gst.Event) (ok bool) {
	failed := false
	defer func() {
		if failed {
			ok = false
		}
	}()
	defer e.guard("event", &failed)
	switch ev.Type() {
	case gst.EventTypeEOS:
		if core := e.getCore(); core != nil {
			if err := core.Finish(e.context()); err != nil && !errors.Is(err, context.Canceled) {
				e.fail("The stream did not end cleanly", err)
				return false
			}
		}
	case gst.EventTypeCustomDownstream:
		if s := C.kvsgo_event_structure((*C.GstEvent)(unsafe.Pointer(ev.Instance()))); s != nil && C.GoString(C.kvsgo_structure_name(s)) == "kvs-add-metadata" {
			e.log(2, "kvs-add-metadata: fragment metadata is not supported by this version of kvsgo yet; event ignored")
			return true
		}
	}
	return self.ParentEvent(ev)
}

func (e *element) Unlock(self *base.GstBaseSink) bool {
	e.ctxMu.Lock()
	e.cancel()
	e.ctxMu.Unlock()
	return true
}

func (e *element) UnlockStop(self *base.GstBaseSink) bool {
	e.ctxMu.Lock()
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.ctxMu.Unlock()
	return true
}

func (e *element) context() context.Context {
	e.ctxMu.Lock()
	defer e.ctxMu.Unlock()
	return e.ctx
}

// onEvent turns core observations into element messages and warnings.
func (e *element) onEvent(ev sink.Event) {
	switch ev.Kind {
	case sink.EventWarning, sink.EventConnectionLost:
		e.post(1, 0, int(gst.ResourceErrorWrite), ev.Message, "")
	case sink.EventStreamError:
		e.post(1, 1, int(gst.StreamErrorFailed), fmt.Sprintf("Kinesis Video Streams error %d (%s): %s", ev.ErrorID, ev.ErrorName, ev.Message), "")
	case sink.EventAck:
		st := gst.NewStructure("kvs-fragment-ack")
		st.SetValue("type", ev.AckType)
		st.SetValue("timecode", ev.FragmentTimecode)
		st.SetValue("fragment-number", ev.FragmentNumber)
		C.kvsgo_post_element_message(e.el, (*C.GstStructure)(unsafe.Pointer(st.Instance())))
	}
}

// fail posts an element error for a core error, in the domain that fits.
func (e *element) fail(text string, err error) {
	domain, code := errorCode(err)
	e.post(0, domain, code, fmt.Sprintf("%s: %v", text, err), "")
}

func (e *element) post(kind, domain, code int, text, dbg string) {
	ct, cd := C.CString(text), C.CString(dbg)
	defer C.free(unsafe.Pointer(ct))
	defer C.free(unsafe.Pointer(cd))
	file, fn := C.CString("element.go"), C.CString("kvssink")
	defer C.free(unsafe.Pointer(file))
	defer C.free(unsafe.Pointer(fn))
	C.kvsgo_post(e.el, C.int(kind), C.int(domain), C.int(code), ct, cd, file, fn, 0)
}
