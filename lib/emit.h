/* SPDX-License-Identifier: MIT */
/* site.yaml text from the model: what `mirror` and `import` write. Pure; no key bytes ever. */
#ifndef MCPSEC_EMIT_H
#define MCPSEC_EMIT_H

#include "model.h"

struct mc_buf;

/* The `ipsec:` section and the `policies:` key; keys_text may be NULL. */
void mc_emit_header(const struct mc_site *s, const char *keys_text, struct mc_buf *out);
/* s as the text of a '#' comment: control characters escaped (\n, \xHH), so it stays one line. */
void mc_emit_comment(struct mc_buf *out, const char *s);
/* One list item under `policies:`; comment (may be NULL) goes on the name line. */
void mc_emit_policy(const struct mc_policy *p, const char *comment, struct mc_buf *out);
/* A PROTECT policy's `next:` block (nothing without one), its lines starting with indent. */
/* `enforce: PHASE`, one line at indent (a policy's phase-in). */
void mc_emit_enforce(const struct mc_policy *p, const char *indent, struct mc_buf *out);
void mc_emit_next(const struct mc_policy *p, const char *indent, struct mc_buf *out);
/* "fec0::1, 10.0.0.0/24, 10.0.1.1-10.0.1.9" or "any" */
void mc_addrset_str(const struct mc_addrset *a, struct mc_buf *out);

#endif
