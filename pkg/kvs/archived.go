package kvs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"
)

// Archived media (kinesis-video-archived-media): ListFragments and
// GetMediaForFragmentList. Like GetMedia they are signed JSON POSTs to the
// data endpoint that GetDataEndpoint returns for LIST_FRAGMENTS and
// GET_MEDIA_FOR_FRAGMENT_LIST.

// MaxFragmentList is the most fragment numbers one GetMediaForFragmentList
// (and one ListFragments page) takes.
const MaxFragmentList = 1000

// FragmentInfo is one fragment as ListFragments describes it.
type FragmentInfo struct {
	Number            string
	SizeBytes         int64
	ProducerTimestamp time.Time
	ServerTimestamp   time.Time
	Duration          time.Duration
}

// ListFragmentsInput selects the fragments whose producer (or server)
// timestamp lies in [Start, End].
type ListFragmentsInput struct {
	// ServerTimestamps selects by server timestamp instead of producer
	// timestamp.
	ServerTimestamps bool
	Start, End       time.Time
}

// ArchiveConfig is what the archived-media calls need: the data endpoint of
// the operation, the stream and how to sign.
type ArchiveConfig struct {
	Endpoint    string // data endpoint from GetDataEndpoint
	StreamName  string
	Region      string
	Credentials CredentialsProvider
	// HTTPClient carries the requests; nil means a client whose dial and
	// TLS handshake are bounded by DefaultConnectTimeout.
	HTTPClient *http.Client
	// Now is the signing time. It defaults to time.Now.
	Now func() time.Time
}

func (c *ArchiveConfig) check(op string) (string, error) {
	ep, err := checkURL(c.Endpoint)
	if err != nil {
		return "", fmt.Errorf("%s: data endpoint: %w", op, err)
	}
	if err := ValidateStreamName(c.StreamName); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if _, err := checkRegion("region", c.Region); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = newDefaultClient(DefaultConnectTimeout, false)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return ep, nil
}

// post sends a signed JSON body to ep+path and returns the 200 response.
func (c *ArchiveConfig) post(ctx context.Context, op, ep, path string, in any) (*http.Response, error) {
	return postJSON(ctx, c.HTTPClient, c.Credentials, c.Region, c.Now(), op, ep, path, in)
}

// maxListBody bounds one ListFragments answer: 1000 fragments of about
// 200 bytes of JSON each.
const maxListBody = 4 << 20

