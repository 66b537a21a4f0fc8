/* C side of kvsdecrypt: its pads, with chain and event functions set in C
 * (go-gst v1.4.0's Go pad functions unref buffers twice; see
 * shared/reference/go-gst.md §3.6), and pushing bytes downstream. */
#ifndef KVSGO_DECRYPT_H
#define KVSGO_DECRYPT_H

#include <gst/gst.h>

/* Creates the "sink" and "src" pads from the class templates, sets the
 * sink pad's chain and event functions, adds both to el and returns the src
 * pad (borrowed: el owns it). */
GstPad *kvsgo_decrypt_add_pads(GstElement *el);
/* Pushes a copy of data as one buffer with no timestamps. */
GstFlowReturn kvsgo_decrypt_push(GstPad *src, const guint8 *data, gsize size);
/* gst_pad_event_default, taking ev. */
gboolean kvsgo_decrypt_event_default(GstPad *pad, GstElement *parent, GstEvent *ev);
/* Whether ev is EOS, FLUSH_STOP or another event. */
int kvsgo_event_kind(GstEvent *ev);
enum { KVSGO_EV_OTHER = 0, KVSGO_EV_EOS = 1, KVSGO_EV_FLUSH_STOP = 2 };

#endif
