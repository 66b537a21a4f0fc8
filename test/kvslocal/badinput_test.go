package kvslocal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
)

// signedRaw posts body bytes as they are, signed by the SDK's signer, and
// answers the status, the error type and the body.
func signedRaw(t *testing.T, url, path string, body []byte) (int, string, string) {
	t.Helper()
	resp := signedPostBytes(t, url, path, body, time.Now())
	b, _ := io.ReadAll(resp.Body)
	typ, _, _ := strings.Cut(resp.Header.Get("x-amzn-ErrorType"), ":")
	return resp.StatusCode, typ, string(b)
}

// Bodies that are not the operation's JSON get SerializationException;
// members the operation does not know are ignored, as restJson1 services
// do for forward compatibility.
func TestMalformedBodies(t *testing.T) {
	_, url := start(t, t.TempDir())
	createStream(t, url, "cam", 1)
	for _, b := range []string{"{", `{"StreamName":`, "[]", `{"StreamName":5}`, `"cam"`, "\x00\xff", `{"StreamName":"cam"}{`} {
		if st, typ, out := signedRaw(t, url, "/describeStream", []byte(b)); st != 400 || typ != "SerializationException" {
			t.Errorf("body %q: %d %s %s", b, st, typ, out)
		}
	}
	if st, _, out := signedRaw(t, url, "/describeStream", []byte(`{"StreamName":"cam","FutureMember":{"x":1}}`)); st != 200 || !strings.Contains(out, `"StreamName":"cam"`) {
		t.Errorf("an unknown member: %d %s", st, out)
	}
}

// Slow clients (slowloris) are cut off: headers that never end, and a
// control-plane body that never arrives, each within the bound, without a
// handler left waiting.
func TestSlowClients(t *testing.T) {
	s, err := New(testConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	s.headerTimeout, s.bodyTimeout = 300*time.Millisecond, 300*time.Millisecond
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addr := strings.TrimPrefix(url, "http://")
	ask := func(partial string) (string, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(partial)) // and then nothing more
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the endpoint still waits after 5 s for %q", partial)
		}
		return string(b), err
	}
	// Headers dribbled, never finished: the connection is closed.
	if out, _ := ask("POST /listStreams HTTP/1.1\r\nHost: " + addr + "\r\nX-Amz-Date: 2"); strings.Contains(out, "200 OK") {
		t.Fatalf("unfinished headers were answered: %q", out)
	}
	// A body that never comes: 400 SerializationException, then closed.
	out, _ := ask("POST /listStreams HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"Max")
	if !strings.HasPrefix(out, "HTTP/1.1 400") || !strings.Contains(strings.ToLower(out), "x-amzn-errortype: serializationexception") {
		t.Fatalf("stalled body: %q", out)
	}
}

// Control-plane checks the SDK test does not cover: UpdateStream,
// versions on DeleteStream, GetDataEndpoint for every APIName, and the
// validation of numbers.
func TestControlPlaneVersionsAndValidation(t *testing.T) {
	_, url := start(t, t.TempDir())
	ctx := context.Background()
	c := client(url, testKey, testSecret)
	createStream(t, url, "cam", 2)
	d, _ := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam")})
	v := d.StreamInfo.Version
	if _, err := c.UpdateStream(ctx, &kinesisvideo.UpdateStreamInput{StreamName: aws.String("cam"), CurrentVersion: aws.String("stale"), DeviceName: aws.String("d2")}); code(err) != "VersionMismatchException" {
		t.Fatalf("UpdateStream with a stale version: %v", err)
	}
	if _, err := c.UpdateStream(ctx, &kinesisvideo.UpdateStreamInput{StreamName: aws.String("cam"), CurrentVersion: v, DeviceName: aws.String("d2"), MediaType: aws.String("video/h265")}); err != nil {
		t.Fatal(err)
	}
	d2, _ := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam")})
	if aws.ToString(d2.StreamInfo.DeviceName) != "d2" || aws.ToString(d2.StreamInfo.MediaType) != "video/h265" || aws.ToString(d2.StreamInfo.Version) == aws.ToString(v) {
		t.Fatalf("after UpdateStream: %+v", d2.StreamInfo)
	}
	if _, err := c.UpdateDataRetention(ctx, &kinesisvideo.UpdateDataRetentionInput{StreamName: aws.String("cam"), CurrentVersion: d2.StreamInfo.Version,
		Operation: types.UpdateDataRetentionOperationDecreaseDataRetention, DataRetentionChangeInHours: aws.Int32(3)}); code(err) != "InvalidArgumentException" {
		t.Fatalf("retention below 0: %v", err)
	}
	for _, api := range types.APIName("").Values() {
		ep, err := c.GetDataEndpoint(ctx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("cam"), APIName: api})
		if err != nil || aws.ToString(ep.DataEndpoint) != url {
			t.Errorf("GetDataEndpoint %s: %v %v", api, ep, err)
		}
	}
	if _, err := c.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: d2.StreamInfo.StreamARN, CurrentVersion: v}); code(err) != "VersionMismatchException" {
		t.Fatalf("DeleteStream with a stale version: %v", err)
	}
	if _, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("neg"), DataRetentionInHours: aws.Int32(-1)}); code(err) != "InvalidArgumentException" {
		t.Fatalf("negative retention: %v", err)
	}
	if _, err := c.ListStreams(ctx, &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(10001)}); code(err) != "InvalidArgumentException" {
		t.Fatalf("MaxResults 10001: %v", err)
	}
	if _, err := c.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: d2.StreamInfo.StreamARN, CurrentVersion: d2.StreamInfo.Version}); err != nil {
		t.Fatal(err)
	}
}

// FuzzSealedFragment feeds arbitrary files to the sealed-fragment reader:
// errors, never a panic, never plaintext from a file that was not sealed
// with the key. Whatever opens must be the whole plaintext of a seed (their
// records are the only ones sealed with the key).
func FuzzSealedFragment(f *testing.F) {
	dk := bytes.Repeat([]byte{7}, 32)
	var sealed [][]byte // the seeds' plaintexts
	good := func(cluster []byte) []byte {
		dir, _ := os.MkdirTemp("", "seal")
		defer os.RemoveAll(dir)
		ff, _ := os.Create(dir + "/f")
		w := &fragmentFile{File: ff}
		w.seal(dk, nil, "1")
		w.Write([]byte("head"))
		w.Write(cluster)
		w.sealRest()
		ff.Close()
		sealed = append(sealed, append([]byte("head"), cluster...))
		b, _ := os.ReadFile(dir + "/f")
		return b
	}
	f.Add(good([]byte("cluster")))
	f.Add(good(bytes.Repeat([]byte{1}, sealRecordSize+10)))
	f.Add([]byte(sealMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := openSealed(io.NopCloser(bytes.NewReader(data)), dk, "1")
		if err != nil {
			return
		}
		pt, err := io.ReadAll(r)
		if err != nil {
			return
		}
		for _, want := range sealed {
			if bytes.Equal(pt, want) {
				return
			}
		}
		t.Fatalf("a forged file opened: %.64q (%d bytes)", pt, len(pt))
	})
}
