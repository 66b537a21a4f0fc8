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

// wait blocks until the wake pipe is readable, then empties it. It waits
// first and reads after (RawConn.Read calls its function again once the
// runtime's poller saw the pipe readable), so that an idle drainer makes
// no read that would only find the pipe empty.
func (d *drainer) wait(buf []byte) error {
	if d.raw == nil {
		rc, err := d.r.SyscallConn()
		if err != nil {
			return err
		}
		d.raw = rc
	}
	waited := false
	var rerr error
	err := d.raw.Read(func(fd uintptr) bool {
		if !waited {
			waited = true
			return false // wait for readability
		}
		for {
			n, err := syscall.Read(int(fd), buf)
			if err == syscall.EINTR {
				continue
			}
			if n == 0 && err == nil {
				rerr = io.EOF // the write end is closed
			}
			return true // read, or found empty (a stale readiness): take again
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
	f := sink.Frame{
		PTS:      clockTime(b.pts),
		DTS:      clockTime(b.dts),
		Duration: clockTime(b.duration),
		Keyframe: gst.BufferFlags(b.flags)&gst.BufferFlagDeltaUnit == 0,
		Data:     unsafe.Slice((*byte)(unsafe.Pointer(b.data)), int(b.size)),
		Kind:     kind,
		Received: now.Add(-age),
	}
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

// barrier waits until the core has every buffer rendered so far, so that
// caps, events and the end of the stream stay in order with buffers.
func (e *element) barrier() bool {
	return C.kvsgo_render_barrier(e.el) != 0
}
