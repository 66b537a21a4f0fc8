package main

/*
#include "plugin_desc.h"
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/kvsgo/kvsgo/pkg/sink"
)

// formatFromCaps reads the first structure of fixed caps into sink.Format:
// codec, stream-format, codec_data, width/height, framerate, rate/channels.
// The core decides what is acceptable.
func formatFromCaps(caps *C.GstCaps) (sink.Format, error) {
	var f sink.Format
	if C.gst_caps_get_size(caps) == 0 {
		return f, fmt.Errorf("%w: empty caps", sink.ErrFormat)
	}
	s := C.gst_caps_get_structure(caps, 0)
	name := C.GoString(C.kvsgo_structure_name(s))
	switch name {
	case "video/x-h264":
		f.Codec = "h264"
	case "video/x-h265":
		f.Codec = "h265"
	case "audio/mpeg":
		f.Codec = "aac"
	case "audio/x-alaw":
		f.Codec = "alaw"
	case "audio/x-mulaw":
		f.Codec = "mulaw"
	default:
		return f, fmt.Errorf("%w: media type %s", sink.ErrFormat, name)
	}
	f.StreamFormat = fieldString(s, "stream-format")
	f.Width, _ = fieldInt(s, "width")
	f.Height, _ = fieldInt(s, "height")
	f.Rate, _ = fieldInt(s, "rate")
	f.Channels, _ = fieldInt(s, "channels")
	var num, den C.gint
	if fieldFraction(s, "framerate", &num, &den) {
		f.FramerateNum, f.FramerateDen = int(num), int(den)
	}
	cf := C.CString("codec_data")
	defer C.free(unsafe.Pointer(cf))
	if buf := C.kvsgo_structure_get_buffer(s, cf); buf != nil { // borrowed from the caps
		var b C.KvsgoBuffer
		if C.kvsgo_buffer_map(buf, 0, &b) == 0 {
			return f, fmt.Errorf("%w: codec_data cannot be mapped", sink.ErrFormat)
		}
		f.CodecData = C.GoBytes(unsafe.Pointer(b.data), C.int(b.size)) // the core may keep it
		C.kvsgo_buffer_unmap(buf, &b)
	}
	return f, nil
}

func fieldString(s *C.GstStructure, name string) string {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	v := C.kvsgo_structure_field_string(s, cn)
	if v == nil {
		return ""
	}
	defer C.g_free(C.gpointer(unsafe.Pointer(v)))
	return C.GoString(v)
}

func fieldInt(s *C.GstStructure, name string) (int, bool) {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var v C.gint
	ok := C.kvsgo_structure_get_int(s, cn, &v) != 0
	return int(v), ok
}

func fieldFraction(s *C.GstStructure, name string, num, den *C.gint) bool {
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return C.kvsgo_structure_get_fraction(s, cn, num, den) != 0
}
