/* SPDX-License-Identifier: MIT */
/* MCP policy listings ("Field = Value" blocks, as Security Center shows them) → site.yaml. */
#ifndef MCPSEC_IMPORT_H
#define MCPSEC_IMPORT_H

#include "model.h"

struct mc_buf;
struct mc_diags;

struct mc_import_opts {
	const char *keys_text; /* written as ipsec.keys; NULL: "keys.yaml" */
	enum mc_default def;   /* written as ipsec.default (MCP keeps IPSECDefault apart) */
};

/*
 * Parses text (the contents of file) and, when it has no errors, appends site.yaml to out.
 * Blocks are separated by blank lines, by a new "Policy Name", or by a field that repeats
 * within a block (the seed lists policies back to back). Every problem is reported with its
 * line and column; nothing is written then. Returns the number of policies or -EINVAL.
 */
int mc_import(const char *file, const char *text, const struct mc_import_opts *o, struct mc_buf *out,
	      struct mc_diags *ds);

#endif
