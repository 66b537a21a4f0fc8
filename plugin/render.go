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

// Input that runs ahead of real time by more than batchAhead (a file, a
// transcode) switches the render queue to batch mode: render wakes the
// drainer once per KVSGO_WAKE_BATCH buffers instead of at every one (a
// wake costs a system call on each side and a goroutine hand-off), and
// the drainer, when idle, looks at the queue every batchWait as well, so
// that a buffer waits at most that long when such input pauses. The
// buffers the core is done with are unreffed by the next render, on the
// streaming thread that allocated them, rather than by the drainer (a
// buffer freed on another thread costs the allocator more), or by the
// drainer after batchWait if no render comes. A look
// that finds the queue empty ends batch mode: live input, which never runs
// ahead, is woken at every buffer.
const (
	batchAhead = time.Second
	batchWait  = 5 * time.Millisecond
)

// drainer moves buffers from the C render queue (render.c) into the core,
// on one goroutine per started element. It wakes on an eventfd the
// Go runtime polls, so that the streaming thread never enters Go per
// buffer and a busy drainer costs no system call per buffer.
type drainer struct {
	e      *element
	core   *sink.Sink
	av     bool
	ev     *os.File // the eventfd render writes to wake the drainer
	raw    syscall.RawConn
	idle   *int32 // render.c's idle mark
	batch  bool   // the queue is in batch mode
	timed  bool   // the wait has a deadline (batch mode)
	pace   pacer
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// startDrainer opens the render queue for core and starts its goroutine.
func (e *element) startDrainer(core *sink.Sink) (*drainer, error) {
	fd, err := C.kvsgo_render_eventfd()
	if fd < 0 {
		return nil, fmt.Errorf("render queue: eventfd: %w", err)
	}
	ev := os.NewFile(uintptr(fd), "kvssink-wake") // non-blocking: the runtime polls it
	av := e.isAV()
	d := &drainer{e: e, core: core, av: av, ev: ev, done: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	C.kvsgo_render_open(e.el, fd, cBool(av))
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
	d.ev.Close()
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
	failed, expired := false, false
	for {
		var now C.gint64
		n := int(C.kvsgo_render_take(d.e.el, &batch[0], takeBatch, &now))
		if n < 0 {
			return // closed and empty
		}
		if expired {
			// No render came for batchWait: the buffers the core is done
			// with go back to upstream's pool from here.
			C.kvsgo_render_free_done(d.e.el)
		}
		if n == 0 {
			if expired && d.batch {
				// The input paused: back to a wake per buffer, unless
				// buffers came in meanwhile without waking anyone.
				d.batch = false
				d.pace = pacer{}
				if C.kvsgo_render_set_batch(d.e.el, C.FALSE) > 0 {
					continue
				}
			}
			// Idle: the next render writes the eventfd. An error means it
			// was closed under us, which stop never does first.
			var err error
			if expired, err = d.wait(); err != nil {
				return
			}
			continue
		}
		expired = false
		goNow := time.Now()
		kind := d.e.primaryKind() // set_caps waits for the queue: one kind per batch
		for i := range n {
			b := &batch[i]
			if !failed && !d.put(b, kind, goNow, time.Duration(now-b.entered)*time.Microsecond) {
				failed = true
			}
			if !d.batch && b.buf != nil && d.pace.ahead(uint64(b.pts), int64(b.entered)) > batchAhead {
				d.batch = true
				C.kvsgo_render_set_batch(d.e.el, C.TRUE)
			}
		}
		C.kvsgo_render_release(d.e.el, &batch[0], C.int(n))
	}
}

// pacer measures how far buffers run ahead of real time: their PTS
// against the monotonic time at which render took them, from the first
// buffer it saw.
type pacer struct {
	set  bool
	pts0 uint64 // ns
	at0  int64  // µs
}

// ahead takes the next buffer's PTS (ns, or GST_CLOCK_TIME_NONE) and render
// entry (µs), and returns how far the input runs ahead of real time.
func (p *pacer) ahead(pts uint64, at int64) time.Duration {
	if pts == uint64(C.GST_CLOCK_TIME_NONE) {
		return 0
	}
	if !p.set {
		p.set, p.pts0, p.at0 = true, pts, at
		return 0
	}
	return time.Duration(int64(pts-p.pts0)) - time.Duration(at-p.at0)*time.Microsecond
}

// wait blocks until a render has queued a buffer since the drainer went
// idle. The runtime's poller is edge-triggered, and RawConn.Read forgets a
// readiness that came before it: so the first look is at the idle mark,
// which the render that writes the eventfd clears first (cleared: a buffer
// is queued; set: the write comes after the wait began, and wakes it). The
// eventfd is never read: a wait costs no system call of its own.
// In batch mode the wait also ends after batchWait: expired reports that.
func (d *drainer) wait() (expired bool, err error) {
	if d.raw == nil {
		rc, err := d.ev.SyscallConn()
		if err != nil {
			return false, err
		}
		d.raw = rc
		d.idle = (*int32)(unsafe.Pointer(C.kvsgo_render_idle_flag(d.e.el)))
	}
	switch {
	case d.batch:
		d.ev.SetReadDeadline(time.Now().Add(batchWait))
		d.timed = true
	case d.timed:
		d.ev.SetReadDeadline(time.Time{})
		d.timed = false
	}
	first := true
	err = d.raw.Read(func(uintptr) bool {
		if first {
			first = false
			return atomic.LoadInt32(d.idle) == 0
		}
		return true // woken by a write
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true, nil
	}
	return false, err
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
