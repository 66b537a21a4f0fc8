package main

/*
#include "kvsgo.h"
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"unsafe"
)

// gstHandler sends the core's slog records to the kvssink debug category
// (GST_DEBUG=kvssink:5). The core never logs secrets; attributes are
// formatted as key=value.
type gstHandler struct {
	el    *C.GstElement
	attrs []slog.Attr
	group string
}

func newLogger(el *C.GstElement) *slog.Logger { return slog.New(&gstHandler{el: el}) }

func gstLevel(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 1
	case l >= slog.LevelWarn:
		return 2
	case l >= slog.LevelInfo:
		return 4
	}
	return 5
}

func (h *gstHandler) Enabled(_ context.Context, l slog.Level) bool {
	return C.kvsgo_log_enabled(C.int(gstLevel(l))) != 0
}

func (h *gstHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		if h.group != "" {
			fmt.Fprintf(&b, " %s.%s=%v", h.group, a.Key, a.Value)
		} else {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		}
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	cs := C.CString(b.String())
	defer C.free(unsafe.Pointer(cs))
	file, fn := C.CString("kvsgo"), C.CString("core")
	defer C.free(unsafe.Pointer(file))
	defer C.free(unsafe.Pointer(fn))
	C.kvsgo_log(C.int(gstLevel(r.Level)), file, fn, 0, h.el, cs)
	return nil
}

func (h *gstHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &gstHandler{el: h.el, attrs: append(append([]slog.Attr(nil), h.attrs...), as...), group: h.group}
}

func (h *gstHandler) WithGroup(name string) slog.Handler {
	return &gstHandler{el: h.el, attrs: h.attrs, group: name}
}

// log writes one line to the kvssink category from the element itself.
func (e *element) log(level int, msg string) {
	if C.kvsgo_log_enabled(C.int(level)) == 0 {
		return
	}
	cs := C.CString(msg)
	defer C.free(unsafe.Pointer(cs))
	file, fn := C.CString("element.go"), C.CString("kvssink")
	defer C.free(unsafe.Pointer(file))
	defer C.free(unsafe.Pointer(fn))
	C.kvsgo_log(C.int(level), file, fn, 0, e.el, cs)
}
