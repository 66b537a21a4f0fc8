package kvs

import (
	"errors"
	"fmt"
)

// Sentinel conditions, matched with errors.Is on *APIError and *AckError.
var (
	ErrStreamNotFound = errors.New("stream not found")
	// ErrAccessDenied covers the authentication and authorization family:
	// NotAuthorized, AccessDenied, UnrecognizedClient, InvalidSignature,
	// MissingAuthenticationToken, ExpiredToken.
	ErrAccessDenied = errors.New("access denied")
)

// APIError is an error answer from the service.
type APIError struct {
	Op         string // e.g. DescribeStream, PutMedia
	StatusCode int
	Code       string // e.g. ResourceNotFoundException
	Message    string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "(no message)"
	}
	if e.Code == "" {
		return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.StatusCode, msg)
	}
	return fmt.Sprintf("%s: %s (HTTP %d): %s", e.Op, e.Code, e.StatusCode, msg)
}

// Is maps service codes to the sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrStreamNotFound:
		return e.Code == "ResourceNotFoundException"
	case ErrAccessDenied:
		switch e.Code {
		case "NotAuthorizedException", "AccessDeniedException", "UnrecognizedClientException",
			"InvalidSignatureException", "MissingAuthenticationTokenException", "ExpiredTokenException",
			"IncompleteSignatureException", "SignatureDoesNotMatch", "InvalidClientTokenId":
			return true
		}
		return e.Code == "" && (e.StatusCode == 401 || e.StatusCode == 403)
	}
	return false
}

// Retryable reports whether the same call may succeed later.
func (e *APIError) Retryable() bool {
	switch {
	case errors.Is(e, ErrAccessDenied), errors.Is(e, ErrStreamNotFound):
		return false
	case e.Code == "ClientLimitExceededException", e.Code == "ConnectionLimitExceededException":
		return true
	}
	return e.StatusCode >= 500 || e.StatusCode == 408 || e.StatusCode == 429
}

// AckError is an ERROR acknowledgement.
type AckError struct{ Ack Ack }

func (e *AckError) Error() string {
	info := LookupAckError(e.Ack.ErrorID)
	return fmt.Sprintf("PutMedia: the service rejected fragment %s (timecode %d): ErrorId %d %s", e.Ack.FragmentNumber, e.Ack.FragmentTimecode, e.Ack.ErrorID, info.Name)
}

// Retriable reports whether resending the fragment may succeed.
func (e *AckError) Retriable() bool { return LookupAckError(e.Ack.ErrorID).Retriable }
