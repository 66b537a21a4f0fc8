/* kvsdecrypt's pads; see decrypt.h. */
#include "decrypt.h"
#include "_cgo_export.h" /* kvsgoDecryptChain, kvsgoDecryptEvent */

static GstFlowReturn decrypt_chain(GstPad *pad, GstObject *parent, GstBuffer *buf) {
  GstFlowReturn ret = kvsgoDecryptChain(GST_ELEMENT(parent), buf);
  gst_buffer_unref(buf);
  return ret;
}

static gboolean decrypt_event(GstPad *pad, GstObject *parent, GstEvent *ev) {
  /* Go decides; it either forwards ev (taking it) or drops it. */
  return kvsgoDecryptEvent(pad, GST_ELEMENT(parent), ev);
}

GstPad *kvsgo_decrypt_add_pads(GstElement *el) {
  GstElementClass *klass = GST_ELEMENT_GET_CLASS(el);
  GstPad *sink = gst_pad_new_from_template(gst_element_class_get_pad_template(klass, "sink"), "sink");
  GstPad *src = gst_pad_new_from_template(gst_element_class_get_pad_template(klass, "src"), "src");
  gst_pad_set_chain_function(sink, decrypt_chain);
  gst_pad_set_event_function(sink, decrypt_event);
  /* Caps queries and the like pass straight through: the output is
   * Matroska like the input. */
  GST_PAD_SET_PROXY_CAPS(sink);
  GST_PAD_SET_PROXY_CAPS(src);
  gst_element_add_pad(el, sink);
  gst_element_add_pad(el, src);
  return src;
}

GstFlowReturn kvsgo_decrypt_push(GstPad *src, const guint8 *data, gsize size) {
  GstBuffer *b = gst_buffer_new_memdup(data, size);
  return gst_pad_push(src, b);
}


gboolean kvsgo_decrypt_event_default(GstPad *pad, GstElement *parent, GstEvent *ev) {
  return gst_pad_event_default(pad, GST_OBJECT(parent), ev);
}

int kvsgo_event_kind(GstEvent *ev) {
  switch (GST_EVENT_TYPE(ev)) {
  case GST_EVENT_EOS: return KVSGO_EV_EOS;
  case GST_EVENT_FLUSH_STOP: return KVSGO_EV_FLUSH_STOP;
  default: return KVSGO_EV_OTHER;
  }
}
