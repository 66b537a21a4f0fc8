package inspect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// official is the property table of the official kvssink (C++ producer SDK
// v3.6.0, as gst-inspect-1.0 showed it): names and GLib types.
var official = map[string]string{
	"absolute-fragment-times": "Boolean", "access-key": "String", "allow-create-stream": "Boolean",
	"avg-bandwidth-bps": "Unsigned Integer", "aws-region": "String", "buffer-duration": "Unsigned Integer",
	"codec-id": "String", "completion-timeout": "Unsigned Integer", "connection-staleness": "Unsigned Integer",
	"connection-timeout": "Unsigned Integer", "content-type": "String", "credential-path": "String",
	"disable-buffer-clipping": "Boolean", "file-start-time": "Unsigned Integer64", "fragment-acks": "Boolean",
	"fragment-duration": "Unsigned Integer", "frame-timecodes": "Boolean", "framerate": "Unsigned Integer",
	"get-kvs-metrics": "Boolean", "iot-certificate": "Boxed GstStructure", "key-frame-fragmentation": "Boolean",
	"log-config": "String", "max-latency": "Unsigned Integer", "recalculate-metrics": "Boolean",
	"replay-duration": "Unsigned Integer", "restart-on-error": "Boolean", "retention-period": "Unsigned Integer",
	"rotation-period": "Unsigned Integer", "secret-key": "String", "session-token": "String",
	"stop-stream-timeout": "Unsigned Integer", "storage-size": "Unsigned Integer", "stream-name": "String",
	"stream-tags": "Boxed GstStructure", "streaming-type": "Enum", "timecode-scale": "Unsigned Integer",
	"track-name": "String", "use-original-pts": "Boolean", "user-agent": "String",
}

// officialDefaults are the defaults whose meaning is the same literal value.
var officialDefaults = map[string]string{
	"retention-period": "2", "max-latency": "60", "fragment-duration": "2000", "timecode-scale": "1",
	"key-frame-fragmentation": "true", "frame-timecodes": "true", "absolute-fragment-times": "true",
	"fragment-acks": "true", "restart-on-error": "true", "buffer-duration": "120", "replay-duration": "40",
	"connection-staleness": "60", "stop-stream-timeout": "120", "connection-timeout": "5",
	"completion-timeout": "10", "storage-size": "128", "allow-create-stream": "true",
	"stream-name": `"DEFAULT_STREAM"`, "codec-id": `"V_MPEG4/ISO/AVC"`, "track-name": `"kinesis_video"`,
	"streaming-type": `0, "realtime"`, "use-original-pts": "false", "get-kvs-metrics": "false",
	// No magic strings: unset credentials and region are NULL.
	"access-key": "null", "secret-key": "null", "session-token": "null", "aws-region": "null",
}

func inspectElement(t *testing.T, element string) string {
	t.Helper()
	dir := testenv.PluginDir(t)
	testenv.Tool(t, "gst-inspect-1.0", "gstreamer1.0-tools")
	out, err := Run(element, dir, filepath.Join(t.TempDir(), "registry.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOfficialPropertiesPresent(t *testing.T) {
	for _, element := range []string{"kvssink", "kvsgosink"} {
		t.Run(element, func(t *testing.T) {
			out := inspectElement(t, element)
			got := map[string]Property{}
			for _, p := range Parse(out) {
				got[p.Name] = p
			}
			for name, typ := range official {
				p, ok := got[name]
				switch {
				case !ok:
					t.Errorf("property %s of the official kvssink is missing", name)
				case p.Type != typ:
					t.Errorf("property %s is %s, the official element's is %s", name, p.Type, typ)
				case officialDefaults[name] != "" && p.Default != officialDefaults[name]:
					t.Errorf("property %s defaults to %s, want %s", name, p.Default, officialDefaults[name])
				case p.Blurb == "":
					t.Errorf("property %s has no description", name)
				}
			}
			if p := got["sync"]; p.Default != "false" {
				t.Errorf("sync defaults to %q, want false", p.Default)
			}
			for _, want := range []string{"GstBaseSink", "Sink/Video/Network", `"stream-error"`, `"fragment-ack"`, `"stream-client-metric"`, "GstKvsgoSinkStreamingType", "video/x-h264", "video/x-h265", "audio/mpeg", "audio/x-alaw", "audio/x-mulaw"} {
				if !strings.Contains(out, want) {
					t.Errorf("gst-inspect output lacks %s", want)
				}
			}
			for _, official := range []string{"GstKvsSink\n", "GstKvsSinkStreamingType"} {
				if strings.Contains(out, official) {
					t.Errorf("GType name %q is the official element's: both plugins could not load together", strings.TrimSpace(official))
				}
			}
		})
	}
}

// The README's table is generated from the registered element.
func TestPropertyTableInREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.Root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- BEGIN PROPERTY TABLE -->\n", "<!-- END PROPERTY TABLE -->"
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README.md has no property table markers")
	}
	want := Markdown(Parse(inspectElement(t, "kvssink")))
	if got := s[i+len(begin) : j]; got != want {
		t.Fatalf("README property table is stale; regenerate it with\n  go run ./test/inspect/cmd/proptable > table.md\nand paste it between the markers. Want:\n%s", want)
	}
}

// The README's kvssrc table is generated from the registered element.
func TestSrcPropertyTableInREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.Root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- BEGIN KVSSRC PROPERTY TABLE -->\n", "<!-- END KVSSRC PROPERTY TABLE -->"
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README.md has no kvssrc property table markers")
	}
	want := Markdown(Parse(inspectElement(t, "kvssrc")))
	if got := s[i+len(begin) : j]; got != want {
		t.Fatalf("README kvssrc property table is stale; regenerate it with\n  go run ./test/inspect/cmd/proptable build/plugin kvssrc > table.md\nand paste it between the markers. Want:\n%s", want)
	}
}
