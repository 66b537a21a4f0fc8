package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"

	"github.com/go-gst/go-gst/gst"

	"github.com/kvsgo/kvsgo/pkg/credentials"
	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/sink"
)

// errorCode maps a core error to a GStreamer error domain and code: the one
// place where that is decided. Cancellation never gets here (it is
// GST_FLOW_FLUSHING, without a message).
func errorCode(err error) (domain, code int) {
	var netErr net.Error
	switch {
	case errors.Is(err, kvs.ErrAccessDenied), errors.Is(err, credentials.ErrNoCredentials):
		return domainResource, int(gst.ResourceErrorNotAuthorized)
	case errors.Is(err, kvs.ErrStreamNotFound), errors.Is(err, kvs.ErrStreamDeleting):
		return domainResource, int(gst.ResourceErrorNotFound)
	case errors.Is(err, sink.ErrSettings):
		return domainResource, int(gst.ResourceErrorSettings)
	case errors.Is(err, sink.ErrFormat), errors.Is(err, sink.ErrNoFormat):
		return domainStream, int(gst.StreamErrorFormat)
	case errors.Is(err, sink.ErrStopTimeout):
		return domainResource, int(gst.ResourceErrorWrite)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr):
		return domainResource, int(gst.ResourceErrorOpenWrite)
	}
	return domainStream, int(gst.StreamErrorFailed)
}

// startFailure is the text of an error that ends start before streaming:
// a failure to obtain credentials (an unreachable IoT endpoint, an STS
// refusal) is not a matter of settings, and says so.
func startFailure(stream string, err error) string {
	var netErr net.Error
	var apiErr *kvs.APIError
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, credentials.ErrNoCredentials):
		return fmt.Sprintf("No AWS credentials for stream %q", stream)
	case errors.As(err, &pathErr): // a file a property names; its errno passes for a net.Error
		return fmt.Sprintf("Invalid settings for stream %q", stream)
	case errors.Is(err, credentials.ErrIoTCredentials), errors.As(err, &netErr), errors.As(err, &apiErr),
		errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("Could not get credentials for stream %q", stream)
	}
	return fmt.Sprintf("Invalid settings for stream %q", stream)
}
