package credentials

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// static serves fixed credentials that never expire.
type static struct{ c aws.Credentials }

func (s static) Retrieve(context.Context) (aws.Credentials, error) { return s.c, nil }

// String never shows the secret or the token.
func (s static) String() string { return "static credentials " + Redact(s.c.AccessKeyID) }
