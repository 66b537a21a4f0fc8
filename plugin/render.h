/* kvssink's render: GstBaseSink's render vfunc in C hands each buffer to a
 * bounded queue and returns; one Go goroutine per started element drains
 * the queue in batches into the core. The streaming thread never calls Go
 * per buffer, and the Go side wakes once per batch, not once per frame.
 *
 * Threads and locks: q->lock guards every field below; it is never held
 * while calling Go or GstBaseSink. render (streaming thread) pushes; the
 * drainer (a Go goroutine) takes and releases; unlock, unlock_stop, start
 * and stop (application threads) change the flags. Every wait is on
 * q->cond and ends on unlock, stop or progress.
 *
 * Wake-ups: the drainer waits on an eventfd that the Go runtime polls
 * (edge-triggered: every write wakes it; the counter is never read). It
 * marks itself idle (under the lock) when it finds the queue empty; the
 * push that finds it idle writes to the eventfd. So a busy drainer costs no
 * system call per buffer, and an idle one one write. */
#ifndef KVSGO_RENDER_H
#define KVSGO_RENDER_H

#include <gst/gst.h>
#include <gst/base/gstbasesink.h>

/* Buffers the queue holds at most (the drainer keeps up within a few). */
#define KVSGO_QUEUE_LEN 64
/* In batch mode (kvsgo_render_set_batch) an idle drainer is woken once
 * this many buffers are queued, not at every one. */
#define KVSGO_WAKE_BATCH 16

/* A queued buffer: a reference and a read mapping, released by the
 * drainer once the core has copied the data. buf NULL: the end of the
 * track (kvsgo_render_push_end). */
typedef struct {
  GstBuffer *buf;
  GstMapInfo map;
  guint64 pts, dts, duration;
  guint flags;
  const guint8 *data;
  gsize size;
  gint64 entered; /* g_get_monotonic_time() at render entry, µs */
} KvsgoQueued;

/* The end of the first pad's track (A/V), queued after its buffers: the
 * drainer ends the track in order. FALSE when it could not be queued
 * (stopped, failed, or unlocked while the queue was full). */
gboolean kvsgo_render_push_end(GstElement *el);

/* From ClassInit, after go-gst installed its vfuncs. */
void kvsgo_render_class_init(gpointer klass, guint skip_flags);
/* From InstanceInit. */
void kvsgo_render_instance_init(GstElement *el);

/* A non-blocking eventfd for the wake-ups, or -1 (errno). */
int kvsgo_render_eventfd(void);
/* At start: buffers are accepted from now on; wake_fd (an eventfd) is
 * written to wake an idle drainer. At stop: refused (FLUSHING) from now on. */
void kvsgo_render_open(GstElement *el, int wake_fd, gboolean av);
void kvsgo_render_close(GstElement *el);

/* Moves up to max queued buffers to out (oldest first) and returns how
 * many; 0 marks the drainer idle (the next push wakes it), -1 means closed
 * and empty. *now is g_get_monotonic_time() at the take. */
int kvsgo_render_take(GstElement *el, KvsgoQueued *out, int max, gint64 *now);
/* The drainer's idle mark, for an atomic read without the lock: TRUE from
 * a take that found the queue empty until the next push, which writes the
 * eventfd after clearing it. */
gint *kvsgo_render_idle_flag(GstElement *el);
/* Unmaps and unrefs n taken buffers; wakes a render waiting for room and a
 * barrier waiting for the queue to empty. */
void kvsgo_render_release(GstElement *el, KvsgoQueued *taken, int n);
/* Batch mode, for input that runs ahead of real time: a push wakes an idle
 * drainer only once KVSGO_WAKE_BATCH buffers are queued (an end-of-track
 * mark, a barrier and stop still wake it at once), and the drainer looks
 * at the queue on its own timer. Leaving it returns how many buffers are
 * queued: when some are, the drainer must take them, as no push will wake
 * it for them. */
int kvsgo_render_set_batch(GstElement *el, gboolean batch);
/* In batch mode release leaves the buffers the core is done with for the
 * next render to unmap and unref, on the streaming thread; this frees
 * those no render took (the drainer calls it when idle for batchWait, so
 * that upstream's buffer pool never waits long for them). Leaving batch
 * mode and stop free them too. */
void kvsgo_render_free_done(GstElement *el);
/* A failed frame: every render from now on (until stop) returns flow. */
void kvsgo_render_set_flow(GstElement *el, GstFlowReturn flow);

/* Waits until every buffer pushed so far has been released (the core has
 * them), so that caps, events and the end of stream stay in order with the
 * buffers. FALSE when a flush, stop or failure comes first; a pause waits
 * for PLAYING, as render does. Called with GstBaseSink's PREROLL_LOCK held
 * (set_caps, event). */
gboolean kvsgo_render_barrier(GstElement *el);

/* unlock and unlock_stop, chained from the element's own. */
void kvsgo_render_unlock(GstElement *el, gboolean unlocked);

#endif
