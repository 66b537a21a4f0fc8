package credentials

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// buildable returns an SDK client that dials, proxies and trusts CAs as
// Options asks: Net's policy, else what Options.HTTPClient's transport does
// (a test's httptest client). It must be an awshttp.BuildableClient: the SDK
// adds AWS_CA_BUNDLE to it, and refuses a plain *http.Client when that
// variable is set.
func buildable(o Options) *awshttp.BuildableClient {
	if o.Net != nil {
		n := o.Net
		return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.DialContext = n.Dial
			tr.Proxy = n.Options().Proxy
			tr.TLSClientConfig = n.TLSConfig()
		})
	}
	var tr *http.Transport
	if c, ok := o.HTTPClient.(*http.Client); ok {
		tr, _ = c.Transport.(*http.Transport)
	}
	if tr == nil && o.DialContext == nil {
		return nil
	}
	if tr == nil {
		tr = &http.Transport{}
	}
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		if o.DialContext != nil {
			t.DialContext = o.DialContext
		}
		if tr.DialContext != nil {
			t.DialContext = tr.DialContext
		}
		if tr.Proxy != nil {
			t.Proxy = tr.Proxy
		}
		if tr.TLSClientConfig != nil { // the same CAs as the caller's client
			t.TLSClientConfig = tr.TLSClientConfig.Clone()
		}
	})
}

// chainProvider reports a failing default chain as ErrNoCredentials. It
// wraps the SDK's credentials cache and passes Invalidate on to it.
type chainProvider struct{ p aws.CredentialsProvider }

func (c chainProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	v, err := c.p.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%w (the default chain: %v)", ErrNoCredentials, err)
	}
	return v, nil
}

// Invalidate makes the next Retrieve fetch credentials again.
func (c chainProvider) Invalidate() {
	if inv, ok := c.p.(interface{ Invalidate() }); ok {
		inv.Invalidate()
	}
}
