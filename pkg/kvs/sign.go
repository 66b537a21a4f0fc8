package kvs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kvsgo/kvsgo/pkg/httpx"
)

// SigningName is the SigV4 service name of every Kinesis Video Streams API.
const SigningName = "kinesisvideo"

// EmptyPayloadHash is SHA-256 of the empty string: the payload hash the
// official producer signs PutMedia with, since its body is streamed.
const EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// DefaultUserAgent is sent when a config leaves UserAgent empty.
const DefaultUserAgent = "kvsgo"

// DefaultConnectTimeout bounds dialing and the TLS handshake when a config
// leaves ConnectTimeout zero (the official element's connection-timeout).
const DefaultConnectTimeout = 5 * time.Second

var signer = v4.NewSigner()

// sign signs req with SigV4 for service "kinesisvideo"; payloadHash is the hex
// SHA-256 of the body. With a session token the signer adds (and signs)
// X-Amz-Security-Token.
func sign(ctx context.Context, creds aws.CredentialsProvider, req *http.Request, payloadHash, region string, now time.Time) error {
	if creds == nil {
		return errors.New("no credentials provider")
	}
	c, err := creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieving credentials: %s", scrub(err.Error()))
	}
	if err := signer.SignHTTP(ctx, c, req, payloadHash, SigningName, region, now.UTC()); err != nil {
		return fmt.Errorf("signing the request: %s", scrub(err.Error()))
	}
	return nil
}

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// defaultLoopbackOnly puts the loopback guard on every default client (tests
// set it).
var defaultLoopbackOnly bool

// newDefaultClient is the HTTP client of a config without one (httpx's
// policy): dial and TLS handshake bounded by connectTimeout, TLS 1.2+,
// HTTP/1.1 (the protocol of the official producer; PutMedia's chunked body
// and the ACK stream share one connection), proxies from the environment, no
// overall timeout (contexts bound the calls). keepAlive=false for
// one-request clients, so that the connection closes with the response.
func newDefaultClient(connectTimeout time.Duration, keepAlive bool) *http.Client {
	return httpx.New(httpx.Options{ConnectTimeout: connectTimeout, DisableKeepAlives: !keepAlive, LoopbackOnly: defaultLoopbackOnly}).HTTP()
}
