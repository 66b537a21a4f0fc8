package inspect

import (
	"regexp"
	"strings"
	"testing"
)

// gst-inspect-1.0 shows the official element's request pads next to the
// always sink pad, with their caps.
func TestPadTemplates(t *testing.T) {
	for _, element := range []string{"kvssink", "kvsgosink"} {
		t.Run(element, func(t *testing.T) {
			out := inspectElement(t, element)
			i := strings.Index(out, "Pad Templates:")
			if i < 0 {
				t.Fatalf("no pad templates:\n%s", out)
			}
			section := out[i:]
			if j := strings.Index(section, "\nElement has"); j > 0 {
				section = section[:j]
			}
			templates := map[string]string{}
			re := regexp.MustCompile(`SINK template: '([^']+)'\s+Availability: ([^\n]+)\n\s+Capabilities:\n((?:\s{6,}[^\n]*\n)+)`)
			for _, m := range re.FindAllStringSubmatch(section, -1) {
				templates[m[1]] = strings.TrimSpace(m[2]) + "\n" + m[3]
			}
			for name, want := range map[string][]string{
				"sink":     {"Always", "video/x-h264", "video/x-h265", "audio/mpeg", "audio/x-alaw", "audio/x-mulaw"},
				"video_%u": {"On request", "video/x-h264", "stream-format: { (string)avc", "video/x-h265"},
				"audio_%u": {"On request", "audio/mpeg", "mpegversion: { (int)2, (int)4 }", "stream-format: raw", "audio/x-alaw", "audio/x-mulaw"},
			} {
				got, ok := templates[name]
				if !ok {
					t.Fatalf("no %s template in:\n%s", name, section)
				}
				for _, w := range want {
					if !strings.Contains(got, w) {
						t.Errorf("%s template lacks %q:\n%s", name, w, got)
					}
				}
			}
			if strings.Contains(templates["video_%u"], "audio/") || strings.Contains(templates["audio_%u"], "video/") {
				t.Errorf("a request template mixes media:\n%s", section)
			}
			if len(templates) != 3 {
				t.Errorf("%d templates, want 3:\n%s", len(templates), section)
			}
		})
	}
}
