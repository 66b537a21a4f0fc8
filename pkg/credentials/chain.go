//go:build !kvsgo_nosharedconfig

package credentials

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
)

// EnvironmentHint names the credential sources that need no program
// settings: the environment and the AWS default chain.
const EnvironmentHint = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary credentials), or the AWS default chain: a profile in ~/.aws/credentials or ~/.aws/config (AWS_PROFILE), web identity (AWS_WEB_IDENTITY_TOKEN_FILE), ECS container or EC2 instance credentials"

// defaultChain is aws-sdk-go-v2's default credential chain: environment,
// shared config and credentials files (AWS_PROFILE, AWS_CONFIG_FILE,
// AWS_SHARED_CREDENTIALS_FILE), web identity, ECS container credentials
// (AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI) and EC2 instance
// metadata (AWS_EC2_METADATA_SERVICE_ENDPOINT, disabled by
// AWS_EC2_METADATA_DISABLED=true). Requests go through Options.HTTPClient.
func defaultChain(ctx context.Context, o Options) (aws.CredentialsProvider, error) {
	opts := []func(*config.LoadOptions) error{}
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if client := buildable(o); client != nil {
		opts = append(opts, config.WithHTTPClient(client),
			config.WithEndpointCredentialOptions(func(eo *endpointcreds.Options) { eo.HTTPClient = client }))
	}
	// The SDK caches the chain's credentials itself: that cache, with this
	// package's expiry window, is the only one (see cache).
	opts = append(opts, config.WithCredentialsCacheOptions(func(c *aws.CredentialsCacheOptions) { c.ExpiryWindow = o.ExpiryWindow }))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w (the default chain: %v)", ErrNoCredentials, err)
	}
	if cfg.Credentials == nil {
		return nil, ErrNoCredentials
	}
	return chainProvider{cfg.Credentials}, nil
}
