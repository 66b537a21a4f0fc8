package kvs

import (
	"context"
	"fmt"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// UserAgentFirst returns an SDK API option that puts product at the start of
// the User-Agent header, before the SDK's own tokens, as PutMedia sends it.
// It runs at the end of the build step, after the SDK's user-agent
// middleware has written its header, and before signing.
func UserAgentFirst(product string) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		if product == "" {
			return nil
		}
		return st.Build.Add(middleware.BuildMiddlewareFunc("kvsgoUserAgentFirst", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			req, ok := in.Request.(*smithyhttp.Request)
			if !ok {
				return middleware.BuildOutput{}, middleware.Metadata{}, fmt.Errorf("kvs: user agent: unexpected request type %T", in.Request)
			}
			if sdk := req.Header.Get("User-Agent"); sdk != "" {
				req.Header.Set("User-Agent", product+" "+sdk)
			} else {
				req.Header.Set("User-Agent", product)
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
	}
}

// UserAgentAPIOptions is UserAgentFirst as the APIOptions list of an SDK
// client (credentials.Options.APIOptions takes it for STS).
func UserAgentAPIOptions(product string) []func(*middleware.Stack) error {
	return []func(*middleware.Stack) error{UserAgentFirst(product)}
}
