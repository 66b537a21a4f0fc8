package main

/*
#include "decrypt.h"
#include "plugin_desc.h"
#include <stdlib.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"unsafe"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"
)

// kvsdecrypt is a Matroska-to-Matroska element: encrypted Matroska in (a
// GetMedia response, a PutMedia capture, a file), plain Matroska out,
// without the key track. The bytes flow through a pipe to one goroutine
// that runs the transform; its output is pushed downstream from that
// goroutine, and chain returns the downstream flow result.
//
// Threads: chain and the sink pad's events run on the streaming thread;
// properties and state changes on application threads; the transform on
// its own goroutine. mu guards everything below it.
type decryptElement struct {
	el  *C.GstElement
	src *C.GstPad

	mu       sync.Mutex
	settings decryptSettings
	run      *transformRun    // between the first buffer and EOS/flush
	reporter *problemReporter // of the current run
}

// transformRun is one pass of the transform over a stream.
type transformRun struct {
	pw   *io.PipeWriter
	done chan struct{}
	err  error           // the transform's result, set before done closes
	flow C.GstFlowReturn // the first non-OK downstream result
}

// errFlow ends a transform whose output downstream no longer takes.
var errFlow = errors.New("downstream stopped taking data")

const (
	decryptFactoryName = "kvsdecrypt"
	decryptTypeName    = "GstKvsgoDecrypt"
)

const matroskaCaps = "video/x-matroska; audio/x-matroska; video/webm; audio/webm"

func (*decryptElement) New() glib.GoObjectSubclass { return &decryptElement{} }

func (*decryptElement) ClassInit(k *glib.ObjectClass) {
	c := gst.ToElementClass(k)
	c.SetMetadata("KVS end-to-end decryption", "Codec/Decryptor/Parser",
		"Decrypts the frames of a Matroska stream encrypted by kvssink (KVS-E2EE v1) and outputs plain Matroska without the key track",
		"kvsgo <https://github.com/kvsgo/kvsgo>")
	caps := gst.NewCapsFromString(matroskaCaps)
	c.AddPadTemplate(gst.NewPadTemplate("sink", gst.PadDirectionSink, gst.PadPresenceAlways, caps))
	c.AddPadTemplate(gst.NewPadTemplate("src", gst.PadDirectionSource, gst.PadPresenceAlways, caps))
	c.InstallProperties(decryptParamSpecs())
}

func (d *decryptElement) InstanceInit(obj *glib.Object) {
	d.el = (*C.GstElement)(obj.Unsafe())
	d.src = C.kvsgo_decrypt_add_pads(d.el)
}

// Constructed names instances kvsdecrypt0, kvsdecrypt1, ... after the
// factory rather than the GType.
func (d *decryptElement) Constructed(*glib.Object) {
	d.msg().rename("kvsgodecrypt", decryptFactoryName)
}

// msg posts element messages through the same helpers as kvssink.
func (d *decryptElement) msg() *element { return &element{el: d.el} }

func decryptFrom(el *C.GstElement) *decryptElement {
	return glib.FromObjectUnsafePrivate(unsafe.Pointer(el)).(*decryptElement)
}

//export kvsgoDecryptChain
func kvsgoDecryptChain(el *C.GstElement, buf *C.GstBuffer) (ret C.GstFlowReturn) {
	d := decryptFrom(el)
	defer d.msg().recoverPanic("kvsdecrypt chain", func() { ret = C.GST_FLOW_ERROR })
	r, ok := d.start()
	if !ok {
		return C.GST_FLOW_ERROR
	}
	var b C.KvsgoBuffer
	if C.kvsgo_buffer_map(buf, 0, &b) == 0 {
		d.msg().post(kindError, domainResource, int(gst.ResourceErrorRead), "kvsdecrypt: cannot map an input buffer", "")
		return C.GST_FLOW_ERROR
	}
	defer C.kvsgo_buffer_unmap(buf, &b)
	if b.size == 0 {
		return C.GST_FLOW_OK
	}
	// Write returns once the transform has read every byte (or ended).
	if _, err := r.pw.Write(unsafe.Slice((*byte)(unsafe.Pointer(b.data)), int(b.size))); err != nil {
		return d.finish(r, false)
	}
	return C.GST_FLOW_OK
}

//export kvsgoDecryptEvent
func kvsgoDecryptEvent(pad *C.GstPad, el *C.GstElement, ev *C.GstEvent) (ok C.gboolean) {
	d := decryptFrom(el)
	defer d.msg().recoverPanic("kvsdecrypt event", func() { ok = C.FALSE })
	switch C.kvsgo_event_kind(ev) {
	case C.KVSGO_EV_EOS:
		// Everything before EOS reaches downstream before EOS does.
		d.mu.Lock()
		r := d.run
		d.mu.Unlock()
		if r != nil && d.finish(r, true) != C.GST_FLOW_OK {
			C.gst_event_unref(ev)
			return C.FALSE
		}
	case C.KVSGO_EV_FLUSH_STOP:
		// A seek: the next bytes start a new stream.
		d.mu.Lock()
		r := d.run
		d.run = nil
		d.mu.Unlock()
		if r != nil {
			r.pw.CloseWithError(errFlushed)
			<-r.done
		}
	}
	return C.kvsgo_decrypt_event_default(pad, el, ev)
}

var errFlushed = errors.New("flushed")

// start returns the running transform, starting one on the first buffer.
func (d *decryptElement) start() (*transformRun, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.run != nil {
		return d.run, true
	}
	d.reporter = newProblemReporter(d.msg(), decryptFactoryName)
	tf, err := d.settings.transform(d.reporter.report)
	if err != nil {
		d.msg().post(kindError, domainResource, int(gst.ResourceErrorSettings), fmt.Sprintf("kvsdecrypt: %v", err), "")
		return nil, false
	}
	pr, pw := io.Pipe()
	r := &transformRun{pw: pw, done: make(chan struct{}), flow: C.GST_FLOW_OK}
	d.run = r
	go func() {
		defer close(r.done)
		defer func() {
			if p := recover(); p != nil {
				r.err = fmt.Errorf("internal error: %v\n%s", p, debug.Stack())
			}
			pr.CloseWithError(r.err) // unblocks chain
		}()
		r.err = tf(pr, pushWriter{d: d, r: r})
		if r.err == nil {
			// The transform is done with the stream; whatever follows is
			// not read (chain sees the pipe closed).
			r.err = io.EOF
		}
	}()
	return r, true
}

// finish waits for the transform to end (closing its input first when
// eos) and returns the flow result for the caller, posting an error
// message when the transform failed.
func (d *decryptElement) finish(r *transformRun, eos bool) C.GstFlowReturn {
	if eos {
		r.pw.Close()
	}
	<-r.done
	d.mu.Lock()
	if d.run == r {
		d.run = nil
	}
	d.mu.Unlock()
	switch {
	case r.flow != C.GST_FLOW_OK:
		return r.flow
	case errors.Is(r.err, errFlushed):
		return C.GST_FLOW_FLUSHING
	case r.err == nil || r.err == io.EOF:
		if eos {
			return C.GST_FLOW_OK
		}
		return C.GST_FLOW_EOS
	}
	d.msg().post(kindError, domainStream, int(gst.StreamErrorDecrypt), fmt.Sprintf("kvsdecrypt: %v", r.err), "")
	return C.GST_FLOW_ERROR
}

// pushWriter pushes each Write downstream as one buffer.
type pushWriter struct {
	d *decryptElement
	r *transformRun
}

func (w pushWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if f := C.kvsgo_decrypt_push(w.d.src, (*C.guint8)(unsafe.Pointer(&p[0])), C.gsize(len(p))); f != C.GST_FLOW_OK {
		w.r.flow = f
		return 0, errFlow
	}
	return len(p), nil
}
