package kvslocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"

	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// getMedia runs GetMedia with a selector and reads the response to its end.
func getMedia(t *testing.T, url, stream string, sel map[string]any) ([]*chunk, int) {
	t.Helper()
	resp := signedPost(t, url, "/getMedia", map[string]any{"StreamName": stream, "StartSelector": sel})
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return nil, resp.StatusCode
	}
	return readChunks(t, resp.Body), 200
}

func TestGetMediaSelectors(t *testing.T) {
	fx := loadFixture(t)
	_, url := start(t, t.TempDir())
	createStream(t, url, "sel", 1)
	numbers := putFixture(t, url, "sel", fx)
	ms := func(i int) float64 { return float64(fx.timecodes[i]) / 1000 }
	for _, c := range []struct {
		name  string
		sel   map[string]any
		first int // index of the first fragment returned
		n     int
	}{
		{"EARLIEST", map[string]any{"StartSelectorType": "EARLIEST"}, 0, 10},
		{"FRAGMENT_NUMBER", map[string]any{"StartSelectorType": "FRAGMENT_NUMBER", "AfterFragmentNumber": numbers[3]}, 3, 7},
		{"CONTINUATION_TOKEN", map[string]any{"StartSelectorType": "CONTINUATION_TOKEN", "ContinuationToken": numbers[3]}, 4, 6},
		{"PRODUCER_TIMESTAMP", map[string]any{"StartSelectorType": "PRODUCER_TIMESTAMP", "StartTimestamp": ms(5) + 0.5}, 5, 5},
		{"PRODUCER_TIMESTAMP in whole seconds", map[string]any{"StartSelectorType": "PRODUCER_TIMESTAMP", "StartTimestamp": int64(ms(8))}, 7, 3},
		{"SERVER_TIMESTAMP", map[string]any{"StartSelectorType": "SERVER_TIMESTAMP", "StartTimestamp": 0}, 0, 10},
		{"NOW", map[string]any{"StartSelectorType": "NOW"}, 10, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			chunks, status := getMedia(t, url, "sel", c.sel)
			if status != 200 || len(chunks) != c.n {
				t.Fatalf("status %d, %d chunks; want %d", status, len(chunks), c.n)
			}
			if c.n > 0 && chunks[0].tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] != numbers[c.first] {
				t.Fatalf("first chunk %s, want fragment %d", chunks[0].tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"], c.first)
			}
		})
	}
	for _, c := range []struct {
		sel    map[string]any
		status int
	}{
		{map[string]any{"StartSelectorType": "FRAGMENT_NUMBER", "AfterFragmentNumber": "91343852333189999999999999999999999999999999999"}, 404},
		{map[string]any{"StartSelectorType": "LATEST"}, 400},
		{map[string]any{"StartSelectorType": "PRODUCER_TIMESTAMP"}, 400},
		{nil, 400},
	} {
		if _, status := getMedia(t, url, "sel", c.sel); status != c.status {
			t.Errorf("selector %v: status %d, want %d", c.sel, status, c.status)
		}
	}
	if _, status := getMedia(t, url, "missing", map[string]any{"StartSelectorType": "EARLIEST"}); status != 404 {
		t.Errorf("missing stream: status %d", status)
	}
}

// GetMedia NOW waits for new fragments and streams them as they are
// stored, then ends after the idle timeout.
func TestGetMediaFollowsLiveData(t *testing.T) {
	fx := loadFixture(t)
	_, url := start(t, t.TempDir())
	createStream(t, url, "live", 1)
	resp := signedPost(t, url, "/getMedia", map[string]any{"StreamName": "live", "StartSelector": map[string]string{"StartSelectorType": "NOW"}})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := make(chan []*chunk, 1)
	go func() { got <- readChunks(t, resp.Body) }()
	numbers := putFixture(t, url, "live", fx)
	select {
	case chunks := <-got:
		if len(chunks) != 10 || chunks[9].tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] != numbers[9] {
			t.Fatalf("%d chunks", len(chunks))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("GetMedia did not end after the idle timeout")
	}
}

func archived(url string) *kinesisvideoarchivedmedia.Client {
	return kinesisvideoarchivedmedia.New(kinesisvideoarchivedmedia.Options{
		Region: testRegion, BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
		Credentials: awscreds.NewStaticCredentialsProvider(testKey, testSecret, ""),
	})
}

