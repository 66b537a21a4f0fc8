package credentials

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// static serves fixed credentials that never expire.
type static struct{ c aws.Credentials }

func (s static) Retrieve(context.Context) (aws.Credentials, error) { return s.c, nil }

// String never shows the secret or the token.
func (s static) String() string { return "static credentials " + Redact(s.c.AccessKeyID) }

func fromProperties(src Sources) (aws.CredentialsProvider, bool, error) {
	ak, sk := str(src.AccessKey), str(src.SecretKey)
	switch {
	case ak == "" && sk == "":
		return nil, false, nil
	case ak == "":
		return nil, true, fmt.Errorf("credentials: secret-key is set but access-key is not")
	case sk == "":
		return nil, true, fmt.Errorf("credentials: access-key %s is set but secret-key is not", Redact(ak))
	}
	return static{aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk, SessionToken: str(src.SessionToken), Source: "kvssink properties"}}, true, nil
}

func fromEnv(getenv func(string) string) (aws.CredentialsProvider, bool) {
	ak, sk := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if ak == "" || sk == "" {
		return nil, false
	}
	return static{aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk, SessionToken: getenv("AWS_SESSION_TOKEN"), Source: "environment"}}, true
}
