// Command plugin is libgstkvsgo.so: every kvsgo GStreamer element in one Go
// shared object (go build -buildmode=c-shared). The Go here is glue only:
// properties to sink.Settings, buffers to sink.Frame, core errors to element
// errors. Every decision worth testing lives in pkg/.
package main

/*
#cgo pkg-config: gstreamer-1.0 gstreamer-base-1.0
#include "kvsgo.h"
*/
import "C"

import (
	"unsafe"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/base"
)

func main() {} // required by -buildmode=c-shared; never runs

// Factory names and GType names. The GTypes differ from the official
// element's (GstKvsSink, GstKvsSinkStreamingType) so that both plugins can be
// loaded in one process; kvsgosink stays usable where the official kvssink
// is installed and owns that name.
const (
	factoryName      = "kvssink"
	aliasFactoryName = "kvsgosink"
	typeName         = "GstKvsgoSink"
	aliasTypeName    = "GstKvsgoSinkAlias"
)

//export kvsgoPluginInit
func kvsgoPluginInit(plugin *C.GstPlugin) C.gboolean {
	t := glib.RegisterGoType(typeName, &kvsSink{}, base.ExtendsBaseSink)
	C.kvsgo_register(plugin, C.CString(factoryName), C.guint(gst.RankPrimary+10), C.GType(t))
	a := glib.RegisterGoType(aliasTypeName, &kvsgoSink{}, base.ExtendsBaseSink)
	C.kvsgo_register(plugin, C.CString(aliasFactoryName), C.guint(gst.RankNone), C.GType(a))
	return C.TRUE
}

// kvsSink and kvsgoSink are the same element under two names; go-glib keys
// GTypes by Go type, hence two types.
type kvsSink struct{ element }
type kvsgoSink struct{ element }

func (*kvsSink) New() glib.GoObjectSubclass   { return &kvsSink{} }
func (*kvsgoSink) New() glib.GoObjectSubclass { return &kvsgoSink{} }

func (s *kvsSink) ClassInit(k *glib.ObjectClass)   { classInit(k, "KVS Sink") }
func (s *kvsgoSink) ClassInit(k *glib.ObjectClass) { classInit(k, "KVS Sink (kvsgo)") }

// sinkCaps is what the sink pad takes: one track.
const sinkCaps = "video/x-h264, stream-format=(string){ avc, avc3, byte-stream }, alignment=(string)au; " +
	"video/x-h265, stream-format=(string){ hvc1, hev1 }, alignment=(string)au; " +
	"audio/mpeg, mpegversion=(int){ 2, 4 }, stream-format=(string)raw, channels=(int)[ 1, MAX ], rate=(int)[ 1, MAX ]; " +
	"audio/x-alaw, channels=(int){ 1, 2 }, rate=(int)[ 8000, 192000 ]; " +
	"audio/x-mulaw, channels=(int){ 1, 2 }, rate=(int)[ 8000, 192000 ]"

func classInit(k *glib.ObjectClass, longName string) {
	c := gst.ToElementClass(k)
	c.SetMetadata(longName, "Sink/Video/Network",
		"Streams H.264, H.265, AAC and G.711 to Amazon Kinesis Video Streams (drop-in for the official kvssink)",
		"kvsgo <https://github.com/kvsgo/kvsgo>")
	c.AddPadTemplate(gst.NewPadTemplate("sink", gst.PadDirectionSink, gst.PadPresenceAlways, gst.NewCapsFromString(sinkCaps)))
	c.InstallProperties(paramSpecs())
	C.kvsgo_class_init(C.gpointer(unsafe.Pointer(k.Unsafe())))
}
