package sink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kvsgo/kvsgo/pkg/credentials"
	"github.com/kvsgo/kvsgo/pkg/httpx"
	"github.com/kvsgo/kvsgo/pkg/kvs"
)

// CredentialTimeout bounds Open's first fetch of credentials (an IoT request
// is bounded by its own completion-timeout as well).
const CredentialTimeout = 30 * time.Second

// Open does the I/O that c calls for, under ctx, and returns c completed:
//
//   - Net: the connection policy, with the CA bundle of CACertPath read
//     (errors name ca-cert-path or KVSSINK_CA_CERT_PATH), and HTTPClient,
//     its client, unless set;
//   - E2EE: the keys E2EEKeys names, read and parsed (errors name
//     e2ee-recipients or e2ee-signing-key);
//   - Credentials, unless set: CredentialSources resolved (files read, the
//     IoT credentials provider or STS asked, or the SDK's default chain set
//     up only when no other source is configured) and fetched once, so
//     that a bad source is an error at start (errors name the property or
//     the source); CredSource, CertificateID and CredentialWarnings with it.
//
// The element calls it in start, with the context its unlock cancels;
// nothing before it has read a file or opened a connection.
func (c Config) Open(ctx context.Context) (Config, error) {
	if c.Net == nil {
		n, err := c.newNet()
		if err != nil {
			return c, err
		}
		c.Net = n
	}
	if c.HTTPClient == nil {
		c.HTTPClient = c.Net.HTTP()
	}
	if c.E2EE == nil && c.E2EEKeys != nil {
		e, err := c.E2EEKeys.load()
		if err != nil {
			return c, err
		}
		c.E2EE = e
	}
	if c.Credentials == nil {
		if err := c.resolveCredentials(ctx); err != nil {
			return c, err
		}
	}
	return c, nil
}

// newNet builds the connection policy, reading the CA bundle if one is set.
func (c Config) newNet() (*httpx.Client, error) {
	o := httpx.Options{ConnectTimeout: c.ConnectionTimeout, LoopbackOnly: c.LoopbackOnly}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectionTimeoutSec * time.Second
	}
	if c.CACertPath != "" {
		pool, err := httpx.LoadCertPool(c.CACertPath)
		if err != nil {
			return nil, fmt.Errorf("%w: CA certificates (ca-cert-path or %s): %v", ErrSettings, CACertEnv, err)
		}
		o.RootCAs = pool
	}
	return httpx.New(o), nil
}

// resolveCredentials resolves CredentialSources under Net's policy (KVS and
// the credential endpoints trust the same CAs, behind the same proxy).
func (c *Config) resolveCredentials(ctx context.Context) error {
	getenv := c.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	ctx, cancel := context.WithTimeout(ctx, CredentialTimeout)
	defer cancel()
	// Credential requests are small: each is bounded as a whole by the
	// completion timeout, also when the SDK's cache lets one outlive a
	// cancelled ctx.
	o := c.Net.Options()
	o.Timeout = c.CompletionTimeout
	if o.Timeout <= 0 {
		o.Timeout = DefaultCompletionTimeoutSec * time.Second
	}
	ua := c.UserAgent
	r, err := credentials.Resolve(ctx, c.CredentialSources, credentials.Options{
		Getenv: getenv, Region: c.Region, Net: httpx.New(o),
		UserAgent: ua, APIOptions: kvs.UserAgentAPIOptions(ua),
	})
	if errors.Is(err, credentials.ErrNoCredentials) {
		return fmt.Errorf("%w: %w; set the iot-certificate property, the access-key and secret-key properties, a credential-path file (default .kvs/credential), or %s", ErrSettings, err, credentials.EnvironmentHint)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSettings, err)
	}
	c.Credentials, c.CredSource, c.CertificateID, c.CredentialWarnings = r.Provider, r.Source, r.CertificateID, r.Warnings
	return nil
}
