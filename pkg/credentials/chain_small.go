//go:build kvsgo_nosharedconfig

package credentials

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// EnvironmentHint names the credential sources that need no program
// settings: the environment and this build's default chain.
const EnvironmentHint = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary credentials), or the default chain of this build (without shared config files): web identity (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN), ECS container or EC2 instance credentials"

// defaultChain, in a build with the kvsgo_nosharedconfig tag, is the
// default chain without the shared config and credentials files, put
// together from the SDK's provider packages instead of its config package
// (which links the SSO, SSO OIDC and sign-in clients and the profile
// machinery: about 2 MB of the plugin, see README). In the SDK's order, the
// first that is configured:
//
//  1. web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN
//     (AWS_ROLE_SESSION_NAME), through STS;
//  2. container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS) or
//     AWS_CONTAINER_CREDENTIALS_FULL_URI, whose http:// host must be
//     loopback or the ECS/EKS container address (no DNS lookup: a name
//     other than localhost is refused), with AWS_CONTAINER_AUTHORIZATION_TOKEN
//     or _TOKEN_FILE;
//  3. EC2 instance metadata, unless AWS_EC2_METADATA_DISABLED=true
//     (AWS_EC2_METADATA_SERVICE_ENDPOINT).
//
// Profiles (AWS_PROFILE, ~/.aws/config, ~/.aws/credentials, SSO,
// credential_process) and AWS_CA_BUNDLE are not read. The variables are the
// process's, as the SDK reads them.
func defaultChain(ctx context.Context, o Options) (aws.CredentialsProvider, error) {
	client := buildable(o)
	if tok, role := os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), os.Getenv("AWS_ROLE_ARN"); tok != "" && role != "" {
		so := sts.Options{Region: o.Region, APIOptions: o.APIOptions}
		if so.Region == "" {
			so.Region = "us-east-1"
		}
		if ep := firstEnv("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"); ep != "" {
			so.BaseEndpoint = aws.String(ep)
		}
		if client != nil {
			so.HTTPClient = client
		}
		p := stscreds.NewWebIdentityRoleProvider(sts.New(so), role, stscreds.IdentityTokenFile(tok), func(wo *stscreds.WebIdentityRoleOptions) {
			wo.RoleSessionName = os.Getenv("AWS_ROLE_SESSION_NAME")
		})
		return chainCache(p, o), nil
	}
	if u, err := containerURL(); err != nil {
		return nil, fmt.Errorf("%w (the default chain: %v)", ErrNoCredentials, err)
	} else if u != "" {
		p := endpointcreds.New(u, func(eo *endpointcreds.Options) {
			if client != nil {
				eo.HTTPClient = client
			}
			eo.AuthorizationToken = os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
			if path := os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); path != "" {
				eo.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
					b, err := os.ReadFile(path)
					if err != nil {
						return "", fmt.Errorf("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %w", err)
					}
					return strings.TrimSpace(string(b)), nil
				})
			}
		})
		return chainCache(p, o), nil
	}
	if strings.EqualFold(os.Getenv("AWS_EC2_METADATA_DISABLED"), "true") {
		return nil, ErrNoCredentials
	}
	io := imds.Options{}
	if client != nil {
		io.HTTPClient = client
	}
	p := ec2rolecreds.New(func(eo *ec2rolecreds.Options) { eo.Client = imds.New(io) })
	return chainCache(p, o), nil
}

// chainCache caches p as the SDK's chain does, behind chainProvider.
func chainCache(p aws.CredentialsProvider, o Options) aws.CredentialsProvider {
	return chainProvider{aws.NewCredentialsCache(p, func(c *aws.CredentialsCacheOptions) { c.ExpiryWindow = o.ExpiryWindow })}
}

func firstEnv(keys ...string) string {
	for _, k := range keys {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// Container credential hosts allowed over plain http, besides loopback.
var containerHosts = []net.IP{
	net.IPv4(169, 254, 170, 2),  // ECS
	net.IPv4(169, 254, 170, 23), // EKS Pod Identity
	net.ParseIP("fd00:ec2::23"), // EKS Pod Identity, IPv6
}

// containerURL returns the container credentials endpoint, "" when none is
// set, or an error for a full URI that may not be used.
func containerURL() (string, error) {
	if rel := os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); rel != "" {
		return "http://169.254.170.2" + rel, nil
	}
	full := os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
	if full == "" {
		return "", nil
	}
	u, err := url.Parse(full)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI %q is not an http(s) URL", full)
	}
	if u.Scheme == "https" {
		return full, nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return full, nil
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() {
			return full, nil
		}
		for _, c := range containerHosts {
			if ip.Equal(c) {
				return full, nil
			}
		}
	}
	return "", fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI host %q: plain http is allowed to loopback and the ECS/EKS container addresses only", host)
}
