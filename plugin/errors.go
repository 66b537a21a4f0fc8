package main

import (
	"context"
	"errors"
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

// errorStatus is the guint64 of the stream-error signal: the KVS ErrorId
// (4000–7000) for an ERROR acknowledgement, the HTTP status for an error
// answer of the service, else 1. (The official element passes its SDK's
// STATUS codes, which kvsgo does not have.)
func errorStatus(err error) uint64 {
	var ackErr *kvs.AckError
	var apiErr *kvs.APIError
	switch {
	case errors.As(err, &ackErr):
		return uint64(ackErr.Ack.ErrorID)
	case errors.As(err, &apiErr):
		return uint64(apiErr.StatusCode)
	}
	return 1
}
