// Package credentials chooses where kvssink's AWS credentials come from and
// returns them as an aws.CredentialsProvider wrapped in aws-sdk-go-v2's
// CredentialsCache. One file per source: static.go (properties and
// environment), file.go (the official rotating credential file), iot.go and
// iotconfig.go (the iot-certificate property and the AWS IoT credentials
// provider), assume.go (STS AssumeRole on top of any source) and chain.go
// (the SDK's default chain; chain_small.go instead in a kvsgo_nosharedconfig
// build). Every connection follows the caller's httpx policy (Options.Net).
//
// It imports the standard library and aws-sdk-go-v2 only: never GStreamer or
// glib, and no cgo.
package credentials

import (
	"github.com/aws/smithy-go/middleware"

	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvsgo/kvsgo/pkg/httpx"
)

// ErrNoCredentials is returned when no source yields credentials.
// Callers add what their users can set (the element's properties, a tool's
// flags) with NoCredentialsHint or their own words.
var ErrNoCredentials = errors.New("credentials: no AWS credentials found")

// EnvironmentHint (chain.go, chain_small.go) names the credential sources
// that need no program settings: the environment and the default chain.

// Sources are the credential inputs of the element. Resolve uses the first
// one that is set, in this order (the official element's order, then the
// SDK's default chain):
//
//  1. IoT: the iot-certificate property
//  2. AccessKey/SecretKey/SessionToken: the static properties
//  3. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
//  4. CredentialPath: the official rotating credential file, when it exists
//  5. the aws-sdk-go-v2 default chain: shared config and credentials files
//     and profiles (AWS_PROFILE), web identity (AWS_WEB_IDENTITY_TOKEN_FILE),
//     ECS container credentials, EC2 instance metadata
//
// Role, when set, wraps whichever of these won in STS AssumeRole.
type Sources struct {
	IoT            *IoTCertificate
	AccessKey      *string
	SecretKey      *string
	SessionToken   *string
	CredentialPath *string
	Role           *AssumeRole
	// NoDefaultChain stops after the credential file, as the official
	// element does.
	NoDefaultChain bool
}

// Validate checks what can be checked without I/O: an access key without
// its secret (or the reverse), the role's ARN, session name and duration.
// Resolve checks the same; Validate lets a caller report them before any
// file is read or request made.
func (s Sources) Validate() error {
	if s.IoT == nil { // iot-certificate comes first: the properties are not used
		if _, _, err := fromProperties(s); err != nil {
			return err
		}
	}
	if s.Role != nil && s.Role.ARN != "" {
		return s.Role.validate()
	}
	return nil
}

// Options are the environment of Resolve.
type Options struct {
	// Getenv reads the environment; default os.Getenv. (The default chain
	// is the SDK's and always reads the process environment.)
	Getenv func(string) string
	// Region is the region STS and the default chain use.
	Region string
	// Net is the connection policy of every source (the element's CAs,
	// loopback guard, proxy and timeouts): HTTPClient and DialContext
	// default to its client and dial, and the IoT provider builds its
	// mutual-TLS client from its options.
	Net *httpx.Client
	// HTTPClient carries STS requests; its transport's dialer and proxy
	// also carry the default chain's (ECS container, instance metadata,
	// web identity). Default: Net's, else the SDK's.
	HTTPClient HTTPClient
	// DialContext dials the IoT credentials provider and the default
	// chain's endpoints; default Net's dial, else a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// STSEndpoint is the STS base URL; default AWS_ENDPOINT_URL_STS, then
	// AWS_ENDPOINT_URL, then the region's.
	STSEndpoint string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// ExpiryWindow is how long before they expire credentials are fetched
	// again. It defaults to ExpiryWindow; tests with short-lived
	// credentials shrink it.
	ExpiryWindow time.Duration
	// UserAgent, if set, starts the User-Agent header of requests to the
	// IoT credentials provider. APIOptions are added to the STS client's
	// middleware stack (the element puts its user-agent there as well).
	UserAgent  string
	APIOptions []func(*middleware.Stack) error
}

