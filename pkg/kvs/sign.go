package kvs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigningName is the SigV4 service name of every Kinesis Video Streams API.
const SigningName = "kinesisvideo"

// EmptyPayloadHash is SHA-256 of the empty string: the payload hash the
// official producer signs PutMedia with, since its body is streamed.
const EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

var signer = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = false })

// sign signs req with SigV4; payloadHash is hex SHA-256 of the body.
func sign(ctx context.Context, creds aws.CredentialsProvider, req *http.Request, payloadHash, region string, now time.Time) error {
	c, err := creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieving credentials: %w", err)
	}
	return signer.SignHTTP(ctx, c, req, payloadHash, SigningName, region, now.UTC())
}

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
