package main

/*
#include "plugin_desc.h"
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"
)

// GstDebugLevel values used here.
const (
	levelError   = 1
	levelWarning = 2
	levelInfo    = 4
	levelDebug   = 5
	levelLog     = 6
)

// gstLevel maps a slog level to a GstDebugLevel.
func gstLevel(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return levelError
	case l >= slog.LevelWarn:
		return levelWarning
	case l >= slog.LevelInfo:
		return levelInfo
	case l >= slog.LevelDebug:
		return levelDebug
	}
	return levelLog
}

// gstHandler is a slog.Handler that writes the core's records to the kvssink
// debug category (GST_DEBUG=kvssink:5), as "message key=value ...", with the
// element as the object and the core's source position. The core never
// logs secrets.
type gstHandler struct {
	el     *C.GstElement
	prefix string // "group." prefixes of WithGroup
	attrs  string // preformatted " key=value" of WithAttrs
}

func newLogger(el *C.GstElement) *slog.Logger { return slog.New(&gstHandler{el: el}) }

func (h *gstHandler) Enabled(_ context.Context, l slog.Level) bool {
	return C.kvsgo_log_enabled(C.int(gstLevel(l))) != 0
}

func (h *gstHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.prefix, a)
		return true
	})
	file, fn, line := "kvsgo", "core", 0
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		file, line = filepath.Base(f.File), f.Line
		if i := strings.LastIndexByte(f.Function, '.'); i >= 0 {
			fn = f.Function[i+1:]
		}
	}
	logAt(gstLevel(r.Level), file, fn, line, h.el, b.String())
	return nil
}

func (h *gstHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		appendAttr(&b, h.prefix, a)
	}
	return &gstHandler{el: h.el, prefix: h.prefix, attrs: b.String()}
}

func (h *gstHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &gstHandler{el: h.el, prefix: h.prefix + name + ".", attrs: h.attrs}
}

func appendAttr(b *strings.Builder, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			appendAttr(b, p, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	fmt.Fprintf(b, " %s%s=%v", prefix, a.Key, v.Any())
}

// log writes one line to the kvssink category from the element itself.
func (e *element) log(level int, msg string) {
	if C.kvsgo_log_enabled(C.int(level)) == 0 {
		return
	}
	file, fn, line := caller(1)
	logAt(level, file, fn, line, e.el, msg)
}

func logAt(level int, file, fn string, line int, el *C.GstElement, msg string) {
	cm, cf, cfn := C.CString(msg), C.CString(file), C.CString(fn)
	defer C.free(unsafe.Pointer(cm))
	defer C.free(unsafe.Pointer(cf))
	defer C.free(unsafe.Pointer(cfn))
	C.kvsgo_log(C.int(level), cf, cfn, C.int(line), el, cm)
}
