package inspect

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// showHeader includes GStreamer and defines show(element, property), which
// prints property=value as the application reads it back through GObject
// ((null) for a NULL string or boxed value).
const showHeader = `#include <gst/gst.h>
static void show(GstElement *e, const char *prop) {
  GValue v = G_VALUE_INIT;
  g_object_get_property(G_OBJECT(e), prop, &v);
  gchar *s = G_VALUE_HOLDS_STRING(&v) ? g_value_dup_string(&v)
            : (G_VALUE_HOLDS_BOXED(&v) && !g_value_get_boxed(&v)) ? NULL : gst_value_serialize(&v);
  g_print("%s=%s\n", prop, s ? s : "(null)");
  g_free(s);
  g_value_unset(&v);
}
`

// host is a small C program that creates the element and reads properties
// back through GObject, as an application does. gst-inspect cannot set a
// property, and this test stays pure Go: the program is compiled with cc.
const host = showHeader + `int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  GstElement *e = gst_element_factory_make(argv[1], NULL);
  if (!e) { g_printerr("no element %s\n", argv[1]); return 2; }
  g_print("name=%s\n", GST_OBJECT_NAME(e));
  show(e, "sync"); show(e, "secret-key"); show(e, "session-token"); show(e, "credential-path");
  g_object_set(e, "secret-key", "hunter2-secret", "session-token", "hunter2-token", "stream-name", "s1", NULL);
  gst_util_set_object_arg(G_OBJECT(e), "streaming-type", "offline");
  gst_util_set_object_arg(G_OBJECT(e), "stream-tags", "tags, team=video, id=(string)42");
  show(e, "secret-key"); show(e, "session-token"); show(e, "stream-name"); show(e, "streaming-type"); show(e, "stream-tags");
  g_object_set(e, "secret-key", NULL, "stream-tags", NULL, NULL);
  show(e, "secret-key"); show(e, "stream-tags");
  gst_object_unref(e);
  gst_deinit();
  return 0;
}
`

// Secrets never come back from get_property; defaults and round trips are
// what an application of the official element expects.
func TestGetProperty(t *testing.T) {
	dir := testenv.PluginDir(t)
	bin := testenv.BuildGstHost(t, host)
	for _, element := range []string{"kvssink", "kvsgosink"} {
		t.Run(element, func(t *testing.T) {
			cmd := exec.Command(bin, element)
			cmd.Env = append(os.Environ(), "GST_PLUGIN_PATH="+dir, "GST_REGISTRY="+filepath.Join(t.TempDir(), "registry.bin"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			s := string(out)
			if strings.Contains(s, "hunter2") {
				t.Fatalf("a secret came back from get_property:\n%s", s)
			}
			if strings.Contains(s, "CRITICAL") || strings.Contains(s, "WARNING") {
				t.Errorf("GLib warnings:\n%s", s)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
				got = append(got, strings.TrimSpace(l))
			}
			want := []string{
				"name=" + element + "0", // as the official element names its instances
				"sync=false",
				"secret-key=(null)", "session-token=(null)", "credential-path=.kvs/credential",
				"secret-key=*****", "session-token=*****", "stream-name=s1", "streaming-type=offline",
				`stream-tags="tags\,\ team\=\(string\)video\,\ id\=\(string\)42\;"`,
				"secret-key=(null)", "stream-tags=(null)",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
