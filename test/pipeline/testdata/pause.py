"""Runs argv[1] (a pipeline with an element named i upstream of a kvssink
named k with metrics-interval set), holds the streaming thread for
argv[3] seconds after each of the buffer counts in argv[2] (comma-separated)
has passed i, and prints for each pause "pause N frames M": M is the
largest frames count of the kvs-metrics messages posted during it. Then the
stream runs to its end; "eos" or "error <message>" is printed last."""
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

Gst.init(None)
p = Gst.parse_launch(sys.argv[1])
pauses = [int(n) for n in sys.argv[2].split(",")]
hold = float(sys.argv[3])
lock = threading.Lock()
state = {"passed": 0, "pausing": None, "seen": {}}


def probe(pad, info):
    with lock:
        n = state["passed"]
        state["passed"] = n + 1
    if n in pauses:
        with lock:
            state["pausing"] = n
            state["seen"][n] = 0
        time.sleep(hold)
        with lock:
            state["pausing"] = None
    return Gst.PadProbeReturn.OK


# The probe sits on i's sink pad: it runs before buffer N+1 goes on, after
# buffer N went downstream.
p.get_by_name("i").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)
bus = p.get_bus()
p.set_state(Gst.State.PLAYING)
end = None
deadline = time.monotonic() + 120
while end is None and time.monotonic() < deadline:
    m = bus.timed_pop(50 * Gst.MSECOND)
    if m is None:
        continue
    if m.type == Gst.MessageType.EOS:
        end = "eos"
    elif m.type == Gst.MessageType.ERROR:
        end = "error " + m.parse_error()[0].message
    elif m.type == Gst.MessageType.ELEMENT and m.get_structure().get_name() == "kvs-metrics":
        ok, frames = m.get_structure().get_uint64("frames")
        with lock:
            n = state["pausing"]
            if n is not None and ok:
                state["seen"][n] = max(state["seen"][n], frames)
p.set_state(Gst.State.NULL)
for n in pauses:
    print("pause", n, "frames", state["seen"].get(n, -1), flush=True)
print(end or "timeout", flush=True)
