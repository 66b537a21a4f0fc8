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
	Type                string // EARLIEST, NOW, FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP, CONTINUATION_TOKEN
	AfterFragmentNumber string
	StartTimestamp      time.Time
	ContinuationToken   string
}

// GetMediaConfig configures GetMedia.
type GetMediaConfig struct {
	Endpoint    string // data endpoint for GET_MEDIA
	StreamName  string
	Region      string
	Credentials aws.CredentialsProvider
	HTTPClient  *http.Client
	Start       StartSelector
	Now         func() time.Time
}

// GetMedia starts reading a stream; the body is the Matroska of one segment
// per fragment, as the service sends it.
func GetMedia(ctx context.Context, cfg GetMediaConfig) (io.ReadCloser, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	sel := map[string]any{"StartSelectorType": cfg.Start.Type}
	switch cfg.Start.Type {
	case "FRAGMENT_NUMBER":
		sel["AfterFragmentNumber"] = cfg.Start.AfterFragmentNumber
	case "SERVER_TIMESTAMP", "PRODUCER_TIMESTAMP":
		sel["StartTimestamp"] = float64(cfg.Start.StartTimestamp.UnixMilli()) / 1000
	case "CONTINUATION_TOKEN":
		sel["ContinuationToken"] = cfg.Start.ContinuationToken
	case "EARLIEST", "NOW":
	default:
		return nil, fmt.Errorf("GetMedia: unknown start selector type %q", cfg.Start.Type)
	}
	body, _ := json.Marshal(map[string]any{"StreamName": cfg.StreamName, "StartSelector": sel})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.Endpoint+"/getMedia", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("GetMedia: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := sign(ctx, cfg.Credentials, req, hashHex(body), cfg.Region, cfg.Now()); err != nil {
		return nil, fmt.Errorf("GetMedia: %w", err)
	}
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GetMedia from %s: %w", cfg.Endpoint, unwrapURL(err))
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, responseError("GetMedia", resp)
	}
	return resp.Body, nil
}
