/* factory.h: builds a sink from its [sink NAME] section of switchboard.conf (docs/sinks.md lists
 * every key). main.c calls sink_from_section() for each section and hands the result to
 * outbox_add_sink(). Kinds handled here: webhook, s3, sqs, lambda, nats (src/sinks/nats.c);
 * SB_ENOTFOUND is kept for a kind built by another module.
 */
#ifndef SB_SINKS_FACTORY_H
#define SB_SINKS_FACTORY_H

#include "core/config.h"
#include "outbox/outbox.h"
#include "net/httpc.h"

#include <uv.h>

typedef struct sink_built {
    const outbox_sink_ops *ops;
    void *impl;              /* owned: outbox_add_sink takes it, or ops->free */
    outbox_sink_config ocfg; /* name borrowed from the section (valid while cfg lives) */
} sink_built;

/* Builds the sink of section sec (kind "sink"); cfg gives the file name for messages. Borrows
 * all arguments; loop and http must outlive the sink. Returns 0 and *out, SB_ENOTFOUND (a kind
 * this module does not build; *out untouched, err names it), or SB_ECONFIG with one line
 * "FILE:LINE: [sink NAME] key: problem" in err (never a secret), or SB_ENOMEM. */
int sink_from_section(uv_loop_t *loop, httpc *http, const sb_config *cfg,
                      const sb_config_section *sec, sink_built *out, char *err, size_t errsize);

/* Builds every [sink NAME] section of cfg that this module handles and adds it to ob (borrowed;
 * ob == NULL only checks: each sink is built and freed again, for `config check`; run the loop
 * afterwards). Sections of kinds built elsewhere (none today) are counted in *nother (may be NULL).
 * Returns 0, or the first error with its message in err (sinks added before it stay added). */
int sink_add_all(uv_loop_t *loop, httpc *http, const sb_config *cfg, outbox *ob, size_t *nother,
                 char *err, size_t errsize);

#endif
