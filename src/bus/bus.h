/* bus.h: in-process publish/subscribe of normalized events, with per-stream sequence numbers
 * and a replay window.
 *
 * An event (bus_event) is built once, serialized once and reference-counted: every stream entry
 * and every subscriber that keeps it holds a reference, never a copy. The serialized text has no
 * sequence number, because the same event has a different one in each stream; a transport writes
 * `{"seq":N,` followed by the text after its opening brace (bus_entry_format does exactly that).
 *
 * Streams: the global stream sees every event (supervisor view, outbox, store). An agent stream
 * (key = the agent's extension) sees only the events targeted at that agent, plus the events of
 * the queues it watches, each with gap-free sequence numbers of its own. Agent streams exist
 * while someone holds them open; an event published while nobody holds an agent's stream is not
 * recorded for that agent (a client always starts from a snapshot, then follows the stream).
 *
 * Window: each stream keeps its last window_events entries no older than window_ms. bus_replay()
 * hands out every entry after a sequence number in order exactly once, or answers BUS_GAP when
 * entries after that number have already left the window (the client must resync from a
 * snapshot). Everything runs on the loop thread; only the event reference count is atomic, so a
 * worker thread may hold and release references.
 */
#ifndef SB_BUS_BUS_H
#define SB_BUS_BUS_H

#include "core/buf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Returned by bus_replay() when the requested sequence is no longer (or not yet) in the window. */
#define BUS_GAP 1

typedef struct bus bus;
typedef struct bus_stream bus_stream;
typedef struct bus_sub bus_sub;
typedef struct bus_event bus_event;

typedef struct bus_config {
    size_t window_events; /* entries kept per stream; 0 = 10,000 */
    int64_t window_ms;    /* age limit of kept entries; 0 = 10 minutes */
    /* Clock in milliseconds (UNIX epoch); NULL = CLOCK_REALTIME. Tests inject a fake one. */
    int64_t (*now_ms)(void *ud);
    void *clock_ud;
} bus_config;

/* One event as a stream holds it: the stream's sequence number and the shared event. */
typedef struct bus_entry {
    uint64_t seq;
    int64_t time_ms; /* when it entered the stream */
    bus_event *ev;   /* borrowed: bus_event_ref() it to keep it beyond the callback */
} bus_entry;

/* Delivery callback (live or replay). Borrows entry for the duration of the call. It may call
 * bus_unsubscribe() on any subscription, including its own. */
typedef void (*bus_deliver_cb)(void *ud, const bus_entry *entry);

/* ---- events ---- */

/* Builds an event from obj (takes ownership; must be a JSON object with a string "type").
 * obj is serialized now (compact, keys in insertion order) and released: the event keeps only
 * the text, since replay windows hold many events. Returns owned (refcount 1, release with
 * bus_event_unref()), or NULL (not an object, no memory). */
bus_event *bus_event_new(json_t *obj);
/* Adds an agent (extension) whose stream receives the event; before publishing only.
 * 0, SB_ENOMEM or SB_EINVAL (already published). Duplicates are ignored. */
int bus_event_add_agent(bus_event *ev, const char *agent);
/* Tags the event with a queue: agent streams watching that queue receive it. Before publishing. */
int bus_event_set_queue(bus_event *ev, const char *queue);
bus_event *bus_event_ref(bus_event *ev);
void bus_event_unref(bus_event *ev);
/* The serialized JSON (no seq), borrowed while a reference is held. */
const char *bus_event_text(const bus_event *ev, size_t *len);
/* Parses the text back into JSON for consumers that need fields. Returns owned (json_decref)
 * or NULL when out of memory. */
json_t *bus_event_parse(const bus_event *ev);
const char *bus_event_type(const bus_event *ev);
size_t bus_event_agent_count(const bus_event *ev);
const char *bus_event_agent(const bus_event *ev, size_t i);
const char *bus_event_queue(const bus_event *ev); /* NULL when untagged */
/* Current reference count (tests and metrics). */
unsigned bus_event_refcount(const bus_event *ev);

/* Appends the event as delivered on a stream: {"seq":N,...rest of the text}. 0 or an sb_buf
 * error (the buffer is unchanged on error). */
int bus_entry_format(const bus_entry *entry, sb_buf *out);

/* ---- the bus ---- */

/* Returns owned (free with bus_free()), or NULL when out of memory. cfg may be NULL. */
bus *bus_new(const bus_config *cfg);
/* Frees streams, entries and subscriptions (callbacks are not called). Outstanding event
 * references held by others stay valid. */
void bus_free(bus *b);

/* Publishes ev to the global stream, to each target agent's open stream, and to the agent
 * streams watching its queue (each stream at most once). Borrows ev (each stream entry takes its
 * own reference). Live subscribers are called before this returns. *seq_out (may be NULL) gets
 * the global sequence number. 0 or SB_ENOMEM (then no stream received the event). */
int bus_publish(bus *b, bus_event *ev, uint64_t *seq_out);

/* The global stream; borrowed, lives as long as the bus. */
bus_stream *bus_global(bus *b);
/* Opens (creating on first use) the stream of one agent; every open needs one bus_stream_close().
 * Returns 0 with *out borrowed until that close, or SB_ENOMEM / SB_EINVAL (empty agent). */
int bus_stream_open(bus *b, const char *agent, bus_stream **out);
/* Releases one open; the stream and its window are freed with the last close. Closing the global
 * stream does nothing. */
void bus_stream_close(bus_stream *s);
/* Makes an agent stream also receive the events tagged with queue. 0, SB_ENOMEM, SB_EINVAL (global
 * stream). Watching twice is harmless. */
int bus_stream_watch_queue(bus_stream *s, const char *queue);
/* Last sequence number handed out on the stream (0 before the first event). */
uint64_t bus_stream_last_seq(const bus_stream *s);
/* Oldest sequence number still in the window (last + 1 when the window is empty). */
uint64_t bus_stream_first_seq(bus_stream *s);
/* Number of entries in the window. */
size_t bus_stream_window_count(bus_stream *s);
/* The agent of a stream, or NULL for the global stream. */
const char *bus_stream_agent(const bus_stream *s);

/* Calls cb once for every entry with seq > after_seq, in order, synchronously. Returns 0, or
 * BUS_GAP without calling cb when after_seq is older than the window (entries were dropped) or
 * newer than the last sequence (the bus restarted): the caller must resync from a snapshot. */
int bus_replay(bus_stream *s, uint64_t after_seq, bus_deliver_cb cb, void *ud);

/* Subscribes to live entries. Returns owned (release with bus_unsubscribe()) or NULL. The
 * subscription holds the stream open. */
bus_sub *bus_subscribe(bus_stream *s, bus_deliver_cb cb, void *ud);
/* Replays everything after after_seq, then subscribes; the two never overlap or leave a hole.
 * Returns 0 with *out owned, BUS_GAP (nothing delivered, *out NULL) or SB_ENOMEM. *out is set
 * before the first callback, so a callback may unsubscribe it (then *out is NULL on return). */
int bus_subscribe_from(bus_stream *s, uint64_t after_seq, bus_deliver_cb cb, void *ud,
                       bus_sub **out);
/* Ends a subscription; no callback for it runs after this returns (safe inside a callback). */
void bus_unsubscribe(bus_sub *sub);
/* Drops entries that aged out of every stream's window (call from a timer; publishing and
 * replaying also expire the streams they touch). */
void bus_expire(bus *b);

#endif
