// Package kvs talks to Kinesis Video Streams: control plane via aws-sdk-go-v2,
// PutMedia streaming upload with fragment ACKs, GetMedia. It must not import
// GStreamer/glib or use cgo.
//
// Control-plane calls (DescribeStream, CreateStream, TagStream,
// GetDataEndpoint) go through the SDK's kinesisvideo client with a bounded
// retryer and a per-call timeout. PutMedia and GetMedia have no SDK model, so
// they are plain HTTP requests signed with the SDK's SigV4 signer (service
// "kinesisvideo"); PutMedia signs the payload hash of the empty string, as the
// official producer does, because its body is streamed.
//
// Errors are API: service answers are *APIError (errors.Is matches
// ErrStreamNotFound and ErrAccessDenied), ERROR acknowledgements are
// *AckError, failures to reach an endpoint name the URL. No error text holds
// credentials, signatures or security tokens.
package kvs

import "github.com/aws/aws-sdk-go-v2/aws"

// CredentialsProvider is the SDK's credentials interface, re-exported so that
// the core does not import the SDK itself.
type CredentialsProvider = aws.CredentialsProvider
