package kvs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/smithy-go"
)

// ControlConfig configures the control-plane client.
type ControlConfig struct {
	Endpoint    string // control-plane base URL
	Region      string
	Credentials aws.CredentialsProvider
	// HTTPClient carries the calls; nil means a client whose dial timeout
	// is ConnectTimeout.
	HTTPClient *http.Client
	// UserAgent is added to the SDK's User-Agent as an application id.
	UserAgent      string
	ConnectTimeout time.Duration // default 5 s
	CallTimeout    time.Duration // one call, retries included; default 10 s
	// MaxAttempts bounds the SDK's retries of one call. It defaults to 3.
	MaxAttempts int
}

// Control is the Kinesis Video Streams control plane.
type Control struct {
	cfg    ControlConfig
	client *kinesisvideo.Client
}

// NewControl returns a control-plane client.
func NewControl(cfg ControlConfig) (*Control, error) {
	if cfg.Endpoint == "" || cfg.Region == "" || cfg.Credentials == nil {
		return nil, errors.New("kvs: control plane needs an endpoint, a region and credentials")
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: cfg.ConnectTimeout}).DialContext,
			TLSHandshakeTimeout: cfg.ConnectTimeout,
		}}
	}
	client := kinesisvideo.New(kinesisvideo.Options{
		Region:           cfg.Region,
		BaseEndpoint:     aws.String(cfg.Endpoint),
		Credentials:      cfg.Credentials,
		HTTPClient:       cfg.HTTPClient,
		RetryMaxAttempts: cfg.MaxAttempts,
		AppID:            sanitizeAppID(cfg.UserAgent),
	})
	return &Control{cfg: cfg, client: client}, nil
}

// sanitizeAppID keeps the characters the SDK allows in an app id.
func sanitizeAppID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r == '-' || r == '.' || r == '_' || r == '/' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	if b.Len() > 50 {
		return b.String()[:50]
	}
	return b.String()
}

// StreamInfo is what DescribeStream returns.
type StreamInfo struct {
	Name, ARN, Status, MediaType, KMSKeyID, Version, DeviceName string
	RetentionHours                                              int
	Created                                                     time.Time
}

// CreateStreamInput is what CreateStream needs.
type CreateStreamInput struct {
	Name, DeviceName, MediaType, KMSKeyID string
	RetentionHours                        int
	Tags                                  map[string]string
}

func (c *Control) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.CallTimeout)
}

// DescribeStream returns the stream, or an error wrapping ErrStreamNotFound.
func (c *Control) DescribeStream(ctx context.Context, name string) (*StreamInfo, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	out, err := c.client.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String(name)})
	if err != nil {
		return nil, c.wrap("DescribeStream", err)
	}
	si := out.StreamInfo
	if si == nil {
		return nil, &APIError{Op: "DescribeStream", StatusCode: 200, Message: "response without StreamInfo"}
	}
	info := &StreamInfo{
		Name: aws.ToString(si.StreamName), ARN: aws.ToString(si.StreamARN), Status: string(si.Status),
		MediaType: aws.ToString(si.MediaType), KMSKeyID: aws.ToString(si.KmsKeyId), Version: aws.ToString(si.Version),
		DeviceName: aws.ToString(si.DeviceName), RetentionHours: int(aws.ToInt32(si.DataRetentionInHours)),
	}
	if si.CreationTime != nil {
		info.Created = *si.CreationTime
	}
	return info, nil
}

// CreateStream creates a stream and returns its ARN.
func (c *Control) CreateStream(ctx context.Context, in CreateStreamInput) (string, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	req := &kinesisvideo.CreateStreamInput{
		StreamName:           aws.String(in.Name),
		DataRetentionInHours: aws.Int32(int32(in.RetentionHours)),
		Tags:                 in.Tags,
	}
	if in.DeviceName != "" {
		req.DeviceName = aws.String(in.DeviceName)
	}
	if in.MediaType != "" {
		req.MediaType = aws.String(in.MediaType)
	}
	if in.KMSKeyID != "" {
		req.KmsKeyId = aws.String(in.KMSKeyID)
	}
	out, err := c.client.CreateStream(ctx, req)
	if err != nil {
		return "", c.wrap("CreateStream", err)
	}
	return aws.ToString(out.StreamARN), nil
}

// EnsureStream describes the stream and, when it does not exist and
// allowCreate is set, creates it; it waits while the stream is CREATING or
// UPDATING, bounded by ctx.
func (c *Control) EnsureStream(ctx context.Context, in CreateStreamInput, allowCreate bool) (*StreamInfo, error) {
	delay := 250 * time.Millisecond
	created := false
	for {
		info, err := c.DescribeStream(ctx, in.Name)
		switch {
		case errors.Is(err, ErrStreamNotFound) && allowCreate && !created:
			if _, err := c.CreateStream(ctx, in); err != nil && !isCode(err, "ResourceInUseException") {
				return nil, err
			}
			created = true
			continue
		case errors.Is(err, ErrStreamNotFound) && !allowCreate:
			return nil, fmt.Errorf("stream %q does not exist and allow-create-stream is false: %w", in.Name, err)
		case err != nil:
			return nil, err
		}
		switch types.Status(info.Status) {
		case types.StatusActive:
			return info, nil
		case types.StatusDeleting:
			return nil, fmt.Errorf("stream %q is being deleted", in.Name)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, fmt.Errorf("stream %q is still %s: %w", in.Name, info.Status, ctx.Err())
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}

// TagStream adds tags to a stream.
func (c *Control) TagStream(ctx context.Context, arn string, tags map[string]string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.client.TagStream(ctx, &kinesisvideo.TagStreamInput{StreamARN: aws.String(arn), Tags: tags})
	return c.wrap("TagStream", err)
}

// GetDataEndpoint returns the data endpoint for api (PUT_MEDIA, GET_MEDIA, ...).
func (c *Control) GetDataEndpoint(ctx context.Context, stream, api string) (string, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	out, err := c.client.GetDataEndpoint(ctx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String(stream), APIName: types.APIName(api)})
	if err != nil {
		return "", c.wrap("GetDataEndpoint", err)
	}
	ep := strings.TrimRight(aws.ToString(out.DataEndpoint), "/")
	if _, err := checkURL(ep); err != nil {
		return "", fmt.Errorf("GetDataEndpoint returned an unusable endpoint: %w", err)
	}
	return ep, nil
}

func isCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// wrap turns SDK errors into *APIError (service answers) or a transport
// error naming the endpoint; it never includes credentials.
func (c *Control) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var re *awshttp.ResponseError
	var api smithy.APIError
	if errors.As(err, &api) {
		ae := &APIError{Op: op, Code: api.ErrorCode(), Message: api.ErrorMessage()}
		if errors.As(err, &re) {
			ae.StatusCode = re.HTTPStatusCode()
		}
		return ae
	}
	if errors.As(err, &re) {
		return &APIError{Op: op, StatusCode: re.HTTPStatusCode(), Message: "unexpected response"}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer from %s within %v: %w", op, c.cfg.Endpoint, c.cfg.CallTimeout, context.DeadlineExceeded)
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return fmt.Errorf("%s: connect to %s: %v", op, c.cfg.Endpoint, ne.Err)
	}
	return fmt.Errorf("%s at %s: %w", op, c.cfg.Endpoint, err)
}
