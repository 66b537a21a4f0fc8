package kvslocal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/smithy-go"

	"github.com/kvsgo/kvsgo/internal/testenv"
)

const (
	testKey    = "AKIDLOCALTEST"
	testSecret = "local-test-secret"
)

func TestMain(m *testing.M) {
	testenv.GuardLoopback()
	os.Exit(m.Run())
}

func start(t *testing.T, dir string) (*Server, string) {
	t.Helper()
	s, err := New(Config{Dir: dir, Credentials: []Credential{{AccessKeyID: testKey, SecretAccessKey: testSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url
}

func client(url, key, secret string) *kinesisvideo.Client {
	return kinesisvideo.New(kinesisvideo.Options{
		Region: "us-west-2", BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
		Credentials: awscreds.NewStaticCredentialsProvider(key, secret, ""),
	})
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// aws-sdk-go-v2's own kinesisvideo client against the endpoint.
func TestControlPlaneWithTheSDK(t *testing.T) {
	_, url := start(t, t.TempDir())
	ctx := context.Background()
	c := client(url, testKey, testSecret)
	out, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1"), DataRetentionInHours: aws.Int32(24), MediaType: aws.String("video/h264")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(out.StreamARN), "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam-1/") {
		t.Fatalf("ARN %s", aws.ToString(out.StreamARN))
	}
	if _, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1")}); code(err) != "ResourceInUseException" {
		t.Fatalf("second create: %v", err)
	}
	d, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam-1")})
	if err != nil {
		t.Fatal(err)
	}
	if d.StreamInfo.Status != types.StatusActive || aws.ToInt32(d.StreamInfo.DataRetentionInHours) != 24 || d.StreamInfo.CreationTime == nil {
		t.Fatalf("describe: %+v", d.StreamInfo)
	}
	ep, err := c.GetDataEndpoint(ctx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("cam-1"), APIName: types.APINamePutMedia})
	if err != nil || aws.ToString(ep.DataEndpoint) != url {
		t.Fatalf("data endpoint %q, %v; want %s", aws.ToString(ep.DataEndpoint), err, url)
	}
	if _, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("nope")}); code(err) != "ResourceNotFoundException" {
		t.Fatalf("missing stream: %v", err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("nope")}); !errors.As(err, &nf) {
		t.Fatalf("the SDK did not decode ResourceNotFoundException: %v", err)
	}
	if _, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("bad name")}); code(err) != "InvalidArgumentException" {
		t.Fatalf("bad name: %v", err)
	}
	l, err := c.ListStreams(ctx, &kinesisvideo.ListStreamsInput{StreamNameCondition: &types.StreamNameCondition{ComparisonOperator: types.ComparisonOperatorBeginsWith, ComparisonValue: aws.String("cam")}})
	if err != nil || len(l.StreamInfoList) != 1 {
		t.Fatalf("list: %v %v", l, err)
	}
	if _, err := c.TagStream(ctx, &kinesisvideo.TagStreamInput{StreamName: aws.String("cam-1"), Tags: map[string]string{"team": "video"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTagsForStream(ctx, &kinesisvideo.ListTagsForStreamInput{StreamName: aws.String("cam-1")})
	if err != nil || tags.Tags["team"] != "video" {
		t.Fatalf("tags %v %v", tags, err)
	}
}

func TestSignatureErrors(t *testing.T) {
	_, url := start(t, t.TempDir())
	ctx := context.Background()
	in := &kinesisvideo.DescribeStreamInput{StreamName: aws.String("x")}
	if _, err := client(url, testKey, "wrong").DescribeStream(ctx, in); code(err) != "InvalidSignatureException" {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := client(url, "AKIDUNKNOWN", testSecret).DescribeStream(ctx, in); code(err) != "UnrecognizedClientException" {
		t.Fatalf("unknown key: %v", err)
	}
}

// Clock skew beyond five minutes gets AWS's message and a Date header, from
// which aws-sdk-go-v2 corrects itself and retries.
func TestClockSkew(t *testing.T) {
	skew := 10 * time.Minute
	s, err := New(Config{Dir: t.TempDir(), Now: func() time.Time { return time.Now().Add(skew) },
		Credentials: []Credential{{AccessKeyID: testKey, SecretAccessKey: testSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := s.Start("127.0.0.1:0")
	defer s.Close()
	c := kinesisvideo.New(kinesisvideo.Options{Region: "us-west-2", BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
		Credentials: awscreds.NewStaticCredentialsProvider(testKey, testSecret, "")})
	_, err = c.ListStreams(context.Background(), &kinesisvideo.ListStreamsInput{})
	if code(err) != "InvalidSignatureException" || !strings.Contains(err.Error(), "Signature expired") {
		t.Fatalf("skewed request: %v", err)
	}
	c3 := kinesisvideo.New(kinesisvideo.Options{Region: "us-west-2", BaseEndpoint: aws.String(url), RetryMaxAttempts: 3,
		Credentials: awscreds.NewStaticCredentialsProvider(testKey, testSecret, "")})
	if _, err := c3.ListStreams(context.Background(), &kinesisvideo.ListStreamsInput{}); err != nil {
		t.Fatalf("the SDK did not correct its clock from the Date header: %v", err)
	}
}

// Streams and fragments survive a restart on the same directory.
func TestStreamsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s, url := start(t, dir)
	if _, err := client(url, testKey, testSecret).CreateStream(context.Background(), &kinesisvideo.CreateStreamInput{StreamName: aws.String("keep"), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.putFragment("keep", FragmentInfo{Timecode: 5, Frames: 1, HeaderSize: 3}, []byte("hdrcluster")); err != nil {
		t.Fatal(err)
	}
	// A fragment file that never made it into the index (a crash mid-write).
	s.Close()
	m := s.store.streams["keep"]
	os.WriteFile(filepath.Join(dir, "streams", m.Dir, "999.frag"), []byte("torn"), 0o644)

	s2, url2 := start(t, dir)
	if _, err := client(url2, testKey, testSecret).DescribeStream(context.Background(), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("keep")}); err != nil {
		t.Fatal(err)
	}
	frags, err := s2.Fragments("keep")
	if err != nil || len(frags) != 1 || len(frags[0].Number) != 47 {
		t.Fatalf("fragments after restart: %+v %v", frags, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "streams", m.Dir, "999.frag")); !os.IsNotExist(err) {
		t.Fatal("a fragment that was never indexed survived the restart")
	}
	f2, err := s2.store.putFragment("keep", FragmentInfo{Timecode: 9, Frames: 1}, []byte("x"))
	if err != nil || f2.Number <= frags[0].Number {
		t.Fatalf("fragment numbers must keep increasing across restarts: %s after %s (%v)", f2.Number, frags[0].Number, err)
	}
}

// awscli from Debian against the endpoint.
func TestAWSCLI(t *testing.T) {
	awsBin := testenv.Tool(t, "/usr/bin/aws", "awscli")
	_, url := start(t, t.TempDir())
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsBin, append([]string{"--endpoint-url", url, "--region", "us-west-2", "--output", "json"}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "AWS_ACCESS_KEY_ID=" + testKey, "AWS_SECRET_ACCESS_KEY=" + testSecret,
			"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	if out, err := run("kinesisvideo", "create-stream", "--stream-name", "cli", "--data-retention-in-hours", "2"); err != nil || !strings.Contains(out, "stream/cli/") {
		t.Fatalf("create-stream: %v\n%s", err, out)
	}
	if out, err := run("kinesisvideo", "describe-stream", "--stream-name", "cli"); err != nil || !strings.Contains(out, `"Status": "ACTIVE"`) {
		t.Fatalf("describe-stream: %v\n%s", err, out)
	}
	out, err := run("kinesisvideo", "describe-stream", "--stream-name", "missing")
	if err == nil || !strings.Contains(out, "ResourceNotFoundException") {
		t.Fatalf("describe-stream of a missing stream: %v\n%s", err, out)
	}
}
