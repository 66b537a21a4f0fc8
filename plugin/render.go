package main

/*
#include <stdlib.h>
#include "render.h"
#include "plugin_desc.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/go-gst/go-gst/gst"

	"github.com/kvsgo/kvsgo/pkg/sink"
)

// takeBatch is how many queued buffers the drainer takes at once.
const takeBatch = 16

// drainer moves buffers from the C render queue (render.c) into the core,
// on one goroutine per started element. It wakes on a byte in a pipe the
// Go runtime polls, so that the streaming thread never enters Go per
// buffer and a busy drainer costs no system call per buffer.
type drainer struct {
	e      *element
	core   *sink.Sink
	av     bool
	r, w   *os.File // the wake pipe: render writes w, the drainer reads r
	raw    syscall.RawConn
	idle   *int32 // render.c's idle mark
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// startDrainer opens the render queue for core and starts its goroutine.
func (e *element) startDrainer(core *sink.Sink) (*drainer, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("render queue: %w", err)
	}
	av := e.isAV()
	d := &drainer{e: e, core: core, av: av, r: r, w: w, done: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	C.kvsgo_render_open(e.el, C.int(w.Fd()), cBool(av))
	go d.run()
	return d, nil
}

func cBool(b bool) C.gboolean {
	if b {
		return C.TRUE
	}
	return C.FALSE
}

// stop closes the render queue (render returns FLUSHING from now on) and
// waits for the goroutine, which stops at once if the core is closed, or
// puts what is still queued first.
func (d *drainer) stop() {
	C.kvsgo_render_close(d.e.el)
	<-d.done
	d.r.Close()
	d.w.Close()
}

// abort is stop when the core is being closed: a put blocked on a full
// store ends.
func (d *drainer) abort() {
	d.cancel()
	d.stop()
}

func (d *drainer) run() {
	defer close(d.done)
	defer d.e.recoverPanic("render queue", func() { C.kvsgo_render_set_flow(d.e.el, C.GST_FLOW_ERROR) })
	// The batch lives in C memory: a Go array passed to C would be
	// scanned for Go pointers on every call (cgocheck).
	batchMem := C.calloc(takeBatch, C.sizeof_KvsgoQueued)
	defer C.free(batchMem)
	batch := unsafe.Slice((*C.KvsgoQueued)(batchMem), takeBatch)
	var wake [64]byte
	failed := false
	for {
		var now C.gint64
		n := int(C.kvsgo_render_take(d.e.el, &batch[0], takeBatch, &now))
		if n < 0 {
			return // closed and empty
		}
		if n == 0 {
			// Idle: the next render writes a byte. A read error means
			// the pipe was closed under us, which stop never does first.
			if err := d.wait(wake[:]); err != nil {
				return
			}
			continue
		}
		goNow := time.Now()
		kind := d.e.primaryKind() // set_caps waits for the queue: one kind per batch
		for i := range n {
			if !failed && !d.put(&batch[i], kind, goNow, time.Duration(now-batch[i].entered)*time.Microsecond) {
				failed = true
			}
		}
		C.kvsgo_render_release(d.e.el, &batch[0], C.int(n))
	}
}

// wait blocks until a render has queued a buffer since the drainer went
// idle: until the wake pipe is readable, then empties it. The runtime's
// poller is edge-triggered and RawConn.Read forgets a readiness that came
// before it: so the first look is at the idle mark, which the render that
// writes a byte clears first (a cleared mark: read now; a set one: any
// byte comes after the wait began, and wakes it). An idle drainer thus
// makes no read that would only find the pipe empty.
func (d *drainer) wait(buf []byte) error {
	if d.raw == nil {
		rc, err := d.r.SyscallConn()
		if err != nil {
			return err
		}
		d.raw = rc
		d.idle = (*int32)(unsafe.Pointer(C.kvsgo_render_idle_flag(d.e.el)))
	}
	first := true
	var rerr error
	err := d.raw.Read(func(fd uintptr) bool {
		if first {
			first = false
			if atomic.LoadInt32(d.idle) != 0 {
				return false // no push since the take: wait for the byte
			}
		}
		for {
			n, err := syscall.Read(int(fd), buf)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return false // the push's byte is on its way
			case n == 0 && err == nil:
				rerr = io.EOF // the write end is closed
			}
			return true
		}
	})
	if err != nil {
		return err
	}
	return rerr
}

// put hands one queued buffer to the core; false after a failure that
// ends the stream (reported here; render returns GST_FLOW_ERROR from now on).
func (d *drainer) put(b *C.KvsgoQueued, kind sink.TrackKind, now time.Time, age time.Duration) bool {
	if b.buf == nil { // the end of the first pad's track (A/V)
		if d.av {
			if err := d.core.EndTrack(kind); err != nil {
				d.e.fail("Streaming failed at the end of pad "+d.e.padName(true), err, "")
				C.kvsgo_render_set_flow(d.e.el, C.GST_FLOW_ERROR)
				return false
			}
		}
		return true
	}
	f := frameOf(b.pts, b.dts, b.duration, b.flags, b.data, b.size, kind)
	f.Received = now.Add(-age)
	err := d.core.Put(d.ctx, f)
	switch {
	case err == nil:
		return true
	case d.ctx.Err() != nil, errors.Is(err, sink.ErrClosed):
		return false // stopping: the core is being closed
	}
	d.e.fail("Streaming failed", err, "")
	C.kvsgo_render_set_flow(d.e.el, C.GST_FLOW_ERROR)
	return false
}

// frameOf is the core's view of a mapped buffer (no copy: valid while the
// mapping lives).
func frameOf(pts, dts, duration C.guint64, flags C.guint, data *C.guint8, size C.gsize, kind sink.TrackKind) sink.Frame {
	return sink.Frame{
		PTS:      clockTime(pts),
		DTS:      clockTime(dts),
		Duration: clockTime(duration),
		Keyframe: gst.BufferFlags(flags)&gst.BufferFlagDeltaUnit == 0,
		Data:     unsafe.Slice((*byte)(unsafe.Pointer(data)), int(size)),
		Kind:     kind,
	}
}

// barrier waits until the core has every buffer rendered so far, so that
// caps, events and the end of the stream stay in order with buffers.
func (e *element) barrier() bool {
	return C.kvsgo_render_barrier(e.el) != 0
}