// HTTPClient is the SDK's HTTP client interface (*http.Client is one).
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}

// Resolved is the outcome of Resolve.
type Resolved struct {
	// Provider is cached (aws.CredentialsCache) and refreshes expiring
	// credentials ExpiryWindow before they expire.
	Provider aws.CredentialsProvider
	// Source names the source, without any secret.
	Source string
	// CertificateID is the AWS IoT certificate id (SHA-256 of the DER
	// certificate, hex) of the iot-certificate, if that was the source.
	CertificateID string
	// Warnings are problems that do not stop the element (a private key
	// readable by other users).
	Warnings []string
}

// ExpiryWindow is how long before expiry credentials are fetched again: the
// official element's grace period (5 s + 30 s + 3 s). Streaming tokens need
// at least 30 s of validity.
const ExpiryWindow = 38 * time.Second

// Resolve picks the first configured source in the documented precedence
// (see Sources), wraps it in AssumeRole if Role is set, fetches credentials
// once so that a bad source is an error at start (as the official element's
// first IoT fetch is), and returns the cached provider.
func Resolve(ctx context.Context, src Sources, o Options) (Resolved, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.ExpiryWindow <= 0 {
		o.ExpiryWindow = ExpiryWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Net != nil {
		if o.HTTPClient == nil {
			o.HTTPClient = o.Net.HTTP()
		}
		if o.DialContext == nil {
			o.DialContext = o.Net.Dial
		}
	}
	r, base, err := resolveBase(ctx, src, o)
	if err != nil {
		return Resolved{}, err
	}
	if src.Role != nil && src.Role.ARN != "" {
		p, err := assumeRole(base, *src.Role, o)
		if err != nil {
			return Resolved{}, err
		}
		base = p
		r.Source = "role " + src.Role.ARN + " assumed with " + r.Source
	}
	r.Provider = cache(base, o.ExpiryWindow)
	if _, err := r.Provider.Retrieve(ctx); err != nil {
		return Resolved{}, fmt.Errorf("%s: %w", r.Source, err)
	}
	return r, nil
}

func resolveBase(ctx context.Context, src Sources, o Options) (Resolved, aws.CredentialsProvider, error) {
	if src.IoT != nil {
		io := IoTOptions{DialContext: o.DialContext, Now: o.Now, Product: o.UserAgent}
		if o.Net != nil {
			io.Net, io.DialContext = o.Net.Options(), nil // Net's own dial, loopback guard included
		}
		p, warn, err := NewIoTProvider(*src.IoT, io)
		if err != nil {
			return Resolved{}, nil, err
		}
		return Resolved{Source: p.String(), CertificateID: p.CertificateID(), Warnings: warn}, p, nil
	}
	if p, ok, err := fromProperties(src); err != nil || ok {
		return Resolved{Source: "properties"}, p, err
	}
	if p, ok := fromEnv(o.Getenv); ok {
		return Resolved{Source: "environment"}, p, nil
	}
	if path := str(src.CredentialPath); path != "" {
		if _, err := os.Stat(path); err == nil {
			return Resolved{Source: "credential file " + path}, FileProvider{Path: path, Now: o.Now}, nil
		}
	}
	if src.NoDefaultChain {
		return Resolved{}, nil, ErrNoCredentials
	}
	p, err := defaultChain(ctx, o)
	if err != nil {
		return Resolved{}, nil, err
	}
	return Resolved{Source: "default chain"}, p, nil
}

func cache(p aws.CredentialsProvider, window time.Duration) aws.CredentialsProvider {
	if p == nil {
		return nil
	}
	switch p.(type) {
	case *aws.CredentialsCache, chainProvider: // cached already
		return p
	}
	return aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = window })
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Redact shows an access key id the way AWS consoles do: its first four
// characters. Secrets are never shown at all.
func Redact(accessKeyID string) string {
	if len(accessKeyID) <= 4 {
		return "****"
	}
	return accessKeyID[:4] + "****"
}
