"""Starts argv[1] (a pipeline with a kvssrc named k) in PAUSED and prints
the answer of k's LATENCY query: ok live min max."""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

Gst.init(None)
p = Gst.parse_launch(sys.argv[1])
p.set_state(Gst.State.PAUSED)
p.get_state(10 * Gst.SECOND)
q = Gst.Query.new_latency()
ok = p.get_by_name("k").get_static_pad("src").query(q)
live, lo, hi = q.parse_latency()
print(ok, live, lo, hi, flush=True)
p.set_state(Gst.State.NULL)
