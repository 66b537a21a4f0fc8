package kvslocal

import "fmt"

// TagResource, UntagResource and ListTagsForResource (POST /TagResource,
// /UntagResource, /ListTagsForResource: capitalised, unlike the stream
// calls). They address a stream by ResourceARN and share its tags with
// TagStream, UntagStream and ListTagsForStream. TagResource takes the tags
// as a list of {Key, Value}; ListTagsForResource answers them as a map,
// as the KVS model (aws-sdk-go-v2 kinesisvideo v1.34.0) has it.

// resourceTag is one element of TagResource's Tags list.
type resourceTag struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value"`
}

// resourceRef resolves a ResourceARN to the stream it names.
func resourceRef(arn string) (streamRef, *apiError) {
	if arn == "" {
		return streamRef{}, newErr("InvalidArgumentException", "1 validation error detected: Value null at 'resourceARN' failed to satisfy constraint: Member must not be null")
	}
	if len(arn) > 1024 {
		return streamRef{}, newErr("InvalidArgumentException", "ResourceARN is at most 1024 characters.")
	}
	return streamRef{StreamARN: arn}, nil
}

func (s *Server) tagResource(body []byte) (any, *apiError) {
	var in struct {
		ResourceARN string
		Tags        []resourceTag
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	ref, e := resourceRef(in.ResourceARN)
	if e != nil {
		return nil, e
	}
	if len(in.Tags) < 1 || len(in.Tags) > maxTags {
		return nil, newErr("InvalidArgumentException", fmt.Sprintf("Tags must have between 1 and %d members.", maxTags))
	}
	tags := make(map[string]string, len(in.Tags))
	for i, t := range in.Tags {
		if t.Key == nil || t.Value == nil {
			return nil, newErr("InvalidArgumentException", fmt.Sprintf("Tags[%d] needs both Key and Value.", i))
		}
		tags[*t.Key] = *t.Value
	}
	if e := validTags(tags); e != nil {
		return nil, e
	}
	return map[string]any{}, s.addTags(ref, tags)
}

func (s *Server) untagResource(body []byte) (any, *apiError) {
	var in struct {
		ResourceARN string
		TagKeyList  []string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	ref, e := resourceRef(in.ResourceARN)
	if e != nil {
		return nil, e
	}
	if len(in.TagKeyList) < 1 || len(in.TagKeyList) > maxTags {
		return nil, newErr("InvalidArgumentException", fmt.Sprintf("TagKeyList must have between 1 and %d members.", maxTags))
	}
	return map[string]any{}, s.removeTags(ref, in.TagKeyList)
}

func (s *Server) listTagsForResource(body []byte) (any, *apiError) {
	var in struct {
		ResourceARN string
		NextToken   string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	ref, e := resourceRef(in.ResourceARN)
	if e != nil {
		return nil, e
	}
	m, e := s.store.get(ref)
	if e != nil {
		return nil, e
	}
	// At most 50 tags: one page, so no NextToken.
	return map[string]any{"Tags": m.Tags}, nil
}
