"""Prerolls a pipeline, seeks it in TIME to argv[2] nanoseconds (argv[3]:
"pipeline", as applications do, or "element": its kvssrc, named k), plays
to EOS. Exit 0 on EOS, 1 on an error or a refused seek."""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

Gst.init(None)
pipeline = Gst.parse_launch(sys.argv[1])
target = int(sys.argv[2])
loop = GLib.MainLoop()
state = {"seeked": False, "rc": 1}


def on_message(_bus, msg):
    if msg.type == Gst.MessageType.ASYNC_DONE and not state["seeked"]:
        state["seeked"] = True
        target_el = pipeline if sys.argv[3] == "pipeline" else pipeline.get_by_name("k")
        ok = target_el.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, target)
        print("seek", ok, flush=True)
        if not ok:
            loop.quit()
            return True
        pipeline.set_state(Gst.State.PLAYING)
    elif msg.type == Gst.MessageType.EOS:
        state["rc"] = 0
        loop.quit()
    elif msg.type == Gst.MessageType.ERROR:
        err, dbg = msg.parse_error()
        print("ERROR:", err.message, dbg, flush=True)
        loop.quit()
    return True


bus = pipeline.get_bus()
bus.add_signal_watch()
bus.connect("message", on_message)
pipeline.set_state(Gst.State.PAUSED)
loop.run()
pipeline.set_state(Gst.State.NULL)
sys.exit(state["rc"])
