package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/kvslocal/iam"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// iamEndpoint is the endpoint with its IAM: every service at one URL,
// policies evaluated on every call; the test keys are the account's own.
func iamEndpoint(t *testing.T) *endpoint {
	t.Helper()
	az, err := iam.New(&iam.File{}, iam.Options{OwnUserName: "root-admin"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { az.Close() })
	dir := t.TempDir()
	srv, err := kvslocal.New(kvslocal.Config{Dir: dir, Authorizer: az, Services: az.Services(), UserName: "root-admin", CaptureBodies: true,
		Credentials: []kvslocal.Credential{{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}}})
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &endpoint{srv: srv, url: url, dir: dir}
}

// awsAs runs awscli v2 at the endpoint with the given keys (nil: the test
// keys) in dir; it returns the output and the error code ("" on success).
func awsAs(t *testing.T, ep *endpoint, dir string, keys []string, args ...string) (string, string) {
	t.Helper()
	cli := testenv.Tool(t, "/usr/bin/aws", "awscli")
	if keys == nil {
		keys = []string{testAccessKey, testSecretKey}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, append([]string{"--endpoint-url", ep.url, "--region", "us-west-2", "--output", "json"}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
		"AWS_ACCESS_KEY_ID=" + keys[0], "AWS_SECRET_ACCESS_KEY=" + keys[1]}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("aws %v timed out", args)
	}
	code := ""
	if err != nil {
		code = "?"
		if _, rest, ok := strings.Cut(out.String(), "An error occurred ("); ok {
			code, _, _ = strings.Cut(rest, ")")
		}
	}
	return out.String(), code
}

// IAM least privilege as the KVS security model describes it, set up with
// awscli: a producer that can only PutMedia to its stream (with the
// DescribeStream and GetDataEndpoint that finding it takes), a consumer that
// can only read it, and an administrator. Inline and managed policies are
// evaluated on every call of every service, an explicit deny wins, and a
// change applies to the next call.
func TestLeastPrivilegeUsers(t *testing.T) {
	ep := iamEndpoint(t)
	dir := t.TempDir()
	must := func(keys []string, args ...string) string {
		t.Helper()
		out, code := awsAs(t, ep, dir, keys, args...)
		if code != "" {
			t.Fatalf("aws %v: %s", args, out)
		}
		return out
	}
	denied := func(keys []string, args ...string) string {
		t.Helper()
		out, code := awsAs(t, ep, dir, keys, args...)
		if code != "AccessDeniedException" && code != "AccessDenied" {
			t.Fatalf("aws %v was not denied: %s", args, out)
		}
		return out
	}
	must(nil, "kinesisvideo", "create-stream", "--stream-name", "cam", "--data-retention-in-hours", "2")
	must(nil, "kinesisvideo", "create-stream", "--stream-name", "other", "--data-retention-in-hours", "2")
	keys := map[string][]string{}
	for _, u := range []string{"producer", "consumer", "administrator"} {
		must(nil, "iam", "create-user", "--user-name", u)
		var k struct {
			AccessKey struct{ AccessKeyId, SecretAccessKey string }
		}
		if err := json.Unmarshal([]byte(must(nil, "iam", "create-access-key", "--user-name", u)), &k); err != nil || !strings.HasPrefix(k.AccessKey.AccessKeyId, "AKIA") {
			t.Fatalf("create-access-key: %v %+v", err, k)
		}
		keys[u] = []string{k.AccessKey.AccessKeyId, k.AccessKey.SecretAccessKey}
	}
	write := func(name, doc string) string {
		os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o644)
		return "file://" + name
	}
	// The producer: an inline policy.
	must(nil, "iam", "put-user-policy", "--user-name", "producer", "--policy-name", "put-cam", "--policy-document", write("producer.json",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesisvideo:PutMedia","kinesisvideo:DescribeStream","kinesisvideo:GetDataEndpoint"],"Resource":"arn:aws:kinesisvideo:*:*:stream/cam/*"}]}`))
	// The consumer: a managed policy.
	out := must(nil, "iam", "create-policy", "--policy-name", "ReadCam", "--policy-document", write("consumer.json",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesisvideo:GetMedia","kinesisvideo:GetDataEndpoint","kinesisvideo:DescribeStream","kinesisvideo:ListFragments","kinesisvideo:GetMediaForFragmentList"],"Resource":"arn:aws:kinesisvideo:*:*:stream/cam/*"}]}`))
	var pol struct{ Policy struct{ Arn string } }
	json.Unmarshal([]byte(out), &pol)
	must(nil, "iam", "attach-user-policy", "--user-name", "consumer", "--policy-arn", pol.Policy.Arn)
	out = must(nil, "iam", "create-policy", "--policy-name", "Admin", "--policy-document", write("admin.json",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`))
	json.Unmarshal([]byte(out), &pol)
	must(nil, "iam", "attach-user-policy", "--user-name", "administrator", "--policy-arn", pol.Policy.Arn)

	// The producer streams to its stream and can do nothing else.
	r := launch(t, ep, 60*time.Second, "videotestsrc num-buffers=60 ! video/x-raw,framerate=30/1 ! x264enc key-int-max=30 ! h264parse ! "+kvssink("cam"),
		"AWS_ACCESS_KEY_ID="+keys["producer"][0], "AWS_SECRET_ACCESS_KEY="+keys["producer"][1])
	if r.rc != 0 {
		t.Fatalf("the producer's stream: rc %d\n%s", r.rc, tail([]byte(r.output)))
	}
	denied(keys["producer"], "kinesisvideo", "describe-stream", "--stream-name", "other")
	denied(keys["producer"], "kinesis-video-media", "get-media", "--stream-name", "cam", "--start-selector", "StartSelectorType=EARLIEST", "p.mkv")
	denied(keys["producer"], "kinesisvideo", "list-streams")
	denied(keys["producer"], "iam", "list-users")
	denied(keys["producer"], "kms", "create-key")
	r = launch(t, ep, 60*time.Second, "videotestsrc num-buffers=30 ! x264enc ! h264parse ! "+kvssink("other", "allow-create-stream=false"),
		"AWS_ACCESS_KEY_ID="+keys["producer"][0], "AWS_SECRET_ACCESS_KEY="+keys["producer"][1])
	if r.rc == 0 || !strings.Contains(r.output, "AccessDeniedException") {
		t.Fatalf("the producer wrote another stream: rc %d\n%s", r.rc, tail([]byte(r.output)))
	}

	// The consumer reads it and can do nothing else.
	getMedia := func(keys []string) (string, string) {
		return awsAs(t, ep, dir, keys, "kinesis-video-media", "get-media", "--stream-name", "cam", "--start-selector", "StartSelectorType=EARLIEST", "c.mkv")
	}
	if out, code := getMedia(keys["consumer"]); code != "" {
		t.Fatalf("the consumer's get-media: %s", out)
	}
	ffprobe := testenv.Tool(t, "ffprobe", "ffmpeg")
	if probe, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", filepath.Join(dir, "c.mkv")).Output(); err != nil || strings.TrimSpace(string(probe)) != "60" {
		t.Fatalf("the consumer read %q frames (%v), want 60", probe, err)
	}
	r = launch(t, ep, 60*time.Second, "videotestsrc num-buffers=30 ! x264enc ! h264parse ! "+kvssink("cam"),
		"AWS_ACCESS_KEY_ID="+keys["consumer"][0], "AWS_SECRET_ACCESS_KEY="+keys["consumer"][1])
	if r.rc == 0 || !strings.Contains(r.output, "kinesisvideo:PutMedia") {
		t.Fatalf("the consumer wrote the stream: rc %d\n%s", r.rc, tail([]byte(r.output)))
	}
	denied(keys["consumer"], "kinesisvideo", "delete-stream", "--stream-arn", "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam/1")

	// An explicit deny wins over the managed allow, at once; removing it
	// restores access at once.
	must(nil, "iam", "put-user-policy", "--user-name", "consumer", "--policy-name", "no-media", "--policy-document", write("deny.json",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kinesisvideo:GetMedia","Resource":"*"}]}`))
	if out, code := getMedia(keys["consumer"]); code != "AccessDeniedException" || !strings.Contains(out, "with an explicit deny") {
		t.Fatalf("get-media under an explicit deny: %s", out)
	}
	must(nil, "iam", "delete-user-policy", "--user-name", "consumer", "--policy-name", "no-media")
	if out, code := getMedia(keys["consumer"]); code != "" {
		t.Fatalf("get-media once the deny is gone: %s", out)
	}
	must(nil, "iam", "detach-user-policy", "--user-name", "consumer", "--policy-arn", "arn:aws:iam::123456789012:policy/ReadCam")
	if out, code := getMedia(keys["consumer"]); code != "AccessDeniedException" {
		t.Fatalf("get-media once the managed policy is detached: %s", out)
	}

	// The administrator can do everything, in every service.
	must(keys["administrator"], "kinesisvideo", "create-stream", "--stream-name", "admins", "--data-retention-in-hours", "1")
	must(keys["administrator"], "iam", "list-users")
	must(keys["administrator"], "kms", "create-key")
	must(keys["administrator"], "iot", "list-things")
	// Deleting a key locks its holder out at once.
	must(nil, "iam", "delete-access-key", "--user-name", "administrator", "--access-key-id", keys["administrator"][0])
	if out, code := awsAs(t, ep, dir, keys["administrator"], "iam", "list-users"); code != "InvalidClientTokenId" {
		t.Fatalf("a deleted access key: %s", out)
	}
	// Bad input: a malformed policy document, a policy naming a principal.
	for _, doc := range []string{`{"Statement":[`, `{"Statement":[{"Effect":"Allow","Action":"s3","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}]}`, `{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}`} {
		if out, code := awsAs(t, ep, dir, nil, "iam", "put-user-policy", "--user-name", "consumer", "--policy-name", "bad", "--policy-document", doc); code != "MalformedPolicyDocument" {
			t.Errorf("policy %s: %s", doc, out)
		}
	}
}