// ListFragments returns every fragment of the range, following NextToken,
// sorted by producer timestamp (the service returns them in no particular
// order). It is bounded by ctx.
func ListFragments(ctx context.Context, cfg ArchiveConfig, in ListFragmentsInput) ([]FragmentInfo, error) {
	const op = "ListFragments"
	ep, err := cfg.check(op)
	if err != nil {
		return nil, err
	}
	if in.Start.IsZero() || in.End.IsZero() {
		return nil, fmt.Errorf("%s: a time range needs a start and an end", op)
	}
	if in.End.Before(in.Start) {
		return nil, fmt.Errorf("%s: the range ends (%s) before it starts (%s)", op, in.End.UTC().Format(time.RFC3339Nano), in.Start.UTC().Format(time.RFC3339Nano))
	}
	typ := "PRODUCER_TIMESTAMP"
	if in.ServerTimestamps {
		typ = "SERVER_TIMESTAMP"
	}
	type tsRange struct {
		StartTimestamp float64 `json:"StartTimestamp"`
		EndTimestamp   float64 `json:"EndTimestamp"`
	}
	type selector struct {
		FragmentSelectorType string  `json:"FragmentSelectorType"`
		TimestampRange       tsRange `json:"TimestampRange"`
	}
	type request struct {
		StreamName       string   `json:"StreamName"`
		MaxResults       int      `json:"MaxResults"`
		NextToken        string   `json:"NextToken,omitempty"`
		FragmentSelector selector `json:"FragmentSelector"`
	}
	req := request{StreamName: cfg.StreamName, MaxResults: MaxFragmentList, FragmentSelector: selector{typ,
		tsRange{float64(in.Start.UnixMilli()) / 1000, float64(in.End.UnixMilli()) / 1000}}}
	var out []FragmentInfo
	seen := map[string]bool{}
	for page := 0; ; page++ {
		resp, err := cfg.post(ctx, op, ep, "/listFragments", req)
		if err != nil {
			return nil, err
		}
		var ans struct {
			Fragments []struct {
				FragmentNumber               string
				FragmentSizeInBytes          int64
				ProducerTimestamp            float64
				ServerTimestamp              float64
				FragmentLengthInMilliseconds int64
			}
			NextToken string
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxListBody+1))
		resp.Body.Close()
		if err != nil {
			return nil, transportError(op, ep, err)
		}
		if len(b) > maxListBody {
			return nil, fmt.Errorf("%s: %s answered more than %d bytes", op, ep, maxListBody)
		}
		if err := json.Unmarshal(b, &ans); err != nil {
			return nil, fmt.Errorf("%s: %s: malformed response: %v (%s)", op, ep, err, bodyExcerpt(b))
		}
		for _, f := range ans.Fragments {
			if !digits(f.FragmentNumber) {
				return nil, fmt.Errorf("%s: %s listed a fragment number that is not 1 to %d digits: %q", op, ep, MaxFragmentNumberLen, excerptText([]byte(f.FragmentNumber), 64))
			}
			if seen[f.FragmentNumber] {
				continue
			}
			seen[f.FragmentNumber] = true
			out = append(out, FragmentInfo{Number: f.FragmentNumber, SizeBytes: f.FragmentSizeInBytes,
				ProducerTimestamp: epochTime(f.ProducerTimestamp), ServerTimestamp: epochTime(f.ServerTimestamp),
				Duration: time.Duration(f.FragmentLengthInMilliseconds) * time.Millisecond})
		}
		if ans.NextToken == "" {
			break
		}
		if ans.NextToken == req.NextToken || page > 100000 {
			return nil, fmt.Errorf("%s: %s repeats the page token %q", op, ep, excerptText([]byte(ans.NextToken), 64))
		}
		req.NextToken = ans.NextToken
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.ProducerTimestamp.Equal(b.ProducerTimestamp) {
			return a.ProducerTimestamp.Before(b.ProducerTimestamp)
		}
		return CompareFragmentNumbers(a.Number, b.Number) < 0
	})
	return out, nil
}

func epochTime(s float64) time.Time { return time.UnixMilli(int64(s*1000 + 0.5)) }

// GetMediaForFragmentList returns the media of up to MaxFragmentList
// fragments, in the order given: one Matroska chunk per fragment, as
// GetMedia lays them out. The caller closes the body.
func GetMediaForFragmentList(ctx context.Context, cfg ArchiveConfig, fragments []string) (io.ReadCloser, error) {
	const op = "GetMediaForFragmentList"
	ep, err := cfg.check(op)
	if err != nil {
		return nil, err
	}
	if len(fragments) == 0 || len(fragments) > MaxFragmentList {
		return nil, fmt.Errorf("%s: %d fragment numbers, want 1 to %d", op, len(fragments), MaxFragmentList)
	}
	for _, n := range fragments {
		if !digits(n) {
			return nil, fmt.Errorf("%s: fragment number %q is not 1 to %d digits", op, excerptText([]byte(n), 64), MaxFragmentNumberLen)
		}
	}
	resp, err := cfg.post(ctx, op, ep, "/getMediaForFragmentList", struct {
		StreamName string   `json:"StreamName"`
		Fragments  []string `json:"Fragments"`
	}{cfg.StreamName, fragments})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// CompareFragmentNumbers orders two decimal fragment numbers (-1, 0, 1).
// Numbers that are not decimal compare as strings, after the decimal ones.
func CompareFragmentNumbers(a, b string) int {
	da, db := digits(a), digits(b)
	switch {
	case da != db:
		if da {
			return -1
		}
		return 1
	case da && len(a) != len(b):
		a, b = trimZeros(a), trimZeros(b)
		if len(a) != len(b) {
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}
