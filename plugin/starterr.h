/* One error per failure. When start() fails, GstBaseSink and GstBaseSrc
 * post a fallback error of their own (CORE STATE_CHANGE "Failed to start",
 * shown as "state change failed and some element failed to post a proper
 * error message") after the element has posted its error. The elements'
 * post_message drops that fallback when they have reported the failure. */
#ifndef KVSGO_STARTERR_H
#define KVSGO_STARTERR_H

#include <gst/gst.h>

/* Installs the filtering post_message on an element class. */
void kvsgo_filter_start_fallback(gpointer klass);
/* Marks that el's start failed with an error already posted: the base
 * class's fallback error that follows is dropped. */
void kvsgo_start_failed(GstElement *el);

#endif
