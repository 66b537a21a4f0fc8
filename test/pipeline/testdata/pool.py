"""Encodes argv[2] frames of H.264 (in memory), then streams them with
appsrc into argv[1] (a pipeline fragment that starts with the element fed
by appsrc, e.g. "kvssink stream-name=x"), each frame in a buffer of a
pool of at most argv[3] buffers, as fast as the pool gives them back.
Prints "pushed N" and "eos" (or "error <message>") when the stream ends,
or "stalled after N" when no pool buffer came back for 30 s."""
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

Gst.init(None)
frames = int(sys.argv[2])
enc = Gst.parse_launch(
    "videotestsrc num-buffers=%d ! video/x-raw,width=320,height=240,framerate=30/1 ! "
    "x264enc speed-preset=ultrafast key-int-max=30 bframes=0 tune=zerolatency ! h264parse ! "
    "video/x-h264,stream-format=avc,alignment=au ! appsink name=s sync=false" % frames)
sink = enc.get_by_name("s")
enc.set_state(Gst.State.PLAYING)
got = []
caps = None
while True:
    sample = sink.emit("pull-sample")
    if sample is None:
        break
    caps = sample.get_caps()
    b = sample.get_buffer()
    ok, info = b.map(Gst.MapFlags.READ)
    got.append((bytes(info.data), b.pts, b.dts, b.duration, b.get_flags()))
    b.unmap(info)
enc.set_state(Gst.State.NULL)

p = Gst.parse_launch("appsrc name=a format=time ! " + sys.argv[1])
src = p.get_by_name("a")
src.set_property("caps", caps)
pool = Gst.BufferPool.new()
conf = pool.get_config()
Gst.BufferPool.config_set_params(conf, caps, max(len(f[0]) for f in got), 0, int(sys.argv[3]))
pool.set_config(conf)
pool.set_active(True)
p.set_state(Gst.State.PLAYING)
pushed = 0
stalled = False
for data, pts, dts, dur, flags in got:
    start = time.monotonic()
    params = Gst.BufferPoolAcquireParams()
    params.flags = Gst.BufferPoolAcquireFlags.DONTWAIT
    while True:
        ret, buf = pool.acquire_buffer(params)
        if ret == Gst.FlowReturn.OK:
            break
        if time.monotonic() - start > 30:
            stalled = True
            break
        time.sleep(0.001)
    if stalled:
        break
    buf.fill(0, data)
    buf.set_size(len(data))
    buf.pts, buf.dts, buf.duration = pts, dts, dur
    if flags & Gst.BufferFlags.DELTA_UNIT:
        buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
    if src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
        break
    pushed += 1
print("pushed", pushed, flush=True)
if stalled:
    print("stalled after", pushed, flush=True)
    p.set_state(Gst.State.NULL)
    sys.exit(0)
src.emit("end-of-stream")
bus = p.get_bus()
m = bus.timed_pop_filtered(120 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
if m is None:
    print("timeout", flush=True)
elif m.type == Gst.MessageType.EOS:
    print("eos", flush=True)
else:
    print("error", m.parse_error()[0].message, flush=True)
p.set_state(Gst.State.NULL)
