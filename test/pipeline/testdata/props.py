"""Sets kvssrc's secret and structure properties and prints them back, one
per line: secret-key, session-token, role-external-id, iot-certificate."""
import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

Gst.init(None)
e = Gst.ElementFactory.make("kvssrc", None)
e.set_property("secret-key", "SECRET-KEY-VALUE")
e.set_property("session-token", "SESSION-TOKEN-VALUE")
e.set_property("role-external-id", "EXTERNAL-ID-VALUE")
iot = Gst.Structure.from_string("iot-certificate, endpoint=x.example, cert-path=c.pem, key-path=k.pem, role-aliases=r")[0]
e.set_property("iot-certificate", iot)
for p in ("secret-key", "session-token", "role-external-id"):
    print(e.get_property(p))
print(e.get_property("iot-certificate").to_string())
print(e.get_name())