// ListFragments and GetMediaForFragmentList with aws-sdk-go-v2's
// archived-media client.
func TestArchivedMediaWithTheSDK(t *testing.T) {
	fx := loadFixture(t)
	_, url := start(t, t.TempDir())
	createStream(t, url, "arch", 1)
	numbers := putFixture(t, url, "arch", fx)
	ctx := context.Background()
	c := archived(url)

	all, err := c.ListFragments(ctx, &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: aws.String("arch")})
	if err != nil || len(all.Fragments) != 10 || all.NextToken != nil {
		t.Fatalf("ListFragments: %v %v", all, err)
	}
	for i, f := range all.Fragments {
		if aws.ToString(f.FragmentNumber) != numbers[i] || f.FragmentLengthInMilliseconds != 967 || f.FragmentSizeInBytes < 150_000 ||
			!f.ProducerTimestamp.Equal(time.UnixMilli(int64(fx.timecodes[i]))) || f.ServerTimestamp == nil {
			t.Errorf("fragment %d: %+v", i, f)
		}
	}
	// Paging.
	var paged []string
	var token *string
	for {
		page, err := c.ListFragments(ctx, &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: aws.String("arch"), MaxResults: aws.Int64(4), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page.Fragments {
			paged = append(paged, aws.ToString(f.FragmentNumber))
		}
		if token = page.NextToken; token == nil {
			break
		}
	}
	if fmt.Sprint(paged) != fmt.Sprint(numbers) {
		t.Fatalf("paged %v", paged)
	}
	// A producer-timestamp range (sent with milliseconds by this SDK).
	from, to := time.UnixMilli(int64(fx.timecodes[2])), time.UnixMilli(int64(fx.timecodes[4]))
	r, err := c.ListFragments(ctx, &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: aws.String("arch"),
		FragmentSelector: &types.FragmentSelector{FragmentSelectorType: types.FragmentSelectorTypeProducerTimestamp,
			TimestampRange: &types.TimestampRange{StartTimestamp: &from, EndTimestamp: &to}}})
	if err != nil || len(r.Fragments) != 3 || aws.ToString(r.Fragments[0].FragmentNumber) != numbers[2] {
		t.Fatalf("range: %v %v", r, err)
	}

	out, err := c.GetMediaForFragmentList(ctx, &kinesisvideoarchivedmedia.GetMediaForFragmentListInput{StreamName: aws.String("arch"),
		Fragments: []string{numbers[7], numbers[2]}})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Payload.Close()
	chunks := readChunks(t, out.Payload)
	if aws.ToString(out.ContentType) != "video/webm" || len(chunks) != 2 || chunks[0].timecode != fx.timecodes[7] || len(chunks[1].blocks) != 30 {
		t.Fatalf("GetMediaForFragmentList: %s, %d chunks", aws.ToString(out.ContentType), len(chunks))
	}
	want := "AWS_KINESISVIDEO_FRAGMENT_NUMBER AWS_KINESISVIDEO_SERVER_SIDE_TIMESTAMP AWS_KINESISVIDEO_PRODUCER_SIDE_TIMESTAMP Cluster"
	if got := strings.Join(chunks[1].order, " "); got != want || chunks[1].tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] != numbers[2] {
		t.Fatalf("chunk layout %s", got)
	}
	var nf *types.ResourceNotFoundException
	if _, err := c.GetMediaForFragmentList(ctx, &kinesisvideoarchivedmedia.GetMediaForFragmentListInput{StreamName: aws.String("arch"),
		Fragments: []string{"1"}}); err == nil || !errors.As(err, &nf) {
		t.Fatalf("unknown fragment: %v", err)
	}
}

// A producer that writes a Segment of known size (mkvmerge output, here the
// official fixture remuxed) gets its fragments served as the service serves
// them: every chunk's Segment of unknown size, so that a reader of the
// response sees every chunk (the producer's size used to claim the chunks
// that follow it).
func TestGetMediaServesSegmentsOfUnknownSize(t *testing.T) {
	mkvmerge := testenv.Tool(t, "mkvmerge", "mkvtoolnix")
	dir := t.TempDir()
	sized := filepath.Join(dir, "sized.mkv")
	if out, err := exec.Command(mkvmerge, "-q", "-o", sized, testenv.Fixture(t, "official-putmedia.mkv")).CombinedOutput(); err != nil {
		t.Fatalf("mkvmerge: %v\n%s", err, out)
	}
	body, err := os.ReadFile(sized)
	if err != nil {
		t.Fatal(err)
	}
	r := mkv.NewReader(bytes.NewReader(body))
	for {
		e, err := r.Next()
		if err != nil {
			t.Fatalf("mkvmerge output: %v", err)
		}
		if e.ID == mkv.IDSegment {
			if e.Size == mkv.UnknownSize {
				t.Fatal("mkvmerge wrote a Segment of unknown size; the test needs a known one")
			}
			break
		}
	}
	_, url := start(t, filepath.Join(dir, "kvs"))
	createStream(t, url, "sized", 1)
	s := startPut(t, url, putOptions{stream: "sized", relative: true})
	if resp := s.awaitStatus(t, body[:1]); resp.StatusCode != 200 {
		t.Fatalf("PutMedia status %d", resp.StatusCode)
	}
	go func() { writeChunked(s.w, body[1:]); s.w.Close() }()
	persisted := 0
	for persisted < 10 {
		a, ok := s.next(t, 20*time.Second)
		if !ok {
			t.Fatalf("acks ended after %d persisted", persisted)
		}
		switch a.EventType {
		case "PERSISTED":
			persisted++
		case "ERROR":
			t.Fatalf("PutMedia: %s", a.raw)
		}
	}
	resp := signedPost(t, url, "/getMedia", map[string]any{"StreamName": "sized", "StartSelector": map[string]string{"StartSelectorType": "EARLIEST"}})
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GetMedia %d %v", resp.StatusCode, err)
	}
	segments := 0
	r = mkv.NewReader(bytes.NewReader(got))
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.ID == mkv.IDSegment {
			segments++
			if e.Size != mkv.UnknownSize || !bytes.Equal(got[e.Offset+4:e.Offset+12], []byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}) {
				t.Fatalf("chunk %d: Segment size field %x", segments, got[e.Offset+4:e.Offset+12])
			}
		}
	}
	chunks := readChunks(t, bytes.NewReader(got))
	blocks := 0
	for _, c := range chunks {
		blocks += len(c.blocks)
	}
	if segments != 10 || len(chunks) != 10 || blocks != 300 {
		t.Fatalf("%d segments, %d chunks, %d blocks; want 10, 10, 300", segments, len(chunks), blocks)
	}
}
