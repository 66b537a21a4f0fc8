package sink

import (
	"context"
	"errors"

	"github.com/kvsgo/kvsgo/pkg/credentials"
	"github.com/kvsgo/kvsgo/pkg/kvs"
)

// Official status codes (PIC client Include.h, STATUS_CLIENT_BASE
// 0x52000000), as the official element passes them to its stream-error
// signal. Applications compare against these numbers.
const (
	StatusNotAuthorized            uint64 = 0x52000010 // STATUS_SERVICE_CALL_NOT_AUTHORIZED_ERROR
	StatusDescribeStreamFailed     uint64 = 0x52000011 // STATUS_DESCRIBE_STREAM_CALL_FAILED
	StatusStreamBeingDeleted       uint64 = 0x52000013 // STATUS_STREAM_IS_BEING_DELETED_ERROR
	StatusResourceNotFound         uint64 = 0x52000017 // STATUS_SERVICE_CALL_RESOURCE_NOT_FOUND_ERROR
	StatusPutStreamFailed          uint64 = 0x5200002d // STATUS_PUT_STREAM_CALL_FAILED
	StatusStoreOutOfMemory         uint64 = 0x5200002e // STATUS_STORE_OUT_OF_MEMORY
	StatusServiceCallUnknown       uint64 = 0x52000031 // STATUS_SERVICE_CALL_UNKOWN_ERROR
	StatusServiceCallTimeout       uint64 = 0x52000037 // STATUS_SERVICE_CALL_TIMEOUT_ERROR
	StatusInvalidAck               uint64 = 0x5200004d // STATUS_INVALID_ACK_KEY_START (malformed ACK stream)
	StatusPersistedAckTimeout      uint64 = 0x52000073 // STATUS_PERSISTED_ACK_TIMEOUT
	StatusLastPersistAckNotReceive uint64 = 0x52000088 // STATUS_PUTMEDIA_LAST_PERSIST_ACK_NOT_RECEIVED
	StatusUnknownAckError          uint64 = 0x5200006f // STATUS_ACK_ERR_UNKNOWN_ACK_ERROR
)

// ackStatus maps a KVS ErrorId to the official STATUS_ACK_ERR_* value
// (serviceCallResultCheck).
var ackStatus = map[int]uint64{
	4000: 0x5200005c, 4001: 0x5200005d, 4002: 0x5200005e, 4003: 0x5200005f,
	4004: 0x52000060, 4005: 0x52000061, 4006: 0x52000062, 4007: 0x52000063,
	4008: 0x52000064, 4009: 0x52000075, 4010: 0x5200007c, 4011: 0x5200007d,
	4012: 0x5200007e,
	4500: 0x52000065, 4501: 0x52000066, 4502: 0x52000067, 4503: 0x52000068,
	4504: 0x52000069, 4505: 0x5200006a, 4506: 0x5200006b, 4507: 0x5200006c,
	5000: 0x5200006d, 5001: 0x5200006e,
}

// AckStatus is the official status of an ERROR acknowledgement's ErrorId.
func AckStatus(errorID int) uint64 {
	if s, ok := ackStatus[errorID]; ok {
		return s
	}
	return StatusUnknownAckError
}

// Status is the official status code closest to a core error, for the
// stream-error signal.
func Status(err error) uint64 {
	var ackErr *kvs.AckError
	var apiErr *kvs.APIError
	switch {
	case errors.As(err, &ackErr):
		return AckStatus(ackErr.Ack.ErrorID)
	case errors.Is(err, ErrStopTimeout):
		return StatusPersistedAckTimeout
	case errors.Is(err, kvs.ErrAccessDenied), errors.Is(err, credentials.ErrNoCredentials):
		return StatusNotAuthorized
	case errors.Is(err, kvs.ErrStreamNotFound):
		return StatusResourceNotFound
	case errors.Is(err, kvs.ErrStreamDeleting):
		return StatusStreamBeingDeleted
	case errors.Is(err, kvs.ErrMalformedAck):
		return StatusInvalidAck
	case errors.Is(err, context.DeadlineExceeded):
		return StatusServiceCallTimeout
	case errors.As(err, &apiErr):
		if apiErr.Op == "PutMedia" {
			return StatusPutStreamFailed
		}
		return StatusDescribeStreamFailed
	}
	return StatusServiceCallUnknown
}
