package kvslocal

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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// Real clients other than awscli's basic run (awscli_test.go): curl's own
// SigV4 signer, Debian's boto3, and awscli and curl over TLS. Each runs
// with a clean environment: static credentials only, no configuration or
// credential files, never the instance metadata service.

// toolEnv is the environment of a client process.
func toolEnv(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	return []string{"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8",
		"AWS_ACCESS_KEY_ID=" + testKey, "AWS_SECRET_ACCESS_KEY=" + testSecret, "AWS_DEFAULT_REGION=" + testRegion,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
}

// runTool runs a client with toolEnv and returns its stdout, its stderr
// and its error.
func runTool(t *testing.T, name string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = toolEnv(t)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s timed out:\n%s%s", name, strings.Join(args, " "), out.String(), errOut.String())
	}
	return out.String(), errOut.String(), err
}

// curlStatus splits the body from the status line curl's -w adds.
func curlStatus(out string) (body, status string) {
	i := strings.LastIndexByte(out, '\n')
	if i < 0 {
		return "", out
	}
	return out[:i], out[i+1:]
}

// curl --aws-sigv4 is a fourth, independent signer (local-aws.md §2.2).
func TestCurlSigV4(t *testing.T) {
	curl := testenv.Tool(t, "curl", "curl")
	_, url := start(t, t.TempDir())
	createStream(t, url, "curled", 1)
	post := func(user, path, body string) (string, string) {
		out, errOut, err := runTool(t, curl, "-sS", "--aws-sigv4", "aws:amz:us-west-2:kinesisvideo", "--user", user,
			"-H", "Content-Type: application/json", "-D", "-", "-d", body, "-w", "\n%{http_code}", url+path)
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, errOut)
		}
		return curlStatus(out)
	}
	out, status := post(testKey+":"+testSecret, "/describeStream", `{"StreamName":"curled"}`)
	if status != "200" || !strings.Contains(out, `"StreamName":"curled"`) || !strings.Contains(out, `"DataRetentionInHours":1`) {
		t.Fatalf("describeStream: %s\n%s", status, out)
	}
	out, status = post(testKey+":"+testSecret, "/describeStream", `{"StreamName":"absent"}`)
	if status != "404" || !strings.Contains(strings.ToLower(out), "x-amzn-errortype: resourcenotfoundexception:") {
		t.Fatalf("describeStream of a missing stream: %s\n%s", status, out)
	}
	out, status = post(testKey+":wrong-secret", "/describeStream", `{"StreamName":"curled"}`)
	if status != "403" || !strings.Contains(strings.ToLower(out), "x-amzn-errortype: invalidsignatureexception:") || !strings.Contains(out, `"message":"The request signature we calculated does not match`) {
		t.Fatalf("wrong secret: %s\n%s", status, out)
	}
}

// boto3Script drives Debian's python3-boto3 against the endpoint and
// prints what it saw as one JSON object.
const boto3Script = `
import json, os, sys
import boto3, botocore
from botocore.exceptions import ClientError

url, media_stream, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
res = {"boto3": boto3.__version__}
kv = boto3.client("kinesisvideo", endpoint_url=url, region_name="us-west-2")
res["arn"] = kv.create_stream(StreamName="boto", DataRetentionInHours=3, MediaType="video/h264")["StreamARN"]
info = kv.describe_stream(StreamName="boto")["StreamInfo"]
res["describe"] = {"status": info["Status"], "retention": info["DataRetentionInHours"], "kms": info["KmsKeyId"],
                   "created": info["CreationTime"].timestamp()}
res["list"] = [s["StreamName"] for s in kv.list_streams(StreamNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": "bo"})["StreamInfoList"]]
ep = kv.get_data_endpoint(StreamName=media_stream, APIName="GET_MEDIA")["DataEndpoint"]
res["endpoint"] = ep
media = boto3.client("kinesis-video-media", endpoint_url=ep, region_name="us-west-2")
got = media.get_media(StreamName=media_stream, StartSelector={"StartSelectorType": "EARLIEST"})
res["contentType"] = got["ContentType"]
with open(out_path, "wb") as f:
    for chunk in got["Payload"].iter_chunks():
        f.write(chunk)
arch = boto3.client("kinesis-video-archived-media", endpoint_url=ep, region_name="us-west-2")
frags = arch.list_fragments(StreamName=media_stream, MaxResults=4)
res["fragments"] = [f["FragmentNumber"] for f in frags["Fragments"]]
res["nextToken"] = frags.get("NextToken", "")
try:
    kv.describe_stream(StreamName="absent")
    res["error"] = None
except ClientError as e:
    res["error"] = {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
                    "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
print(json.dumps(res))
`

