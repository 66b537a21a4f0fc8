package kvs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/kvsgo/kvsgo/pkg/clock"
)

// Control-plane defaults.
const (
	DefaultCallTimeout     = 10 * time.Second // the official element's completion-timeout
	DefaultMaxAttempts     = 3
	DefaultRetryMaxBackoff = 2 * time.Second
	// DefaultDeviceName is CreateStream's DeviceName when none is given, as
	// in the official producer.
	DefaultDeviceName = "Kinesis_Video_Device"
)

// EnsureStream polls a CREATING or UPDATING stream every ensurePollStart,
// doubling up to ensurePollMax: streams usually turn ACTIVE within seconds.
const (
	ensurePollStart = 1 * time.Second
	ensurePollMax   = 4 * time.Second
)

// ControlConfig configures the control-plane client.
type ControlConfig struct {
	// Endpoint is the control-plane base URL (see ResolveEndpoint). Plain
	// http:// is accepted for loopback hosts only.
	Endpoint    string
	Region      string
	Credentials aws.CredentialsProvider
	// HTTPClient carries the calls; nil means a client whose dial and TLS
	// handshake are bounded by ConnectTimeout.
	HTTPClient *http.Client
	// UserAgent is put at the start of every call's User-Agent header,
	// before the SDK's own tokens (UserAgentFirst).
	UserAgent string
	// ConnectTimeout bounds dial + TLS of the default client. It defaults to
	// 5 s.
	ConnectTimeout time.Duration
	// CallTimeout bounds one API call, retries included. It defaults to 10 s.
	CallTimeout time.Duration
	// MaxAttempts bounds the SDK retryer's attempts per call (first try
	// included). It defaults to 3.
	MaxAttempts int
	// RetryMaxBackoff caps the jittered exponential backoff between attempts.
	// It defaults to 2 s.
	RetryMaxBackoff time.Duration
	// Clock times EnsureStream's polling. It defaults to the real clock.
	Clock clock.Clock
}

// Control is the Kinesis Video Streams control plane. It is safe for
// concurrent use.
type Control struct {
	cfg    ControlConfig
	client *kinesisvideo.Client
}

// NewControl returns a control-plane client. It fills the defaults and
// checks the endpoint, the region and the credentials.
func NewControl(cfg ControlConfig) (*Control, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("kvs: control plane: no credentials")
	}
	ep, err := checkURL(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("kvs: control plane endpoint: %w", err)
	}
	cfg.Endpoint = ep
	if _, err := checkRegion("region", cfg.Region); err != nil {
		return nil, fmt.Errorf("kvs: control plane: %w", err)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryMaxBackoff <= 0 {
		cfg.RetryMaxBackoff = DefaultRetryMaxBackoff
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newDefaultClient(cfg.ConnectTimeout, true)
	}
	// The standard retryer (throttling, 5xx, connection errors, clock skew
	// correction), bounded, without the client-side retry quota: the element
	// may fail and reconnect for hours, and an exhausted quota would turn
	// every later retry into an immediate failure.
	retryer := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = cfg.MaxAttempts
		o.MaxBackoff = cfg.RetryMaxBackoff
		o.RateLimiter = ratelimit.None
		// A certificate the client does not trust stays untrusted: fail
		// at once with the TLS error instead of retrying to the deadline.
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if IsTLSError(err) {
				return aws.FalseTernary
			}
			return aws.UnknownTernary
		})}, o.Retryables...)
	})
	client := kinesisvideo.New(kinesisvideo.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		Credentials:  cfg.Credentials,
		HTTPClient:   cfg.HTTPClient,
		Retryer:      retryer,
		APIOptions:   []func(*middleware.Stack) error{UserAgentFirst(cfg.UserAgent)},
	})
	return &Control{cfg: cfg, client: client}, nil
}

// Endpoint is the control-plane base URL in use.
func (c *Control) Endpoint() string { return c.cfg.Endpoint }

// StreamInfo is what DescribeStream returns.
type StreamInfo struct {
	Name, ARN, Status, MediaType, KMSKeyID, Version, DeviceName string
	RetentionHours                                              int
	Created                                                     time.Time
}

// CreateStreamInput is what CreateStream needs. DeviceName defaults to
// DefaultDeviceName; RetentionHours 0 means no retention (then the service
// sends no PERSISTED acknowledgements).
type CreateStreamInput struct {
	Name, DeviceName, MediaType, KMSKeyID string
	RetentionHours                        int
	Tags                                  map[string]string
}

// Stream statuses.
const (
	StatusCreating = string(types.StatusCreating)
	StatusActive   = string(types.StatusActive)
	StatusUpdating = string(types.StatusUpdating)
	StatusDeleting = string(types.StatusDeleting)
)

