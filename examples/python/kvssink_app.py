#!/usr/bin/env python3
"""kvssink_app: stream a test pattern to Kinesis Video Streams from Python.

Shows what an application embedding kvssink does: set properties (including
iot-certificate from a structure string), react to the stream-error signal
and to the kvs-* bus messages, and shut down cleanly on EOS and on error.

    python3 kvssink_app.py STREAM [--frames N] [--iot-certificate "iot-certificate, endpoint=..., ..."]

Needs PyGObject and GStreamer's introspection data (Debian: python3-gi
gir1.2-gstreamer-1.0). Without --iot-certificate the element takes
credentials from the environment (AWS_ACCESS_KEY_ID, ...). Exit status: 0
after EOS, 1 after an error.

fragment-ack and stream-client-metric carry C pointers that Python cannot
read; every value they carry is also on the bus: kvs-fragment-ack (type,
timecode, fragment-number; ERROR acks come as kvs-stream-error with
error-id) and kvs-metrics (see the README's table of signals and messages).
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stream")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--iot-certificate", help="a GstStructure string")
    args = ap.parse_args()

    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"videotestsrc num-buffers={args.frames} ! video/x-raw,width=320,height=240,framerate=30/1 ! "
        "x264enc key-int-max=30 tune=zerolatency ! h264parse ! kvssink name=sink"
    )
    sink = pipeline.get_by_name("sink")
    sink.set_property("stream-name", args.stream)
    sink.set_property("retention-period", 2)
    if args.iot_certificate:
        iot = Gst.Structure.from_string(args.iot_certificate)[0]
        if iot is None:
            print("not a GstStructure:", args.iot_certificate, file=sys.stderr)
            return 2
        sink.set_property("iot-certificate", iot)

    loop = GLib.MainLoop()
    state = {"rc": 0, "persisted": 0}

    def on_stream_error(_sink, status):
        # The stream has failed: an element error follows on the bus.
        print(f"signal stream-error status=0x{status:08x}", flush=True)

    sink.connect("stream-error", on_stream_error)

    def on_message(_bus, msg):
        t = msg.type
        if t == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s is not None and s.get_name().startswith("kvs-"):
                if s.get_name() == "kvs-fragment-ack" and s.get_string("type") == "PERSISTED":
                    state["persisted"] += 1
                print("message", s.to_string(), flush=True)
        elif t == Gst.MessageType.WARNING:
            err, _ = msg.parse_warning()
            print("warning", err.message, flush=True)
        elif t == Gst.MessageType.ERROR:
            err, _ = msg.parse_error()
            print(f"error from {msg.src.get_name()}: {err.message}", flush=True)
            state["rc"] = 1
            loop.quit()
        elif t == Gst.MessageType.EOS:
            # kvssink posts EOS once the last fragment is acknowledged.
            print(f"eos: {state['persisted']} fragments persisted", flush=True)
            loop.quit()
        return True

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        print("could not start", flush=True)  # the error is on the bus
    try:
        loop.run()
    except KeyboardInterrupt:
        state["rc"] = 1
    pipeline.set_state(Gst.State.NULL)
    bus.remove_signal_watch()
    return state["rc"]


if __name__ == "__main__":
    sys.exit(main())
