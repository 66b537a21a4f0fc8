package credentials

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// AssumeRole makes Resolve exchange the chosen source's credentials for a
// role's, with STS AssumeRole, and renew them before they expire.
type AssumeRole struct {
	ARN         string        // arn:aws:iam::<account>:role/<name> (required)
	SessionName string        // default: kvsgo-<unix time>
	ExternalID  string        // optional; a secret of sorts, never logged
	Duration    time.Duration // 0: STS's default of 15 min; 900 s..12 h
}

// String shows the role, never the external id.
func (r AssumeRole) String() string { return "role " + r.ARN }

// ErrAssumeRole is wrapped by errors in the AssumeRole settings.
var ErrAssumeRole = fmt.Errorf("credentials: bad role settings")

func (r AssumeRole) validate() error {
	if !strings.HasPrefix(r.ARN, "arn:") || !strings.Contains(r.ARN, ":role/") {
		return fmt.Errorf("%w: role-arn %q is not a role ARN (arn:aws:iam::123456789012:role/Name)", ErrAssumeRole, r.ARN)
	}
	if r.Duration != 0 && (r.Duration < 15*time.Minute || r.Duration > 12*time.Hour) {
		return fmt.Errorf("%w: role-duration %v outside 900..43200 s", ErrAssumeRole, r.Duration)
	}
	if n := len(r.SessionName); n != 0 && (n < 2 || n > 64) {
		return fmt.Errorf("%w: role-session-name must be 2..64 characters", ErrAssumeRole)
	}
	return nil
}

func assumeRole(base aws.CredentialsProvider, r AssumeRole, o Options) (aws.CredentialsProvider, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	ep := o.STSEndpoint
	if ep == "" {
		ep = o.Getenv("AWS_ENDPOINT_URL_STS")
	}
	if ep == "" {
		ep = o.Getenv("AWS_ENDPOINT_URL")
	}
	so := sts.Options{Region: o.Region, Credentials: cache(base, o.ExpiryWindow), APIOptions: o.APIOptions}
	if so.Region == "" {
		so.Region = "us-east-1"
	}
	if ep != "" {
		so.BaseEndpoint = aws.String(ep)
	}
	if o.HTTPClient != nil {
		so.HTTPClient = o.HTTPClient
	}
	client := sts.New(so)
	name := r.SessionName
	if name == "" {
		name = fmt.Sprintf("kvsgo-%d", o.Now().Unix())
	}
	return stscreds.NewAssumeRoleProvider(client, r.ARN, func(ao *stscreds.AssumeRoleOptions) {
		ao.RoleSessionName = name
		if r.ExternalID != "" {
			ao.ExternalID = aws.String(r.ExternalID)
		}
		if r.Duration != 0 {
			ao.Duration = r.Duration
		}
	}), nil
}
