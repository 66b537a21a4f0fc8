package main

/*
#include "plugin_desc.h"
#include <stdlib.h>
*/
import "C"

import (
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/kvsgo/kvsgo/pkg/sink"
)

// Element messages. Each is a GstStructure named kvs-… on an element
// message from the kvssink instance:
//
//	kvs-fragment-ack         type, timecode, fragment-number
//	kvs-stream-error         error-name, error-id, status, timecode, fragment-number, retriable, message
//	kvs-stream-failed        status, message (also the element error and the stream-error signal)
//	kvs-connection-lost      reason (network, connection-staleness, max-latency, error-ack), message
//	kvs-connection-restored  resume-timecode, message
//	kvs-dropped-frames       frames, fragments, from, to (stream time, ns), reason
//	kvs-metrics              bytes-sent, frames, frames-dropped, fragments-sent, fragments-acked,
//	                         connections, latency (ns), store-bytes, store-size, store-duration (ns),
//	                         buffer-duration (ns), frame-pts (ns), send-latency-p50, send-latency-p99 (ns), uptime (ns), transfer-rate (bytes/s),
//	                         buffered-acks, received-acks, persisted-acks, error-acks

// field sets one field of a message structure.
type field func(s *C.GstStructure)

func str(name, v string) field {
	return func(s *C.GstStructure) {
		n, cv := C.CString(name), C.CString(v)
		defer C.free(unsafe.Pointer(n))
		defer C.free(unsafe.Pointer(cv))
		C.kvsgo_msg_set_string(s, n, cv)
	}
}

func u64(name string, v uint64) field {
	return func(s *C.GstStructure) {
		n := C.CString(name)
		defer C.free(unsafe.Pointer(n))
		C.kvsgo_msg_set_uint64(s, n, C.guint64(v))
	}
}

func i32(name string, v int) field {
	return func(s *C.GstStructure) {
		n := C.CString(name)
		defer C.free(unsafe.Pointer(n))
		C.kvsgo_msg_set_int(s, n, C.gint(v))
	}
}

func boolean(name string, v bool) field {
	return func(s *C.GstStructure) {
		n := C.CString(name)
		defer C.free(unsafe.Pointer(n))
		b := C.gboolean(0)
		if v {
			b = 1
		}
		C.kvsgo_msg_set_boolean(s, n, b)
	}
}

// message posts an element message named name with fields.
func (e *element) message(name string, fields ...field) {
	n := C.CString(name)
	defer C.free(unsafe.Pointer(n))
	s := C.kvsgo_msg_new(n)
	for _, f := range fields {
		f(s)
	}
	C.kvsgo_msg_post(e.el, s)
}

func streamTime(d time.Duration) string {
	if d > 365*24*time.Hour { // absolute: epoch time
		return time.Unix(0, int64(d)).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return d.String()
}

// ackCounts counts acknowledgements by type, for stream-client-metric.
type ackCounts struct{ buffering, received, persisted, errors atomic.Uint64 }

func (a *ackCounts) count(t string) {
	switch t {
	case "BUFFERING":
		a.buffering.Add(1)
	case "RECEIVED":
		a.received.Add(1)
	case "PERSISTED":
		a.persisted.Add(1)
	case "ERROR":
		a.errors.Add(1)
	}
}

// metrics posts kvs-metrics and, when get-kvs-metrics is set, emits the
// official stream-client-metric signal with a KvsSinkMetric layout for key
// frames.
func (e *element) metrics(m sink.Metrics, keyFrame bool) {
	e.message("kvs-metrics",
		u64("bytes-sent", m.BytesSent), u64("frames", m.FramesPut), u64("frames-dropped", m.FramesDropped),
		u64("fragments-sent", m.FragmentsSent), u64("fragments-acked", m.FragmentsAcked), u64("connections", m.Connections),
		u64("latency", uint64(m.Latency)), u64("store-bytes", uint64(m.StoreBytes)), u64("store-size", uint64(m.StoreSize)),
		u64("store-duration", uint64(max(m.StoreDuration, 0))), u64("buffer-duration", uint64(m.BufferDuration)),
		u64("frame-pts", uint64(m.FramePTS)),
		u64("send-latency-p50", uint64(m.SendLatencyP50)), u64("send-latency-p99", uint64(m.SendLatencyP99)),
		// The rest of stream-client-metric, so that every value of the
		// signal is readable from languages that cannot read its pointer.
		u64("uptime", uint64(max(time.Since(e.started), 0))), u64("transfer-rate", transferRate(m.BytesSent, time.Since(e.started))),
		u64("buffered-acks", e.acks.buffering.Load()), u64("received-acks", e.acks.received.Load()),
		u64("persisted-acks", e.acks.persisted.Load()), u64("error-acks", e.acks.errors.Load()))
	e.mu.Lock()
	on := e.settings.GetKVSMetrics
	e.mu.Unlock()
	// The signal is the official one: per key frame only, not on the
	// metrics-interval ticks.
	if !on || !keyFrame || C.kvsgo_has_handler(e.el, cSignalMetric) == 0 {
		return
	}
	const hns = 100 // ns per PIC time unit
	var km C.KvsgoSinkMetric
	sm := &km.stream_metrics
	sm.version = 3
	sm.current_view_duration = C.guint64(m.Latency / hns)
	sm.overall_view_duration = C.guint64(max(m.StoreDuration, 0) / hns)
	sm.overall_view_size = C.guint64(m.StoreBytes)
	sm.current_view_size = C.guint64(m.StoreBytes)
	sm.uptime = C.guint64(time.Since(e.started) / hns)
	sm.transferred_bytes = C.guint64(m.BytesSent)
	sm.total_sessions = C.guint64(m.Connections)
	sm.total_active_sessions = C.guint64(m.Connections)
	sm.buffered_acks = C.guint64(e.acks.buffering.Load())
	sm.received_acks = C.guint64(e.acks.received.Load())
	sm.persisted_acks = C.guint64(e.acks.persisted.Load())
	sm.error_acks = C.guint64(e.acks.errors.Load())
	sm.dropped_frames = C.guint64(m.FramesDropped)
	sm.current_transfer_rate = C.guint64(transferRate(m.BytesSent, time.Since(e.started)))
	cm := &km.client_metrics
	cm.version = 1
	cm.content_store_size = C.guint64(m.StoreSize)
	cm.content_store_allocated_size = C.guint64(m.StoreBytes)
	cm.content_store_available_size = C.guint64(max(m.StoreSize-m.StoreBytes, 0))
	km.frame_pts = C.guint64(m.FramePTS)
	if e.first.Swap(false) {
		km.on_first_frame = 1
	}
	C.kvsgo_emit_stream_client_metric(e.el, C.gpointer(unsafe.Pointer(&km)))
}

var cSignalMetric = C.CString("stream-client-metric")

// transferRate is the average upload rate since start, bytes per second.
func transferRate(bytes uint64, up time.Duration) uint64 {
	if up <= 0 {
		return 0
	}
	return uint64(float64(bytes) / up.Seconds())
}
