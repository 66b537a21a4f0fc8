// Command plugin is libgstkvsgo.so: every kvsgo GStreamer element in one Go
// shared object (go build -buildmode=c-shared -o libgstkvsgo.so ./plugin).
//
// The Go here is glue only: GObject properties to sink.Settings, caps to
// sink.Format, buffers to sink.Frame, core errors to element errors. Every
// decision worth testing lives in pkg/sink and below. The C in plugin_desc.c
// covers what go-gst v1.4.0 lacks or gets wrong (see plugin_desc.h).
package main

/*
#cgo pkg-config: gstreamer-1.0 gstreamer-base-1.0
#include "plugin_desc.h"
#include "starterr.h"
#include "av.h"
#include "render.h"
#include <stdlib.h>
*/
import "C"

import (
	"unsafe"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/base"
)

func main() {} // required by -buildmode=c-shared; never runs

// Factory names and GType names. The GType names differ from the official
// element's (GstKvsSink, GstKvsSinkStreamingType) so that both plugins can be
// loaded in one process; kvsgosink stays usable where the official kvssink is
// installed and owns that name.
const (
	factoryName      = "kvssink"
	aliasFactoryName = "kvsgosink"
	typeName         = "GstKvsgoSink"
	aliasTypeName    = "GstKvsgoSinkAlias"
)

//export kvsgoPluginInit
func kvsgoPluginInit(plugin *C.GstPlugin) C.gboolean {
	// gst.RegisterElement would use the factory name as the GType name, so
	// register the GTypes here and the factories in C. Rank primary+10 for
	// kvssink, as the official element, so that autoplugging picks it too.
	t := glib.RegisterGoType(typeName, &kvsSink{}, base.ExtendsBaseSink)
	if C.kvsgo_register(plugin, C.CString(factoryName), C.guint(gst.RankPrimary+10), C.GType(t)) == 0 {
		return C.FALSE
	}
	a := glib.RegisterGoType(aliasTypeName, &kvsgoSink{}, base.ExtendsBaseSink)
	if C.kvsgo_register(plugin, C.CString(aliasFactoryName), C.guint(gst.RankNone), C.GType(a)) == 0 {
		return C.FALSE
	}
	d := glib.RegisterGoType(decryptTypeName, &decryptElement{}, gst.ExtendsElement)
	if C.kvsgo_register(plugin, C.CString(decryptFactoryName), C.guint(gst.RankNone), C.GType(d)) == 0 {
		return C.FALSE
	}
	sr := glib.RegisterGoType(srcTypeName, &srcElement{}, base.ExtendsBaseSrc)
	if C.kvsgo_register(plugin, C.CString(srcFactoryName), C.guint(gst.RankNone), C.GType(sr)) == 0 {
		return C.FALSE
	}
	return C.TRUE
}

// kvsSink and kvsgoSink are the same element under two names. go-glib caches
// GTypes by Go type name, hence two distinct types around one implementation.
type kvsSink struct{ element }
type kvsgoSink struct{ element }

func (*kvsSink) New() glib.GoObjectSubclass   { return &kvsSink{} }
func (*kvsgoSink) New() glib.GoObjectSubclass { return &kvsgoSink{} }

func (*kvsSink) ClassInit(k *glib.ObjectClass)   { classInit(k, "KVS Sink") }
func (*kvsgoSink) ClassInit(k *glib.ObjectClass) { classInit(k, "KVS Sink (kvsgo)") }

// Default element names follow the factory, as the official element's do
// (kvssink0, kvssink1, ...; kvsgosink0, ...), not the GType names.
func (s *kvsSink) Constructed(*glib.Object)   { s.rename("kvsgosink", factoryName) }
func (s *kvsgoSink) Constructed(*glib.Object) { s.rename("kvsgosinkalias", aliasFactoryName) }

func (e *element) rename(from, to string) {
	cf, ct := C.CString(from), C.CString(to)
	defer C.free(unsafe.Pointer(cf))
	defer C.free(unsafe.Pointer(ct))
	C.kvsgo_rename_default(e.el, cf, ct)
}

// sinkCaps is what the sink pad takes: one track of H.264, H.265, AAC, A-law
// or µ-law, one access unit per buffer. The official element takes H.264
// only as avc; the core also converts avc3 and byte-stream. H.265
// byte-stream is converted too, with the hvcC built from the in-band
// VPS/SPS/PPS (the official element stores it without CodecPrivate, which no
// player can play).
const sinkCaps = "video/x-h264, stream-format=(string){ avc, avc3, byte-stream }, alignment=(string)au; " +
	"video/x-h265, stream-format=(string){ hvc1, hev1, byte-stream }, alignment=(string)au; " +
	"audio/mpeg, mpegversion=(int){ 2, 4 }, stream-format=(string)raw, channels=(int)[ 1, MAX ], rate=(int)[ 1, MAX ]; " +
	"audio/x-alaw, channels=(int){ 1, 2 }, rate=(int)[ 8000, 192000 ]; " +
	"audio/x-mulaw, channels=(int){ 1, 2 }, rate=(int)[ 8000, 192000 ]"

func classInit(k *glib.ObjectClass, longName string) {
	c := gst.ToElementClass(k)
	c.SetMetadata(longName, "Sink/Video/Network",
		"Streams H.264, H.265, AAC, A-law or µ-law to Amazon Kinesis Video Streams (a drop-in for the official kvssink)",
		"kvsgo <https://github.com/kvsgo/kvsgo>")
	addPadTemplates(c) // av.go
	c.InstallProperties(paramSpecs())
	C.kvsgo_class_init(C.gpointer(unsafe.Pointer(k.Unsafe())))
	C.kvsgo_filter_start_fallback(C.gpointer(unsafe.Pointer(k.Unsafe())))
	C.kvsgo_av_class_init(C.gpointer(unsafe.Pointer(k.Unsafe())))
	C.kvsgo_render_class_init(C.gpointer(unsafe.Pointer(k.Unsafe())), skipFlags)
}
