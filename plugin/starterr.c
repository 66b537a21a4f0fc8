/* See starterr.h. */
#include "starterr.h"

static GQuark start_failed_quark(void) {
  static GQuark q;
  if (!q) q = g_quark_from_static_string("kvsgo-start-failed");
  return q;
}

static gboolean filter_post_message(GstElement *el, GstMessage *msg) {
  GstElementClass *parent = GST_ELEMENT_CLASS(g_type_class_peek_parent(G_OBJECT_GET_CLASS(el)));
  /* The class of el may be a subclass of the one that installed this:
   * find the first ancestor with another post_message. */
  while (parent && parent->post_message == filter_post_message)
    parent = GST_ELEMENT_CLASS(g_type_class_peek_parent(parent));
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR && GST_MESSAGE_SRC(msg) == GST_OBJECT(el) &&
      g_object_get_qdata(G_OBJECT(el), start_failed_quark())) {
    GError *err = NULL;
    gst_message_parse_error(msg, &err, NULL);
    gboolean fallback = err && err->domain == GST_CORE_ERROR && err->code == GST_CORE_ERROR_STATE_CHANGE;
    g_clear_error(&err);
    if (fallback) {
      g_object_set_qdata(G_OBJECT(el), start_failed_quark(), NULL);
      gst_message_unref(msg);
      return TRUE;
    }
  }
  return parent->post_message(el, msg);
}

void kvsgo_filter_start_fallback(gpointer klass) {
  GST_ELEMENT_CLASS(klass)->post_message = filter_post_message;
}

void kvsgo_start_failed(GstElement *el) {
  g_object_set_qdata(G_OBJECT(el), start_failed_quark(), GINT_TO_POINTER(1));
}
