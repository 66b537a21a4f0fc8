package sink

import (
	"context"
	"fmt"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/kvs"
)

func TestStatus(t *testing.T) {
	for _, c := range []struct {
		err  error
		want uint64
	}{
		{&kvs.AckError{Ack: kvs.Ack{ErrorID: 4000}}, 0x5200005c},
		{fmt.Errorf("x: %w", &kvs.AckError{Ack: kvs.Ack{ErrorID: 4002}}), 0x5200005e},
		{&kvs.AckError{Ack: kvs.Ack{ErrorID: 4004}}, 0x52000060},
		{&kvs.AckError{Ack: kvs.Ack{ErrorID: 4006}}, 0x52000062},
		{&kvs.AckError{Ack: kvs.Ack{ErrorID: 4009}}, 0x52000075},
		{&kvs.AckError{Ack: kvs.Ack{ErrorID: 5000}}, 0x5200006d},
		{&kvs.AckError{Ack: kvs.Ack{ErrorID: 9999}}, 0x5200006f},
		{fmt.Errorf("%w after 1s", ErrStopTimeout), StatusPersistedAckTimeout},
		{fmt.Errorf("a: %w", kvs.ErrAccessDenied), StatusNotAuthorized},
		{fmt.Errorf("a: %w", kvs.ErrStreamNotFound), StatusResourceNotFound},
		{&kvs.APIError{Op: "PutMedia", StatusCode: 500}, StatusPutStreamFailed},
		{fmt.Errorf("a: %w", context.DeadlineExceeded), StatusServiceCallTimeout},
		{fmt.Errorf("other"), StatusServiceCallUnknown},
	} {
		if got := Status(c.err); got != c.want {
			t.Errorf("Status(%v) = %#x, want %#x", c.err, got, c.want)
		}
	}
}
