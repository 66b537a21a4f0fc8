// Package kvs talks to Kinesis Video Streams: the control plane through
// aws-sdk-go-v2's kinesisvideo client, PutMedia (a streaming upload with
// fragment acknowledgements) and GetMedia, both signed with the SDK's SigV4
// signer.
//
// It must not import GStreamer or glib, nor use cgo.
package kvs

import "github.com/aws/aws-sdk-go-v2/aws"

// CredentialsProvider is the SDK's credentials interface, re-exported so that
// the core does not import the SDK itself.
type CredentialsProvider = aws.CredentialsProvider
