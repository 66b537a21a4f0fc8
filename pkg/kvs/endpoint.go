package kvs

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// DefaultRegion is the region when nothing else names one, as in the
// official element.
const DefaultRegion = "us-west-2"

// Endpoint sources reported by ResolveEndpoint and named in its errors.
const (
	SourceProperty        = "control-plane-uri"              // the element property
	SourceEnvKinesisVideo = "AWS_ENDPOINT_URL_KINESIS_VIDEO" // the SDKs' service-specific override
	SourceEnvControlPlane = "CONTROL_PLANE_URI"              // the official kvssink's override
	SourceEnvEndpointURL  = "AWS_ENDPOINT_URL"               // the SDKs' global override
	SourceRegion          = "region"                         // the regional AWS endpoint
)

// StreamNamePattern is the service's pattern for stream names.
var StreamNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,256}$`)

// ValidateStreamName checks name against StreamNamePattern. The error names
// the stream and the pattern.
func ValidateStreamName(name string) error {
	if !StreamNamePattern.MatchString(name) {
		return fmt.Errorf("stream name %q does not match %s (1 to 256 letters, digits, '_', '.', '-')", name, StreamNamePattern)
	}
	return nil
}

// regionPattern accepts us-west-2, cn-north-1, us-gov-west-1, us-isob-east-1 ...
var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)

// ResolveRegion returns the explicit region if explicitSet, else AWS_REGION,
// else AWS_DEFAULT_REGION, else DefaultRegion. The chosen value must look like
// an AWS region name (us-west-2); the error names where it came from.
func ResolveRegion(explicit string, explicitSet bool, getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if explicitSet {
		return checkRegion("aws-region", explicit)
	}
	for _, name := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return checkRegion(name, v)
		}
	}
	return DefaultRegion, nil
}

func checkRegion(source, v string) (string, error) {
	if !regionPattern.MatchString(v) {
		return "", fmt.Errorf("%s %q is not an AWS region name (like us-west-2)", source, v)
	}
	return v, nil
}

// ResolveEndpoint returns the control-plane base URL and where it came from:
// the first non-empty of explicit (the control-plane-uri property),
// AWS_ENDPOINT_URL_KINESIS_VIDEO, CONTROL_PLANE_URI, AWS_ENDPOINT_URL, else
// the regional AWS endpoint (source "region"). Plain http:// is accepted for
// loopback hosts only (127.0.0.0/8, ::1, localhost). A trailing slash is
// trimmed. Errors name the source and the URL.
func ResolveEndpoint(explicit, region string, getenv func(string) string) (string, string, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	for _, c := range []struct{ name, v string }{
		{SourceProperty, explicit},
		{SourceEnvKinesisVideo, getenv(SourceEnvKinesisVideo)},
		{SourceEnvControlPlane, getenv(SourceEnvControlPlane)},
		{SourceEnvEndpointURL, getenv(SourceEnvEndpointURL)},
	} {
		v := strings.TrimSpace(c.v)
		if v == "" {
			continue
		}
		u, err := checkURL(v)
		if err != nil {
			return "", c.name, fmt.Errorf("%s: %w", c.name, err)
		}
		return u, c.name, nil
	}
	if !regionPattern.MatchString(region) {
		return "", SourceRegion, fmt.Errorf("no endpoint configured and region %q is not an AWS region name", region)
	}
	return RegionalEndpoint(region), SourceRegion, nil
}

// RegionalEndpoint is the AWS control-plane URL of a region, following the
// official producer's constructControlPlaneUrl.
func RegionalEndpoint(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "https://kinesisvideo." + region + ".amazonaws.com.cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "https://kinesisvideo-fips." + region + ".amazonaws.com"
	case strings.HasPrefix(region, "us-isob-"):
		return "https://kinesisvideo-fips." + region + ".sc2s.sgov.gov"
	case strings.HasPrefix(region, "us-iso-"):
		return "https://kinesisvideo-fips." + region + ".c2s.ic.gov"
	}
	return "https://kinesisvideo." + region + ".amazonaws.com"
}

// ErrInsecureEndpoint is wrapped by the error for a plain http:// URL to a
// host that is not loopback.
var ErrInsecureEndpoint = errors.New("plain http:// is allowed to loopback hosts only (127.0.0.0/8, ::1, localhost); use https://")

// checkURL validates an endpoint URL and trims a trailing slash. Errors quote
// the URL with any user info redacted.
func checkURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a valid URL: %v", redactRaw(raw), errors.Unwrap(err))
	}
	shown := u.Redacted()
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q is not an http:// or https:// URL", shown)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q has no host", shown)
	case u.User != nil:
		return "", fmt.Errorf("%q must not carry user info (credentials come from the credential settings)", shown)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("%q must not have a query or fragment", shown)
	case u.Scheme == "http" && !IsLoopbackHost(u.Hostname()):
		return "", fmt.Errorf("%q: %w", shown, ErrInsecureEndpoint)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q has an invalid port", shown)
		}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// redactRaw hides user info in a URL that did not parse.
func redactRaw(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			return raw[:i+3] + "xxxxx@" + rest[at+1:]
		}
	}
	return raw
}

// IsLoopbackHost reports whether host is localhost or a loopback address
// (127.0.0.0/8, ::1).
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
