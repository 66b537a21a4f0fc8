package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// With -tls-dir every service is served over TLS at the one URL, STS
// included, and the endpoint's own key is the IAM user -user-name; the
// IoT credentials provider's CA is served to curl.
func TestEveryServiceOverTLS(t *testing.T) {
	cli := testenv.Tool(t, "/usr/bin/aws", "awscli")
	curl := testenv.Tool(t, "curl", "curl")
	bin := filepath.Join(t.TempDir(), "kvslocal")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tlsDir := t.TempDir()
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-dir", t.TempDir(), "-access-key", "AKIDTLS", "-secret-key", "tls-secret",
		"-tls-dir", tlsDir, "-user-name", "operator")
	cmd.Env = append(os.Environ(), "AWS_SESSION_TOKEN=")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	rd := bufio.NewReader(stdout)
	line, err := rd.ReadString('\n')
	url := strings.TrimSpace(strings.TrimPrefix(line, "KVSLOCAL_URL="))
	if err != nil || !strings.HasPrefix(url, "https://localhost:") {
		t.Fatalf("first line %q, %v", line, err)
	}
	iotLine, _ := rd.ReadString('\n')
	if !strings.HasPrefix(iotLine, "IOT_ENDPOINT=localhost:") {
		t.Fatalf("second line %q", iotLine)
	}
	home := t.TempDir()
	aws := func(args ...string) map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, cli, append([]string{"--endpoint-url", url, "--ca-bundle", filepath.Join(tlsDir, "ca.pem"), "--region", "us-west-2", "--output", "json"}, args...)...)
		c.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "AWS_ACCESS_KEY_ID=AKIDTLS", "AWS_SECRET_ACCESS_KEY=tls-secret", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="}
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		if err := c.Run(); err != nil {
			t.Fatalf("aws %v over TLS: %v\n%s", args, err, out.String())
		}
		var m map[string]any
		json.Unmarshal(out.Bytes(), &m)
		return m
	}
	if id := aws("sts", "get-caller-identity"); id["Arn"] != "arn:aws:iam::123456789012:user/operator" {
		t.Fatalf("get-caller-identity: %v", id)
	}
	aws("iot", "create-thing", "--thing-name", "cam")
	aws("iam", "create-user", "--user-name", "u")
	aws("kms", "create-key")
	aws("kinesisvideo", "create-stream", "--stream-name", "cam", "--data-retention-in-hours", "1")
	if ep := aws("iot", "describe-endpoint", "--endpoint-type", "iot:CredentialProvider"); ep["endpointAddress"] != strings.TrimSpace(strings.TrimPrefix(iotLine, "IOT_ENDPOINT=")) {
		t.Fatalf("describe-endpoint %v, printed %s", ep, iotLine)
	}
	out, err := exec.Command(curl, "-sS", "--fail", "--cacert", filepath.Join(tlsDir, "ca.pem"), url+"/AmazonRootCA1.pem").CombinedOutput()
	if err != nil || !bytes.HasPrefix(out, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Fatalf("the IoT CA over TLS: %v %s", err, out)
	}
}
