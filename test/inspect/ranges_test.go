package inspect

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// declaredRanges are the bounds the element enforces, as its pspecs must
// declare them (pkg/sink's Min…/Max… constants).
var declaredRanges = map[string]string{
	"fragment-duration":      "1000 - 30000",
	"e2ee-rotation-interval": "60 - 4294967295",
	"timecode-scale":         "1 - 4294967295",
	"retention-period":       "0 - 87600",
	"role-duration":          "0 - 43200",
}

// gst-inspect shows the enforced ranges, not 0 - G_MAXUINT.
func TestDeclaredRanges(t *testing.T) {
	got := map[string]Property{}
	for _, p := range Parse(inspectElement(t, "kvssink")) {
		got[p.Name] = p
	}
	for name, want := range declaredRanges {
		if r := got[name].Range; r != want {
			t.Errorf("%s: gst-inspect shows range %q, want %q", name, r, want)
		}
	}
}

// rangeHost sets values outside and inside the declared ranges with
// g_object_set and with gst_util_set_object_arg (what gst-launch-1.0's
// parser calls) and prints what the element holds afterwards.
const rangeHost = showHeader + `int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  GstElement *e = gst_element_factory_make("kvssink", NULL);
  if (!e) { g_printerr("no element kvssink\n"); return 2; }
  g_object_set(e, "fragment-duration", 500, NULL);
  show(e, "fragment-duration");
  gst_util_set_object_arg(G_OBJECT(e), "fragment-duration", "40000");
  show(e, "fragment-duration");
  gst_util_set_object_arg(G_OBJECT(e), "fragment-duration", "5000");
  show(e, "fragment-duration");
  gst_util_set_object_arg(G_OBJECT(e), "e2ee-rotation-interval", "59");
  show(e, "e2ee-rotation-interval");
  g_object_set(e, "e2ee-rotation-interval", 60, NULL);
  show(e, "e2ee-rotation-interval");
  g_object_set(e, "timecode-scale", 0, NULL);
  show(e, "timecode-scale");
  gst_object_unref(e);
  gst_deinit();
  return 0;
}
`

// Out-of-range values are refused by GObject itself, with GLib's warning
// naming the property; the element keeps its value.
func TestRangesEnforcedBySetProperty(t *testing.T) {
	dir := testenv.PluginDir(t)
	bin := testenv.BuildGstHost(t, rangeHost)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "GST_PLUGIN_PATH="+dir, "GST_REGISTRY="+filepath.Join(t.TempDir(), "registry.bin"), "G_DEBUG=")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	want := "fragment-duration=2000\nfragment-duration=2000\nfragment-duration=5000\n" +
		"e2ee-rotation-interval=3600\ne2ee-rotation-interval=60\ntimecode-scale=1\n"
	if stdout.String() != want {
		t.Errorf("values after setting:\n%s\nwant:\n%s", stdout.String(), want)
	}
	for _, prop := range []string{"fragment-duration", "e2ee-rotation-interval", "timecode-scale"} {
		if !strings.Contains(stderr.String(), "out of range for property '"+prop+"'") {
			t.Errorf("no GLib warning naming %s:\n%s", prop, stderr.String())
		}
	}
}
