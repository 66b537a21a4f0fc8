package inspect

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// credHost sets the credential properties kvsgo adds and reads them back.
const credHost = showHeader + `int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  GstElement *e = gst_element_factory_make(argv[1], NULL);
  if (!e) { g_printerr("no element %s\n", argv[1]); return 2; }
  show(e, "role-arn"); show(e, "role-external-id"); show(e, "role-duration");
  g_object_set(e, "role-arn", "arn:aws:iam::123456789012:role/R", "role-session-name", "cam1",
               "role-external-id", "hunter2-external", "role-duration", 1200, NULL);
  gst_util_set_object_arg(G_OBJECT(e), "iot-certificate",
      "iot-certificate,endpoint=localhost:8443,cert-path=/c.pem,key-path=/k.key,ca-path=/ca.pem,role-aliases=A");
  show(e, "role-arn"); show(e, "role-session-name"); show(e, "role-external-id"); show(e, "role-duration");
  show(e, "iot-certificate");
  gst_object_unref(e);
  gst_deinit();
  return 0;
}
`

// role-external-id reads back as ***** like the other secrets; the role and
// iot-certificate properties round-trip.
func TestCredentialPropertiesReadBack(t *testing.T) {
	dir := testenv.PluginDir(t)
	bin := testenv.BuildGstHost(t, credHost)
	tmp := t.TempDir()
	cmd := exec.Command(bin, "kvssink")
	cmd.Env = append(os.Environ(), "GST_PLUGIN_PATH="+dir, "GST_REGISTRY="+filepath.Join(tmp, "registry.bin"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s := strings.TrimSpace(string(out))
	if strings.Contains(s, "hunter2") {
		t.Fatalf("a secret came back from get_property:\n%s", s)
	}
	want := strings.Join([]string{
		"role-arn=(null)", "role-external-id=(null)", "role-duration=0",
		"role-arn=arn:aws:iam::123456789012:role/R", "role-session-name=cam1", "role-external-id=*****", "role-duration=1200",
	}, "\n")
	if !strings.HasPrefix(s, want) || !strings.Contains(s, "iot-certificate=") || !strings.Contains(s, "role-aliases") {
		t.Fatalf("got:\n%s\nwant it to start with:\n%s", s, want)
	}
}