// DescribeStream returns the stream, or an error wrapping ErrStreamNotFound.
func (c *Control) DescribeStream(ctx context.Context, name string) (*StreamInfo, error) {
	const op = "DescribeStream"
	if err := ValidateStreamName(name); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	out, err := c.client.DescribeStream(cctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String(name)})
	if err != nil {
		return nil, c.wrap(ctx, op, err)
	}
	si := out.StreamInfo
	if si == nil {
		return nil, fmt.Errorf("%s: %s answered 200 without StreamInfo", op, c.cfg.Endpoint)
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
	const op = "CreateStream"
	if err := ValidateStreamName(in.Name); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if in.RetentionHours < 0 {
		return "", fmt.Errorf("%s: stream %q: negative retention %d h", op, in.Name, in.RetentionHours)
	}
	req := &kinesisvideo.CreateStreamInput{
		StreamName:           aws.String(in.Name),
		DeviceName:           aws.String(DefaultDeviceName),
		DataRetentionInHours: aws.Int32(int32(min(in.RetentionHours, 1<<31-1))),
	}
	if len(in.Tags) > 0 {
		req.Tags = in.Tags
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
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	out, err := c.client.CreateStream(cctx, req)
	if err != nil {
		return "", c.wrap(ctx, op, err)
	}
	return aws.ToString(out.StreamARN), nil
}

// EnsureStream describes the stream; when it does not exist it creates it if
// allowCreate, else returns an error wrapping ErrStreamNotFound. It waits,
// bounded by ctx, while the stream is CREATING or UPDATING (polling every
// second, then less often), and fails with ErrStreamDeleting for a stream
// being deleted. It returns the ACTIVE stream.
func (c *Control) EnsureStream(ctx context.Context, in CreateStreamInput, allowCreate bool) (*StreamInfo, error) {
	if err := ValidateStreamName(in.Name); err != nil {
		return nil, err
	}
	delay := ensurePollStart
	created := false
	status := ""
	for {
		info, err := c.DescribeStream(ctx, in.Name)
		switch {
		case err == nil:
			switch info.Status {
			case StatusActive:
				return info, nil
			case StatusDeleting:
				return nil, fmt.Errorf("stream %q: %w", in.Name, ErrStreamDeleting)
			}
			status = info.Status // CREATING, UPDATING, or a status this version does not know: wait
		case errors.Is(err, ErrStreamNotFound) && created:
			status = "not yet visible after CreateStream" // eventual consistency: wait
		case errors.Is(err, ErrStreamNotFound) && !allowCreate:
			return nil, fmt.Errorf("stream %q does not exist and creating it is not allowed: %w", in.Name, err)
		case errors.Is(err, ErrStreamNotFound):
			if _, err := c.CreateStream(ctx, in); err != nil && !isCode(err, "ResourceInUseException") {
				return nil, err
			}
			created = true
			continue // describe at once: the answer is usually CREATING
		default:
			return nil, err
		}
		select {
		case <-c.cfg.Clock.After(delay):
		case <-ctx.Done():
			return nil, fmt.Errorf("stream %q is still %s: %w", in.Name, status, context.Cause(ctx))
		}
		delay = min(2*delay, ensurePollMax)
	}
}

// TagStream adds tags to a stream. No tags: no call.
func (c *Control) TagStream(ctx context.Context, arn string, tags map[string]string) error {
	const op = "TagStream"
	if len(tags) == 0 {
		return nil
	}
	if arn == "" {
		return fmt.Errorf("%s: no stream ARN", op)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	_, err := c.client.TagStream(cctx, &kinesisvideo.TagStreamInput{StreamARN: aws.String(arn), Tags: tags})
	if err != nil {
		return c.wrap(ctx, op, err)
	}
	return nil
}

// GetDataEndpoint returns the data endpoint of stream for api (PUT_MEDIA,
// GET_MEDIA, ...), trailing slash trimmed. Plain http:// is accepted for
// loopback hosts only, as for the control plane.
func (c *Control) GetDataEndpoint(ctx context.Context, stream, api string) (string, error) {
	const op = "GetDataEndpoint"
	if err := ValidateStreamName(stream); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if api == "" {
		return "", fmt.Errorf("%s: no APIName", op)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	out, err := c.client.GetDataEndpoint(cctx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String(stream), APIName: types.APIName(api)})
	if err != nil {
		return "", c.wrap(ctx, op, err)
	}
	ep, err := checkURL(aws.ToString(out.DataEndpoint))
	if err != nil {
		return "", fmt.Errorf("%s: %s returned an unusable data endpoint: %w", op, c.cfg.Endpoint, err)
	}
	return ep, nil
}

func isCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// wrap turns an SDK error into an *APIError (the service answered), the
// caller's cancellation, a timeout, or a transport error naming the
// endpoint. parent is the caller's context (not the per-call one).
func (c *Control) wrap(parent context.Context, op string, err error) error {
	var re *awshttp.ResponseError
	hasResp := errors.As(err, &re) && re.Response != nil && re.HTTPStatusCode() != 0
	var api smithy.APIError
	if errors.As(err, &api) {
		ae := &APIError{Op: op, Code: api.ErrorCode(), Message: cleanMessage(api.ErrorMessage())}
		if ae.Code == "UnknownError" { // the SDK's placeholder for "no code in the answer"
			ae.Code = ""
			if ae.Message == "UnknownError" {
				ae.Message = ""
			}
		}
		if hasResp {
			ae.StatusCode = re.HTTPStatusCode()
		}
		return ae
	}
	if hasResp {
		status := re.HTTPStatusCode()
		var de *smithy.DeserializationError
		msg := ""
		if errors.As(err, &de) && len(de.Snapshot) > 0 {
			msg = bodyExcerpt(de.Snapshot)
		}
		if status >= 200 && status < 300 {
			return fmt.Errorf("%s: %s answered HTTP %d with a response that could not be decoded: %s", op, c.cfg.Endpoint, status, msg)
		}
		return &APIError{Op: op, StatusCode: status, Message: msg}
	}
	if parent.Err() != nil {
		return fmt.Errorf("%s: %w", op, context.Cause(parent))
	}
	var de *smithy.DeserializationError
	if errors.As(err, &de) {
		return fmt.Errorf("%s: %s: malformed response: %s", op, c.cfg.Endpoint, scrub(de.Error()))
	}
	if kind, _ := classifyTransport(err); kind == transportConnect || kind == transportTLS {
		return transportError(op, c.cfg.Endpoint, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return timeoutError(op, c.cfg.Endpoint, "no answer", c.cfg.CallTimeout)
	}
	return transportError(op, c.cfg.Endpoint, err)
}