// Debian's boto3 (python3-boto3): control plane, get_media read-back,
// list_fragments and an error caught as botocore's ClientError.
func TestBoto3(t *testing.T) {
	// Debian's, with python3-boto3; not a pyenv one. A path: Tool looks
	// it up as it is.
	python := testenv.Tool(t, "/usr/bin/python3", "python3-boto3")
	if err := exec.Command(python, "-c", "import boto3").Run(); err != nil {
		testenv.Missing(t, python+" cannot import boto3 (Debian package python3-boto3); run scripts/setup")
	}
	fx := loadFixture(t)
	_, url := start(t, t.TempDir())
	createStream(t, url, "media", 1)
	numbers := putFixture(t, url, "media", fx)
	dir := t.TempDir()
	script, media := filepath.Join(dir, "client.py"), filepath.Join(dir, "media.mkv")
	if err := os.WriteFile(script, []byte(boto3Script), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runTool(t, python, script, url, "media", media)
	if err != nil {
		t.Fatalf("boto3: %v\n%s%s", err, out, errOut)
	}
	var res struct {
		ARN      string
		Describe struct {
			Status    string
			Retention int
			KMS       string
			Created   float64
		}
		List        []string
		Endpoint    string
		ContentType string
		Fragments   []string
		NextToken   string
		Error       *struct {
			Code, Message string
			Status        int
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("boto3 output: %v\n%s%s", err, out, errOut)
	}
	if !strings.HasPrefix(res.ARN, "arn:aws:kinesisvideo:us-west-2:123456789012:stream/boto/") || res.Describe.Status != "ACTIVE" ||
		res.Describe.Retention != 3 || res.Describe.KMS == "" || time.Since(time.Unix(int64(res.Describe.Created), 0)) > time.Minute {
		t.Errorf("create/describe: %+v", res)
	}
	if strings.Join(res.List, ",") != "boto" || res.Endpoint != url || res.ContentType != "video/webm" {
		t.Errorf("list %v, endpoint %s, content type %s", res.List, res.Endpoint, res.ContentType)
	}
	if strings.Join(res.Fragments, ",") != strings.Join(numbers[:4], ",") || res.NextToken == "" {
		t.Errorf("list_fragments %v next %q, want %v", res.Fragments, res.NextToken, numbers[:4])
	}
	if res.Error == nil || res.Error.Code != "ResourceNotFoundException" || res.Error.Status != 404 ||
		res.Error.Message != "The requested stream is not found or not active." {
		t.Errorf("error: %+v", res.Error)
	}
	f, err := os.Open(media)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunks := readChunks(t, f)
	if len(chunks) != 10 {
		t.Fatalf("get_media read %d chunks, want 10", len(chunks))
	}
	k := 0
	for _, c := range chunks {
		for _, b := range c.blocks {
			if !bytes.Equal(b, fx.payloads[k]) {
				t.Fatalf("frame %d differs after get_media", k)
			}
			k++
		}
	}
}

// awscli (--ca-bundle) and curl (--cacert) over HTTPS to
// https://localhost:PORT, trusting the test CA; without it both refuse the
// server.
func TestTLSWithRealClients(t *testing.T) {
	curl := testenv.Tool(t, "curl", "curl")
	_, url, ca := startTLS(t)
	if _, err := tlsClient(url, ca.Pool).CreateStream(context.Background(), &kinesisvideo.CreateStreamInput{StreamName: aws.String("secure")}); err != nil {
		t.Fatal(err)
	}
	args := []string{"-sS", "--aws-sigv4", "aws:amz:us-west-2:kinesisvideo", "--user", testKey + ":" + testSecret,
		"-H", "Content-Type: application/json", "-d", `{"StreamName":"secure"}`, "-w", "\n%{http_code} %{http_version}"}
	// Offered HTTP/2, curl still speaks HTTP/1.1.
	out, errOut, err := runTool(t, curl, append(args, "--http2", "--cacert", ca.CAFile, url+"/describeStream")...)
	body, status := curlStatus(out)
	if err != nil || status != "200 1.1" || !strings.Contains(body, `"StreamName":"secure"`) {
		t.Fatalf("curl --cacert: %v %q\n%s%s", err, status, body, errOut)
	}
	_, errOut, err = runTool(t, curl, append(args, url+"/describeStream")...)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 60 {
		t.Fatalf("curl without the CA: %v, want exit code 60 (peer certificate not trusted)\n%s", err, errOut)
	}

	testenv.Tool(t, awsCLI, "awscli") // a path: looked up as it is
	cli := []string{"--endpoint-url", url, "--region", testRegion, "--output", "json"}
	out, errOut, err = runTool(t, awsCLI, append(cli, "--ca-bundle", ca.CAFile, "kinesisvideo", "describe-stream", "--stream-name", "secure")...)
	if err != nil || !strings.Contains(out, `"StreamName": "secure"`) {
		t.Fatalf("aws --ca-bundle: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = runTool(t, awsCLI, append(cli, "kinesisvideo", "describe-stream", "--stream-name", "secure")...)
	if err == nil || !strings.Contains(errOut, "SSL validation failed") {
		t.Fatalf("aws without the CA: %v\n%s%s", err, out, errOut)
	}
}
