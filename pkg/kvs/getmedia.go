package kvs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// StartSelector chooses where GetMedia starts.
type StartSelector struct {
	// Type is EARLIEST, NOW, FRAGMENT_NUMBER, SERVER_TIMESTAMP,
	// PRODUCER_TIMESTAMP or CONTINUATION_TOKEN.
	Type                string
	AfterFragmentNumber string    // FRAGMENT_NUMBER
	StartTimestamp      time.Time // SERVER_TIMESTAMP, PRODUCER_TIMESTAMP (sent with milliseconds)
	ContinuationToken   string    // CONTINUATION_TOKEN
}

// GetMediaConfig configures GetMedia.
type GetMediaConfig struct {
	Endpoint    string // data endpoint from GetDataEndpoint(GET_MEDIA)
	StreamName  string
	Region      string
	Credentials aws.CredentialsProvider
	// HTTPClient carries the request; nil means a client whose dial and TLS
	// handshake are bounded by DefaultConnectTimeout.
	HTTPClient *http.Client
	Start      StartSelector
	// Now is the signing time. It defaults to time.Now.
	Now func() time.Time
}

// getMediaRequest is GetMedia's JSON body.
type getMediaRequest struct {
	StreamName    string           `json:"StreamName"`
	StartSelector getMediaSelector `json:"StartSelector"`
}

type getMediaSelector struct {
	StartSelectorType   string   `json:"StartSelectorType"`
	AfterFragmentNumber string   `json:"AfterFragmentNumber,omitempty"`
	StartTimestamp      *float64 `json:"StartTimestamp,omitempty"`
	ContinuationToken   string   `json:"ContinuationToken,omitempty"`
}

// GetMedia starts reading a stream: a signed POST <Endpoint>/getMedia with a
// JSON body (payload hash = SHA-256 of the body). On 200 it returns the
// response body: the Matroska the service sends (one segment per fragment),
// for as long as ctx lives; the caller closes it. Any other status is an
// *APIError.
func GetMedia(ctx context.Context, cfg GetMediaConfig) (io.ReadCloser, error) {
	const op = "GetMedia"
	ep, err := checkURL(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("%s: data endpoint: %w", op, err)
	}
	if err := ValidateStreamName(cfg.StreamName); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := checkRegion("region", cfg.Region); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newDefaultClient(DefaultConnectTimeout, false)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	sel := getMediaSelector{StartSelectorType: cfg.Start.Type}
	switch cfg.Start.Type {
	case "FRAGMENT_NUMBER":
		if !digits(cfg.Start.AfterFragmentNumber) {
			return nil, fmt.Errorf("%s: FRAGMENT_NUMBER needs a fragment number of 1 to %d digits, not %q", op, MaxFragmentNumberLen, cfg.Start.AfterFragmentNumber)
		}
		sel.AfterFragmentNumber = cfg.Start.AfterFragmentNumber
	case "SERVER_TIMESTAMP", "PRODUCER_TIMESTAMP":
		if cfg.Start.StartTimestamp.IsZero() {
			return nil, fmt.Errorf("%s: %s needs a start timestamp", op, cfg.Start.Type)
		}
		ts := float64(cfg.Start.StartTimestamp.UnixMilli()) / 1000
		sel.StartTimestamp = &ts
	case "CONTINUATION_TOKEN":
		if cfg.Start.ContinuationToken == "" {
			return nil, fmt.Errorf("%s: CONTINUATION_TOKEN needs a continuation token", op)
		}
		sel.ContinuationToken = cfg.Start.ContinuationToken
	case "EARLIEST", "NOW":
	default:
		return nil, fmt.Errorf("%s: unknown start selector type %q (EARLIEST, NOW, FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP, CONTINUATION_TOKEN)", op, cfg.Start.Type)
	}
	resp, err := postJSON(ctx, cfg.HTTPClient, cfg.Credentials, cfg.Region, cfg.Now(), op, ep, "/getMedia",
		getMediaRequest{StreamName: cfg.StreamName, StartSelector: sel})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// postJSON sends in as a SigV4-signed JSON body to ep+path, as the data
// plane's media APIs take it, and returns the response when it is a 200
// with a body; any other answer is an error naming op.
func postJSON(ctx context.Context, client *http.Client, creds CredentialsProvider, region string, now time.Time, op, ep, path string, in any) (*http.Response, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", DefaultUserAgent)
	if err := sign(ctx, creds, req, hashHex(body), region, now); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", op, context.Cause(ctx))
		}
		return nil, transportError(op, ep, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, responseError(op, resp)
	}
	if resp.Body == nil {
		return nil, fmt.Errorf("%s: response without a body", op)
	}
	return resp, nil
}
