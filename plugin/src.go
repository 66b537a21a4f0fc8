package main

/*
#include "src.h"
#include "starterr.h"
#include "plugin_desc.h"
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/base"

	"github.com/kvsgo/kvsgo/pkg/credentials"
	"github.com/kvsgo/kvsgo/pkg/e2ee/mkvstream"
	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/sink"
	"github.com/kvsgo/kvsgo/pkg/source"
)

// kvssrc plays a Kinesis video stream: a GstBaseSrc (bytes) whose output is
// one Matroska segment (video/x-matroska) made by pkg/source, live or
// archived, decrypted in-line when keys are set.
//
// Threads: properties, start, stop, unlock and unlock_stop run on
// application threads; create on the streaming thread; the source on its
// own goroutines, which hand chunks to create through a bounded channel.
type srcElement struct {
	el *C.GstElement

	mu      sync.Mutex
	shared  sink.Settings     // the connection and credential properties kvssink has too
	structs map[string]string // serialisation of the GstStructure properties that are set
	own     srcSettings
	live    bool
	run     *srcRun        // between start and stop
	base    source.Config  // of the run started by start (seeks restart from it)
	seekTo  *time.Duration // a TIME seek prepared, not yet done
	pushed  bool           // the segment head went downstream

	dropLast map[error]time.Time // cause -> last kvs-decrypt-dropped

	unlockMu sync.Mutex
	unlocked chan struct{} // closed by unlock, replaced by unlock_stop
}

// srcRun is one start..stop of the source.
type srcRun struct {
	src      *source.Source
	cancel   context.CancelFunc
	chunks   chan []byte
	done     chan struct{}
	err      error // set before done closes
	reporter *problemReporter
}

// srcQueue bounds what the source reads ahead of create: chunks are single
// frames (or a header or cluster start), so 256 is several seconds of video,
// enough to ride out a slow downstream without holding a connection's worth
// of data in memory.
const srcQueue = 256

const (
	srcFactoryName = "kvssrc"
	srcTypeName    = "GstKvsgoSrc"
)

func (*srcElement) New() glib.GoObjectSubclass { return &srcElement{} }

func (*srcElement) ClassInit(k *glib.ObjectClass) {
	c := gst.ToElementClass(k)
	c.SetMetadata("KVS Source", "Source/Network",
		"Plays an Amazon Kinesis Video stream, live (GetMedia, resuming after dropped connections) or archived (a time range), as one Matroska stream, decrypting end-to-end encrypted streams",
		"kvsgo <https://github.com/kvsgo/kvsgo>")
	c.AddPadTemplate(gst.NewPadTemplate("src", gst.PadDirectionSource, gst.PadPresenceAlways, gst.NewCapsFromString("video/x-matroska")))
	c.InstallProperties(srcParamSpecs())
	C.kvsgo_src_class_init(C.gpointer(unsafe.Pointer(k.Unsafe())))
	C.kvsgo_filter_start_fallback(C.gpointer(unsafe.Pointer(k.Unsafe())))
}

func (e *srcElement) InstanceInit(obj *glib.Object) {
	e.el = (*C.GstElement)(obj.Unsafe())
	e.shared = sink.DefaultSettings()
	if e.shared.CredentialPath == nil {
		p := sink.DefaultCredentialPath
		e.shared.CredentialPath = &p
	}
	e.structs = map[string]string{}
	e.own = defaultSrcSettings()
	e.unlocked = make(chan struct{})
	e.setLive(true)
}

func (e *srcElement) Constructed(*glib.Object) { e.msg().rename("kvsgosrc", srcFactoryName) }

// msg posts through the same helpers as kvssink.
func (e *srcElement) msg() *element { return &element{el: e.el} }

// setLive is called with mu held.
func (e *srcElement) setLive(live bool) {
	e.live = live
	b := C.gboolean(0)
	if live {
		b = 1
	}
	C.kvsgo_src_set_live(e.el, b)
}

func srcFrom(el *C.GstElement) *srcElement {
	return glib.FromObjectUnsafePrivate(unsafe.Pointer(el)).(*srcElement)
}

// Start resolves the settings and starts reading.
func (e *srcElement) Start(self *base.GstBaseSrc) (ok bool) {
	defer e.msg().recoverPanic("kvssrc start", func() { ok = false })
	e.mu.Lock()
	st, own := e.shared, e.own
	e.mu.Unlock()
	c, err := st.Config(os.Getenv)
	if err == nil {
		c, err = e.open(c)
	}
	if err != nil {
		e.fail(startFailure(st.StreamName, err), err)
		C.kvsgo_start_failed(e.el)
		return false
	}
	e.msg().announceCredentials(c)
	cfg, err := own.sourceConfig(c)
	if err != nil {
		e.fail(fmt.Sprintf("Invalid settings for stream %q", st.StreamName), err)
		C.kvsgo_start_failed(e.el)
		return false
	}
	e.mu.Lock()
	e.seekTo = nil
	e.mu.Unlock()
	if err := e.startRun(cfg); err != nil {
		e.fail(fmt.Sprintf("Invalid settings for stream %q", st.StreamName), err)
		C.kvsgo_start_failed(e.el)
		return false
	}
	mode := "live from " + cfg.Start.Type
	if cfg.Archive != nil {
		mode = fmt.Sprintf("archived %s to %s", cfg.Archive.Start.UTC().Format(time.RFC3339Nano), cfg.Archive.End.UTC().Format(time.RFC3339Nano))
	}
	e.msg().log(levelInfo, fmt.Sprintf("started: stream=%s region=%s endpoint=%s (from %s) credentials=%s, %s",
		c.StreamName, c.Region, c.Endpoint, c.EndpointSource, c.CredSource, mode))
	return true
}

// open runs c.Open (CA bundle, credentials) under a context that unlock
// cancels.
func (e *srcElement) open(c sink.Config) (sink.Config, error) {
	e.unlockMu.Lock()
	unlocked := e.unlocked
	e.unlockMu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-unlocked:
			cancel()
		case <-ctx.Done():
		}
	}()
	return c.Open(ctx)
}

// startRun starts reading with cfg; a run in progress must have ended.
func (e *srcElement) startRun(cfg source.Config) error {
	r := &srcRun{chunks: make(chan []byte, srcQueue), done: make(chan struct{})}
	r.reporter = newProblemReporter(e.msg(), srcFactoryName)
	cfg.Logger = newLogger(e.el)
	cfg.OnEvent = func(ev source.Event) { e.onEvent(r, ev) }
	src, err := source.New(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.src, r.cancel = src, cancel
	go func() {
		defer close(r.done)
		r.err = src.Run(ctx, func(b []byte) error {
			select {
			case r.chunks <- append([]byte(nil), b...):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	e.mu.Lock()
	e.run = r
	if cfg.SeekTo == 0 && !cfg.SkipHeader {
		e.base, e.pushed = cfg, false
	}
	e.mu.Unlock()
	return nil
}

//export kvsgoSrcSeekable
func kvsgoSrcSeekable(el *C.GstElement) C.gboolean {
	e := srcFrom(el)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live {
		return 0
	}
	return 1
}

//export kvsgoSrcPrepareSeek
func kvsgoSrcPrepareSeek(el *C.GstElement, target C.guint64) (ok C.gboolean) {
	e := srcFrom(el)
	defer e.msg().recoverPanic("kvssrc seek", func() { ok = 0 })
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live || e.base.Archive == nil {
		return 0
	}
	t := time.Duration(target)
	e.seekTo = &t
	return 1
}

// kvsgoSrcDoSeek restarts the reading at the prepared target, keeping the
// first run's origin so that stream times do not move. GstBaseSrc has
// flushed and stopped create by now.
//
//export kvsgoSrcDoSeek
func kvsgoSrcDoSeek(el *C.GstElement, offset C.gint64) (ok C.gboolean) {
	e := srcFrom(el)
	defer e.msg().recoverPanic("kvssrc seek", func() { ok = 0 })
	e.mu.Lock()
	target, r, cfg, pushed := e.seekTo, e.run, e.base, e.pushed
	e.seekTo = nil
	e.mu.Unlock()
	if target == nil && offset > 0 && r != nil {
		// A demuxer's seek to a cluster of the index (pkg/source/cues.go).
		t, found := r.src.SeekOffset(int64(offset))
		if !found {
			e.msg().log(levelWarning, fmt.Sprintf("seek to byte %d: not a fragment of the index", int64(offset)))
			return 0
		}
		target = &t
	}
	if target == nil {
		return 1 // GstBaseSrc's own seek to the start
	}
	if r == nil {
		return 0
	}
	origin := r.src.Origin()
	r.cancel()
	<-r.done
	cfg.SeekTo = *target
	cfg.SkipHeader = pushed
	if origin != nil {
		cfg.Origin = origin
	}
	e.msg().log(levelInfo, fmt.Sprintf("seeking to %v", *target))
	if err := e.startRun(cfg); err != nil {
		e.fail("Could not seek", err)
		return 0
	}
	return 1
}

// Stop ends reading.
func (e *srcElement) Stop(self *base.GstBaseSrc) (ok bool) {
	defer e.msg().recoverPanic("kvssrc stop", func() { ok = false })
	e.mu.Lock()
	r := e.run
	e.run = nil
	e.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
	return true
}

func (e *srcElement) Unlock(self *base.GstBaseSrc) bool {
	e.unlockMu.Lock()
	defer e.unlockMu.Unlock()
	select {
	case <-e.unlocked:
	default:
		close(e.unlocked)
	}
	return true
}

func (e *srcElement) UnlockStop(self *base.GstBaseSrc) bool {
	e.unlockMu.Lock()
	defer e.unlockMu.Unlock()
	select {
	case <-e.unlocked:
		e.unlocked = make(chan struct{})
	default:
	}
	return true
}

//export kvsgoSrcCreate
func kvsgoSrcCreate(el *C.GstElement, out **C.GstBuffer) (ret C.GstFlowReturn) {
	e := srcFrom(el)
	defer e.msg().recoverPanic("kvssrc create", func() { ret = C.GST_FLOW_ERROR })
	e.mu.Lock()
	r := e.run
	e.mu.Unlock()
	e.unlockMu.Lock()
	unlocked := e.unlocked
	e.unlockMu.Unlock()
	if r == nil {
		return C.GST_FLOW_FLUSHING
	}
	var b []byte
	select {
	case b = <-r.chunks:
	case <-unlocked:
		return C.GST_FLOW_FLUSHING
	case <-r.done:
		// Chunks queued before the end still go out.
		select {
		case b = <-r.chunks:
		default:
			return e.end(r)
		}
	}
	*out = C.kvsgo_src_buffer((*C.guint8)(unsafe.Pointer(&b[0])), C.gsize(len(b)))
	e.mu.Lock()
	e.pushed = true
	e.mu.Unlock()
	return C.GST_FLOW_OK
}

// end turns the source's result into the flow return: EOS at the end of an
// archived range or after idle-timeout, an element error otherwise.
func (e *srcElement) end(r *srcRun) C.GstFlowReturn {
	switch {
	case r.err == nil:
		return C.GST_FLOW_EOS
	case errors.Is(r.err, context.Canceled):
		return C.GST_FLOW_FLUSHING
	}
	e.mu.Lock()
	stream := e.shared.StreamName
	e.mu.Unlock()
	e.fail(fmt.Sprintf("Could not read stream %q", stream), r.err)
	return C.GST_FLOW_ERROR
}

//export kvsgoSrcLatency
func kvsgoSrcLatency(el *C.GstElement, min *C.guint64) C.gboolean {
	e := srcFrom(el)
	e.mu.Lock()
	defer e.mu.Unlock()
	*min = C.guint64(time.Duration(e.own.latencyMs) * time.Millisecond)
	if e.live {
		return 1
	}
	return 0
}

// onEvent posts the source's reports as element messages:
//
//	kvs-fragment-received  fragment-number, producer-timestamp, server-timestamp (ns since 1970),
//	                       stream-time (ns), millis-behind-now (-1 if unknown); posted once the
//	                       fragment's frames are out
//	kvs-gap                from, to (stream time, ns), fragment-number
//	kvs-resumed            after (continuation token or fragment number), attempt, reason
//	kvs-decrypt-dropped    cause, dropped, frames, opened (rate-limited; also an element warning)
func (e *srcElement) onEvent(r *srcRun, ev source.Event) {
	m := e.msg()
	switch ev.Kind {
	case source.EventFragment:
		m.message("kvs-fragment-received", str("fragment-number", ev.Number),
			u64("producer-timestamp", unixNano(ev.Producer)), u64("server-timestamp", unixNano(ev.Server)),
			u64("stream-time", uint64(ev.Time)), i64("millis-behind-now", ev.MillisBehindNow))
	case source.EventGap:
		m.message("kvs-gap", u64("from", uint64(ev.GapFrom)), u64("to", uint64(ev.GapTo)), str("fragment-number", ev.Number))
		m.log(levelWarning, fmt.Sprintf("gap in stream: no frame from %v to %v", ev.GapFrom, ev.GapTo))
	case source.EventResume:
		reason := "the service ended the response"
		if ev.Err != nil {
			reason = ev.Err.Error()
		}
		m.message("kvs-resumed", str("after", ev.Token), i32("attempt", ev.Attempt), str("reason", reason))
		m.log(levelInfo, fmt.Sprintf("reconnecting after %q (attempt %d): %s", ev.Token, ev.Attempt, reason))
	case source.EventDecryptDrop:
		r.reporter.report(ev.Err, ev.Report)
		e.decryptMessage(ev.Err, ev.Report)
	}
}

// decryptMessage posts kvs-decrypt-dropped, at most once per warnEvery
// per cause (as the warnings).
func (e *srcElement) decryptMessage(err error, rep *mkvstream.Report) {
	cause := mkvstream.Cause(err)
	e.mu.Lock()
	if e.dropLast == nil {
		e.dropLast = map[error]time.Time{}
	}
	t, seen := e.dropLast[cause]
	now := time.Now()
	if seen && now.Sub(t) < warnEvery {
		e.mu.Unlock()
		return
	}
	e.dropLast[cause] = now
	e.mu.Unlock()
	e.msg().message("kvs-decrypt-dropped", str("cause", cause.Error()), u64("dropped", uint64(rep.Dropped())),
		u64("frames", uint64(rep.Frames)), u64("opened", uint64(rep.Opened)))
}

func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

func i64(name string, v int64) field {
	return func(s *C.GstStructure) {
		n := C.CString(name)
		defer C.free(unsafe.Pointer(n))
		C.kvsgo_msg_set_int64(s, n, C.gint64(v))
	}
}

// fail posts one element error for err, in the domain srcErrorCode picks.
func (e *srcElement) fail(text string, err error) {
	domain, code := srcErrorCode(err)
	e.msg().postAt(1, kindError, domain, code, fmt.Sprintf("%s: %v", text, err), "")
}

// srcErrorCode maps the source's errors to GStreamer error codes.
func srcErrorCode(err error) (domain, code int) {
	var netErr net.Error
	var fe *source.FragmentError
	switch {
	case errors.Is(err, kvs.ErrAccessDenied), errors.Is(err, credentials.ErrNoCredentials):
		return domainResource, int(gst.ResourceErrorNotAuthorized)
	case errors.Is(err, kvs.ErrStreamNotFound), errors.Is(err, source.ErrNoFragments), errors.As(err, &fe):
		return domainResource, int(gst.ResourceErrorNotFound)
	case errors.Is(err, sink.ErrSettings), errors.Is(err, source.ErrSettings):
		return domainResource, int(gst.ResourceErrorSettings)
	case errors.Is(err, source.ErrTracksChanged), errors.Is(err, source.ErrNoTracks), errors.Is(err, source.ErrBadMedia):
		return domainStream, int(gst.StreamErrorFormat)
	case errors.Is(err, mkvstream.ErrNothingDecrypted), errors.Is(err, mkvstream.ErrContextMismatch), errors.Is(err, mkvstream.ErrNotEncrypted):
		return domainStream, int(gst.StreamErrorDecrypt)
	case errors.Is(err, source.ErrGaveUp), errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr):
		return domainResource, int(gst.ResourceErrorRead)
	}
	return domainStream, int(gst.StreamErrorFailed)
}
