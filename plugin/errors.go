package main

import (
	"errors"

	"github.com/go-gst/go-gst/gst"

	"github.com/kvsgo/kvsgo/pkg/credentials"
	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/sink"
)

// errorCode maps a core error to a GStreamer error domain (0 resource,
// 1 stream, 2 library, 3 core) and code: the one place where that is decided.
func errorCode(err error) (int, int) {
	switch {
	case errors.Is(err, kvs.ErrAccessDenied), errors.Is(err, credentials.ErrNoCredentials):
		return 0, int(gst.ResourceErrorNotAuthorized)
	case errors.Is(err, kvs.ErrStreamNotFound):
		return 0, int(gst.ResourceErrorNotFound)
	case errors.Is(err, sink.ErrSettings):
		return 0, int(gst.ResourceErrorSettings)
	case errors.Is(err, sink.ErrFormat), errors.Is(err, sink.ErrNoFormat):
		return 1, int(gst.StreamErrorFormat)
	case errors.Is(err, sink.ErrStopTimeout):
		return 0, int(gst.ResourceErrorWrite)
	}
	return 1, int(gst.StreamErrorFailed)
}
