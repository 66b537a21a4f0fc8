package kvslocal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
)

// aws-sdk-go-v2's own kinesisvideo client against the endpoint.
func TestControlPlaneWithTheSDK(t *testing.T) {
	_, url := start(t, t.TempDir())
	ctx := context.Background()
	c := client(url, testKey, testSecret)
	before := time.Now().Add(-time.Second)
	out, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1"), DataRetentionInHours: aws.Int32(24),
		MediaType: aws.String("video/h264"), DeviceName: aws.String("dev"), Tags: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.StreamARN)
	if !strings.HasPrefix(arn, "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam-1/") || len(arn) != len("arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam-1/")+13 {
		t.Fatalf("ARN %s, want …:stream/cam-1/<creation millis>", arn)
	}
	if _, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1")}); code(err) != "ResourceInUseException" {
		t.Fatalf("second create: %v", err)
	}
	d, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam-1")})
	if err != nil {
		t.Fatal(err)
	}
	si := d.StreamInfo
	if si.Status != types.StatusActive || aws.ToInt32(si.DataRetentionInHours) != 24 || aws.ToString(si.StreamARN) != arn ||
		aws.ToString(si.DeviceName) != "dev" || aws.ToString(si.MediaType) != "video/h264" || len(aws.ToString(si.Version)) != 12 ||
		si.CreationTime == nil || si.CreationTime.Before(before) || si.CreationTime.After(time.Now()) {
		t.Fatalf("describe: %+v", si)
	}
	byARN, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamARN: aws.String(arn)})
	if err != nil || aws.ToString(byARN.StreamInfo.StreamName) != "cam-1" {
		t.Fatalf("describe by ARN: %v", err)
	}
	ep, err := c.GetDataEndpoint(ctx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("cam-1"), APIName: types.APINamePutMedia})
	if err != nil || aws.ToString(ep.DataEndpoint) != url {
		t.Fatalf("data endpoint %q, %v; want %s", aws.ToString(ep.DataEndpoint), err, url)
	}
	if _, err := c.GetDataEndpoint(ctx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("cam-1"), APIName: "NOPE"}); code(err) != "InvalidArgumentException" {
		t.Fatalf("bad APIName: %v", err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("nope")}); !errors.As(err, &nf) {
		t.Fatalf("the SDK did not decode ResourceNotFoundException: %v", err)
	}
	var ia *types.InvalidArgumentException
	for _, bad := range []string{"bad name", strings.Repeat("x", 257), "a/b"} {
		if _, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String(bad)}); !errors.As(err, &ia) {
			t.Fatalf("stream name %q: %v", bad, err)
		}
	}
	createStream(t, url, "other", 0)
	l, err := c.ListStreams(ctx, &kinesisvideo.ListStreamsInput{StreamNameCondition: &types.StreamNameCondition{ComparisonOperator: types.ComparisonOperatorBeginsWith, ComparisonValue: aws.String("cam")}})
	if err != nil || len(l.StreamInfoList) != 1 || aws.ToString(l.StreamInfoList[0].StreamName) != "cam-1" {
		t.Fatalf("list: %v %v", l, err)
	}
	page, err := c.ListStreams(ctx, &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(1)})
	if err != nil || len(page.StreamInfoList) != 1 || page.NextToken == nil {
		t.Fatalf("first page: %v %v", page, err)
	}
	page2, err := c.ListStreams(ctx, &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(1), NextToken: page.NextToken})
	if err != nil || len(page2.StreamInfoList) != 1 || aws.ToString(page2.StreamInfoList[0].StreamName) != "other" {
		t.Fatalf("second page: %v %v", page2, err)
	}
	if _, err := c.TagStream(ctx, &kinesisvideo.TagStreamInput{StreamName: aws.String("cam-1"), Tags: map[string]string{"team": "video"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagStream(ctx, &kinesisvideo.UntagStreamInput{StreamName: aws.String("cam-1"), TagKeyList: []string{"k"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTagsForStream(ctx, &kinesisvideo.ListTagsForStreamInput{StreamName: aws.String("cam-1")})
	if err != nil || len(tags.Tags) != 1 || tags.Tags["team"] != "video" {
		t.Fatalf("tags %v %v", tags, err)
	}
	// Updates need the current version and change it.
	v := si.Version
	if _, err := c.UpdateDataRetention(ctx, &kinesisvideo.UpdateDataRetentionInput{StreamName: aws.String("cam-1"), CurrentVersion: aws.String("wrongversion"),
		Operation: types.UpdateDataRetentionOperationIncreaseDataRetention, DataRetentionChangeInHours: aws.Int32(1)}); code(err) != "VersionMismatchException" {
		t.Fatalf("stale version: %v", err)
	}
	if _, err := c.UpdateDataRetention(ctx, &kinesisvideo.UpdateDataRetentionInput{StreamName: aws.String("cam-1"), CurrentVersion: v,
		Operation: types.UpdateDataRetentionOperationIncreaseDataRetention, DataRetentionChangeInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	d, _ = c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam-1")})
	if aws.ToInt32(d.StreamInfo.DataRetentionInHours) != 25 || aws.ToString(d.StreamInfo.Version) == aws.ToString(v) {
		t.Fatalf("after UpdateDataRetention: %+v", d.StreamInfo)
	}
	if _, err := c.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamARN: aws.String(arn)}); code(err) != "ResourceNotFoundException" {
		t.Fatalf("deleted stream: %v", err)
	}
}

// The error shape on the wire: status, x-amzn-ErrorType with its namespace,
// {"Message": …}, and Date and x-amzn-RequestId on every response.
func TestErrorShapeOnTheWire(t *testing.T) {
	_, url := start(t, t.TempDir())
	resp := signedPost(t, url, "/describeStream", map[string]string{"StreamName": "missing"})
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("x-amzn-ErrorType"), "ResourceNotFoundException:") ||
		body["Message"] != "The requested stream is not found or not active." || resp.Header.Get("Date") == "" || resp.Header.Get("x-amzn-RequestId") == "" {
		t.Fatalf("%d %v %v", resp.StatusCode, resp.Header, body)
	}
	resp = signedPost(t, url, "/noSuchOperation", map[string]string{})
	if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("x-amzn-ErrorType"), "UnknownOperationException") {
		t.Fatalf("unknown operation: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestSignatureErrors(t *testing.T) {
	_, url := startWith(t, Config{Dir: t.TempDir(), Credentials: []Credential{
		{AccessKeyID: testKey, SecretAccessKey: testSecret},
		{AccessKeyID: "ASIATEMPORARY", SecretAccessKey: "temp-secret", SessionToken: "the-token"}}})
	ctx := context.Background()
	in := &kinesisvideo.ListStreamsInput{}
	for _, c := range []struct {
		name                string
		key, secret, token  string
		wantCode, wantInMsg string
	}{
		{"wrong secret", testKey, "wrong", "", "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."},
		{"unknown key", "AKIDUNKNOWN", testSecret, "", "UnrecognizedClientException", "The security token included in the request is invalid."},
		{"missing token", "ASIATEMPORARY", "temp-secret", "", "UnrecognizedClientException", "The security token included in the request is invalid."},
		{"wrong token", "ASIATEMPORARY", "temp-secret", "other", "UnrecognizedClientException", "The security token included in the request is invalid."},
		{"right token", "ASIATEMPORARY", "temp-secret", "the-token", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := kinesisvideo.New(kinesisvideo.Options{Region: testRegion, BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
				Credentials: awscreds.NewStaticCredentialsProvider(c.key, c.secret, c.token)})
			_, err := cl.ListStreams(ctx, in)
			if code(err) != c.wantCode || c.wantCode != "" && !strings.Contains(err.Error(), c.wantInMsg) {
				t.Fatalf("got %v; want %s %q", err, c.wantCode, c.wantInMsg)
			}
		})
	}
	// The region of the credential scope must be the endpoint's.
	other := kinesisvideo.New(kinesisvideo.Options{Region: "eu-west-1", BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
		Credentials: awscreds.NewStaticCredentialsProvider(testKey, testSecret, "")})
	if _, err := other.ListStreams(ctx, in); code(err) != "InvalidSignatureException" {
		t.Fatalf("other region: %v", err)
	}
	// No Authorization at all, and a malformed one.
	for _, auth := range []string{"", "AWS4-HMAC-SHA256 Credential=" + testKey + "/20261123/us-west-2/kinesisvideo/aws4_request"} {
		req, _ := http.NewRequest(http.MethodPost, url+"/listStreams", strings.NewReader("{}"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "MissingAuthenticationTokenException"
		if auth != "" {
			want = "IncompleteSignatureException"
		}
		if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("x-amzn-ErrorType"), want) {
			t.Fatalf("Authorization %q: %d %s %s", auth, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), b)
		}
		if auth == "" && string(bytes.TrimSpace(b)) != `{"message":"Missing Authentication Token"}` {
			t.Fatalf("body %s", b)
		}
	}
}

// Control-plane bodies are bounded: an oversized one is refused, not read
// into memory.
func TestControlBodyIsBounded(t *testing.T) {
	_, url := start(t, t.TempDir())
	big := map[string]string{"StreamName": strings.Repeat("x", maxControlBody)}
	resp := signedPost(t, url, "/createStream", big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// Clock skew beyond five minutes gets AWS's message and a Date header, from
// which aws-sdk-go-v2 corrects itself and retries.
func TestClockSkew(t *testing.T) {
	skew := 10 * time.Minute
	cfg := testConfig(t.TempDir())
	cfg.Now = func() time.Time { return time.Now().Add(skew) }
	_, url := startWith(t, cfg)
	c := client(url, testKey, testSecret)
	_, err := c.ListStreams(context.Background(), &kinesisvideo.ListStreamsInput{})
	if code(err) != "InvalidSignatureException" || !strings.Contains(err.Error(), "Signature expired: ") || !strings.Contains(err.Error(), " - 5 min.)") {
		t.Fatalf("skewed request: %v", err)
	}
	c3 := kinesisvideo.New(kinesisvideo.Options{Region: testRegion, BaseEndpoint: aws.String(url), RetryMaxAttempts: 3,
		Credentials: awscreds.NewStaticCredentialsProvider(testKey, testSecret, "")})
	if _, err := c3.ListStreams(context.Background(), &kinesisvideo.ListStreamsInput{}); err != nil {
		t.Fatalf("the SDK did not correct its clock from the Date header: %v", err)
	}
	cfg = testConfig(t.TempDir())
	cfg.Now = func() time.Time { return time.Now().Add(-skew) }
	_, url = startWith(t, cfg)
	if _, err := client(url, testKey, testSecret).ListStreams(context.Background(), &kinesisvideo.ListStreamsInput{}); !strings.Contains(err.Error(), "Signature not yet current: ") {
		t.Fatalf("request from the future: %v", err)
	}
}

// The verifier's canonical request matches the SDK signer's for odd paths,
// query strings and header values.
func TestSigV4MatchesTheSDKSigner(t *testing.T) {
	_, url := start(t, t.TempDir())
	for _, target := range []string{
		"/listStreams?b=2&a=1&a=0&empty=",
		"/list%20Streams/x%2Fy/ü",
		"/listStreams?q=a%20b&q=%2F",
	} {
		req, err := http.NewRequest(http.MethodPost, url+target, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Add("X-Custom", "  a    b  ")
		req.Header.Add("X-Custom", "c")
		sum := sha256.Sum256([]byte("{}"))
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret},
			req, hex.EncodeToString(sum[:]), "kinesisvideo", testRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(req.Header.Get("Authorization"), "x-custom") {
			t.Fatal("the SDK did not sign X-Custom")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if et := resp.Header.Get("x-amzn-ErrorType"); resp.StatusCode == 403 {
			t.Errorf("%s: %s %s", target, et, b)
		}
	}
}
