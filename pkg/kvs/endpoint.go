package kvs

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// DefaultRegion is the region when nothing else names one, as in the
// official element.
const DefaultRegion = "us-west-2"

// StreamNamePattern is the service's pattern for stream names.
var StreamNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,256}$`)

// ValidateStreamName checks name against StreamNamePattern.
func ValidateStreamName(name string) error {
	if !StreamNamePattern.MatchString(name) {
		return fmt.Errorf("stream name %q does not match %s (1 to 256 letters, digits, '_', '.', '-')", name, StreamNamePattern)
	}
	return nil
}

var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)

// ResolveRegion returns the explicit region if set, else AWS_REGION, else
// AWS_DEFAULT_REGION, else DefaultRegion.
func ResolveRegion(explicit string, explicitSet bool, getenv func(string) string) (string, error) {
	type src struct{ name, v string }
	candidates := []src{{"aws-region", explicit}, {"AWS_REGION", getenv("AWS_REGION")}, {"AWS_DEFAULT_REGION", getenv("AWS_DEFAULT_REGION")}}
	if !explicitSet {
		candidates = candidates[1:]
	}
	for _, c := range candidates {
		if c.v == "" {
			continue
		}
		if !regionPattern.MatchString(c.v) {
			return "", fmt.Errorf("%s %q is not an AWS region name (like us-west-2)", c.name, c.v)
		}
		return c.v, nil
	}
	return DefaultRegion, nil
}

// ResolveEndpoint returns the control-plane base URL and where it came from:
// the first non-empty of explicit (the control-plane-uri property),
// AWS_ENDPOINT_URL_KINESIS_VIDEO, CONTROL_PLANE_URI, AWS_ENDPOINT_URL, else
// the regional AWS endpoint. Plain http:// is accepted for loopback hosts only.
func ResolveEndpoint(explicit, region string, getenv func(string) string) (string, string, error) {
	for _, c := range []struct{ name, v string }{
		{"control-plane-uri", explicit},
		{"AWS_ENDPOINT_URL_KINESIS_VIDEO", getenv("AWS_ENDPOINT_URL_KINESIS_VIDEO")},
		{"CONTROL_PLANE_URI", getenv("CONTROL_PLANE_URI")},
		{"AWS_ENDPOINT_URL", getenv("AWS_ENDPOINT_URL")},
	} {
		if c.v == "" {
			continue
		}
		u, err := checkURL(c.v)
		if err != nil {
			return "", c.name, fmt.Errorf("%s: %w", c.name, err)
		}
		return u, c.name, nil
	}
	return RegionalEndpoint(region), "region", nil
}

// RegionalEndpoint is the AWS control-plane URL of a region.
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

// checkURL validates an endpoint URL and trims a trailing slash.
func checkURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return "", fmt.Errorf("%q uses plain http to a host that is not loopback; use https", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q has a query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// IsLoopbackHost reports whether host is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
