package kvslocal

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
)

// TagResource, UntagResource and ListTagsForResource with the SDK: the
// capitalised paths, tags as a list in and a map out, shared with
// TagStream and ListTagsForStream.
func TestResourceTagsWithTheSDK(t *testing.T) {
	_, url := start(t, t.TempDir())
	ctx := context.Background()
	c := client(url, testKey, testSecret)
	out, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("tagged"), Tags: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.StreamARN
	if _, err := c.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: arn,
		Tags: []types.Tag{{Key: aws.String("b"), Value: aws.String("2")}, {Key: aws.String("c"), Value: aws.String("")}}}); err != nil {
		t.Fatal(err)
	}
	lr, err := c.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: arn})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a": "1", "b": "2", "c": ""}; !maps.Equal(lr.Tags, want) {
		t.Fatalf("ListTagsForResource %v, want %v", lr.Tags, want)
	}
	if _, err := c.UntagResource(ctx, &kinesisvideo.UntagResourceInput{ResourceARN: arn, TagKeyList: []string{"a", "nope"}}); err != nil {
		t.Fatal(err)
	}
	ls, err := c.ListTagsForStream(ctx, &kinesisvideo.ListTagsForStreamInput{StreamName: aws.String("tagged")})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"b": "2", "c": ""}; !maps.Equal(ls.Tags, want) {
		t.Fatalf("ListTagsForStream after UntagResource %v, want %v", ls.Tags, want)
	}
	// TagStream's tags show through ListTagsForResource.
	if _, err := c.TagStream(ctx, &kinesisvideo.TagStreamInput{StreamName: aws.String("tagged"), Tags: map[string]string{"d": "4"}}); err != nil {
		t.Fatal(err)
	}
	if lr, err = c.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: arn}); err != nil || lr.Tags["d"] != "4" {
		t.Fatalf("ListTagsForResource after TagStream: %v %v", lr, err)
	}

	// Errors.
	unknown := aws.String("arn:aws:kinesisvideo:us-west-2:123456789012:stream/nope/1")
	if _, err := c.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: unknown}); code(err) != "ResourceNotFoundException" {
		t.Errorf("unknown ARN: %v", err)
	}
	var rnf *types.ResourceNotFoundException
	_, err = c.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: unknown, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	if !errors.As(err, &rnf) {
		t.Errorf("TagResource on an unknown ARN: %v", err)
	}
	if _, err := c.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: arn, Tags: []types.Tag{{Key: aws.String(""), Value: aws.String("v")}}}); code(err) != "InvalidArgumentException" {
		t.Errorf("empty tag key: %v", err)
	}
	many := make([]types.Tag, 0, 50)
	for i := range 50 {
		many = append(many, types.Tag{Key: aws.String(string(rune('A'+i%26)) + string(rune('a'+i/26))), Value: aws.String("v")})
	}
	if _, err := c.TagResource(ctx, &kinesisvideo.TagResourceInput{ResourceARN: arn, Tags: many}); code(err) != "TagsPerResourceExceededLimitException" {
		t.Errorf("more than 50 tags in all: %v", err)
	}
	if lr, err = c.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: arn}); err != nil || len(lr.Tags) != 3 {
		t.Fatalf("a refused TagResource changed the tags: %v %v", lr, err)
	}
	// The lower-case path is not an operation.
	if resp := signedPost(t, url, "/tagResource", map[string]any{"ResourceARN": *arn}); resp.StatusCode != 404 {
		t.Errorf("/tagResource: status %d", resp.StatusCode)
	}
}
