/* SPDX-License-Identifier: MIT */
/* Rollover steps as text edits of site.yaml (see rekey.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "emit.h"
#include "model.h"
#include "rekey.h"
#include "util.h"

enum mc_rekey_step mc_rekey_step_of(const struct mc_policy *p)
{
	if (!p->next.given)
		return MC_REKEY_ACCEPT;
	return p->next.phase == MC_PHASE_ACCEPT ? MC_REKEY_SWITCH : MC_REKEY_RETIRE;
}

const char *mc_rekey_step_str(enum mc_rekey_step st)
{
	static const char *names[] = { "accept", "switch", "retire" };
	return names[st];
}

const char *mc_rekey_phase_of(const struct mc_policy *p)
{
	return p->next.given ? mc_phase_str(p->next.phase) : "none";
}

/* One replacement: [from, to) of the text becomes text (owned). */
struct edit {
	size_t from, to;
	char *text;
};

/* Byte offsets of each line's start (lines[1] is line 1); lines[n + 1] is the text's end. */
struct lines {
	size_t *start;
	size_t n, len;
	const char *text;
};

static void lines_index(const char *text, struct lines *ret)
{
	size_t cap = 64;

	ret->text = text;
	ret->len = strlen(text);
	ret->start = mc_calloc(cap, sizeof(size_t));
	ret->n = 0;
	ret->start[1] = 0;
	for (size_t i = 0, line = 1;; i++) {
		if (i == ret->len || text[i] == '\n') {
			ret->n = line;
			if (line + 2 >= cap) {
				cap *= 2;
				ret->start = realloc(ret->start, cap * sizeof(size_t));
				if (!ret->start)
					abort();
			}
			ret->start[line + 1] = i == ret->len ? ret->len : i + 1;
			if (i == ret->len)
				break;
			line++;
		}
	}
}

/* The offset of (line, col), libyaml's 1-based marks, columns in characters (UTF-8 aware). A line
 * past the end is the text's end. */
static size_t offset_of(const struct lines *l, int line, int col)
{
	if (line < 1)
		return 0;
	if ((size_t)line > l->n)
		return l->len;
	size_t off = l->start[line];
	for (int c = 1; c < col && off < l->len && l->text[off] != '\n'; c++) {
		off++;
		while (off < l->len && ((unsigned char)l->text[off] & 0xc0) == 0x80)
			off++;
	}
	return off;
}

static void edit_add(struct edit **v, size_t *n, size_t *cap, size_t from, size_t to, char *text)
{
	*MC_PUSH(v, n, cap) = (struct edit){ from, to, text };
}

static int cmp_edit(const void *a, const void *b)
{
	const struct edit *x = a, *y = b;
	return x->from < y->from ? -1 : x->from > y->from;
}

/* Whether the line holds only blanks before column col. */
static bool starts_line(const struct lines *l, int line, int col)
{
	size_t at = offset_of(l, line, col);
	for (size_t i = l->start[line]; i < at; i++)
		if (l->text[i] != ' ' && l->text[i] != '\t')
			return false;
	return true;
}

/* The spi as the file wrote it: 0x-hex stays hex. */
static char *spi_text(const struct lines *l, const struct mc_span *old, uint32_t spi)
{
	size_t at = offset_of(l, old->line, old->col);
	const char *s = l->text + at;
	if (*s == '"' || *s == '\'')
		s++;
	return s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? mc_asprintf("0x%x", spi) : mc_asprintf("%u", spi);
}

/* Editing is for block-style policies only (one key per line): otherwise an error naming what. */
static int block_only(const struct mc_policy *p, const char *what, struct mc_diags *ds)
{
	if (p->block_style && p->span.line)
		return 0;
	mc_err(ds, p->loc, "policy '%s' is written as a flow mapping ({ ... }); %s edits block-style "
	       "policies only: write it one key per line", p->name, what);
	return -EINVAL;
}

/* Adds lines at the end of policy p, at its keys' indentation: what emit writes for q. */
static void append_to_policy(const struct lines *l, const struct mc_policy *p, const struct mc_policy *q,
			     void (*emit)(const struct mc_policy *, const char *, struct mc_buf *), struct edit **v,
			     size_t *n, size_t *cap)
{
	char *indent = mc_asprintf("%*s", p->span.col - 1, "");
	struct mc_buf b = { 0 };
	size_t at = offset_of(l, p->span.end_line + 1, 1);

	if (at == l->len && l->len && l->text[l->len - 1] != '\n')
		mc_buf_puts(&b, "\n");
	emit(q, indent, &b);
	free(indent);
	edit_add(v, n, cap, at, at, mc_strdup(mc_buf_str(&b)));
	mc_buf_free(&b);
}

static int edit_policy(const struct lines *l, const struct mc_policy *p, enum mc_rekey_step step,
		       const struct mc_rekey_fresh *fresh, struct edit **v, size_t *n, size_t *cap, struct mc_diags *ds)
{
	if (block_only(p, "rekey", ds) < 0)
		return -EINVAL;
	if (step == MC_REKEY_ACCEPT) {
		struct mc_policy q = *p; /* shallow: only next is set, for the emitter */
		q.next = (struct mc_next){ .given = true, .phase = MC_PHASE_ACCEPT, .spi = fresh->spi,
					   .integrity_key = (char *)fresh->integrity_key,
					   .confidentiality_key = (char *)fresh->confidentiality_key };
		append_to_policy(l, p, &q, mc_emit_next, v, n, cap);
		return 0;
	}
	if (step == MC_REKEY_SWITCH) {
		const struct mc_span *ph = &p->next.phase_span;
		edit_add(v, n, cap, offset_of(l, ph->line, ph->col), offset_of(l, ph->end_line, ph->end_col),
			 mc_strdup("switch"));
		return 0;
	}
	/* retire: next's spi and keys become the policy's own; the next block goes. */
	const struct mc_next *x = &p->next;
	if (!starts_line(l, x->key_span.line, x->key_span.col) || x->value_span.end_line < x->key_span.line) {
		mc_err(ds, x->loc, "policy '%s': 'next' does not start a line of its own; rekey cannot remove it "
		       "(write it as a block under the policy)", p->name);
		return -EINVAL;
	}
	edit_add(v, n, cap, offset_of(l, p->spi_span.line, p->spi_span.col),
		 offset_of(l, p->spi_span.end_line, p->spi_span.end_col), spi_text(l, &p->spi_span, x->spi));
	if (x->integrity_key && p->ikey_span.line)
		edit_add(v, n, cap, offset_of(l, p->ikey_span.line, p->ikey_span.col),
			 offset_of(l, p->ikey_span.end_line, p->ikey_span.end_col), mc_strdup(x->integrity_key));
	if (x->confidentiality_key && p->ekey_span.line)
		edit_add(v, n, cap, offset_of(l, p->ekey_span.line, p->ekey_span.col),
			 offset_of(l, p->ekey_span.end_line, p->ekey_span.end_col), mc_strdup(x->confidentiality_key));
	edit_add(v, n, cap, l->start[x->key_span.line], offset_of(l, x->value_span.end_line + 1, 1), mc_strdup(""));
	return 0;
}

bool mc_enforce_step(enum mc_enforce e, bool in, enum mc_enforce *ret)
{
	static const enum mc_enforce order[] = { MC_ENFORCE_ACCEPT, MC_ENFORCE_PROTECT, MC_ENFORCE_REQUIRE };
	int r = mc_enforce_rank(e) + (in ? 1 : -1);

	if (r < 0 || r > 2)
		return false;
	*ret = order[r];
	return true;
}

static int edit_enforce(const struct lines *l, const struct mc_policy *p, enum mc_enforce to, struct edit **v,
			size_t *n, size_t *cap, struct mc_diags *ds)
{
	if (block_only(p, "phase-in", ds) < 0)
		return -EINVAL;
	if (p->enforce_given && to != MC_ENFORCE_REQUIRE) {
		const struct mc_span *sp = &p->enforce_span;
		edit_add(v, n, cap, offset_of(l, sp->line, sp->col), offset_of(l, sp->end_line, sp->end_col),
			 mc_strdup(mc_enforce_str(to)));
		return 0;
	}
	if (p->enforce_given) { /* require is the default: the line goes */
		const struct mc_span *k = &p->enforce_key_span;
		if (!starts_line(l, k->line, k->col) || p->enforce_span.end_line != k->line) {
			mc_err(ds, p->enforce_loc, "policy '%s': 'enforce' does not stand on a line of its own; phase-in "
			       "cannot remove it (write it as 'enforce: VALUE' on its own line)", p->name);
			return -EINVAL;
		}
		edit_add(v, n, cap, l->start[k->line], offset_of(l, k->line + 1, 1), mc_strdup(""));
		return 0;
	}
	struct mc_policy q = *p; /* shallow: only enforce is set, for the emitter */
	q.enforce = to;
	append_to_policy(l, p, &q, mc_emit_enforce, v, n, cap);
	return 0;
}

/* Applies the sorted, non-overlapping edits e[0..ne) to text into out. */
static int apply_edits(const char *text, struct edit *e, size_t ne, int r, struct mc_buf *out, struct mc_diags *ds)
{
	if (ne)
		qsort(e, ne, sizeof(*e), cmp_edit);
	for (size_t i = 1; i < ne && r == 0; i++)
		if (e[i].from < e[i - 1].to) {
			mc_err(ds, mc_loc_file(NULL), "rekey: two edits overlap (policies share lines?)");
			r = -EINVAL;
		}
	size_t at = 0;
	for (size_t i = 0; i < ne && r == 0; i++) {
		mc_buf_printf(out, "%.*s%s", (int)(e[i].from - at), text + at, e[i].text);
		at = e[i].to;
	}
	if (r == 0)
		mc_buf_puts(out, text + at);
	for (size_t i = 0; i < ne; i++)
		free(e[i].text);
	free(e);
	return r;
}

int mc_phase_edit(const char *text, const struct mc_policy *const *pol, size_t n, enum mc_enforce to,
		  struct mc_buf *out, struct mc_diags *ds)
{
	struct lines l;
	struct edit *e = NULL;
	size_t ne = 0, cap = 0;
	int r = 0;

	lines_index(text, &l);
	for (size_t i = 0; i < n; i++)
		if (edit_enforce(&l, pol[i], to, &e, &ne, &cap, ds) < 0)
			r = -EINVAL;
	r = apply_edits(text, e, ne, r, out, ds);
	free(l.start);
	return r;
}

int mc_rekey_edit(const char *text, const struct mc_policy *const *pol, size_t n, enum mc_rekey_step step,
		  const struct mc_rekey_fresh *fresh, struct mc_buf *out, struct mc_diags *ds)
{
	struct lines l;
	struct edit *e = NULL;
	size_t ne = 0, cap = 0;
	int r = 0;

	lines_index(text, &l);
	for (size_t i = 0; i < n; i++)
		if (edit_policy(&l, pol[i], step, fresh ? &fresh[i] : NULL, &e, &ne, &cap, ds) < 0)
			r = -EINVAL;
	r = apply_edits(text, e, ne, r, out, ds);
	free(l.start);
	return r;
}

char *mc_rekey_key_name(const char *old, int (*taken)(const char *name, void *ctx), void *ctx)
{
	size_t len = strlen(old), base = len;
	unsigned gen = 1;

	/* "-r<digits>" at the end: the generation so far. */
	size_t i = len;
	while (i > 0 && isdigit((unsigned char)old[i - 1]))
		i--;
	if (i < len && i >= 2 && old[i - 1] == 'r' && old[i - 2] == '-' && len - i < 9) {
		base = i - 2;
		gen = (unsigned)strtoul(old + i, NULL, 10);
	}
	for (unsigned k = gen + 1;; k++) {
		char *name = mc_asprintf("%.*s-r%u", (int)(base > 56 ? 56 : base), old, k);
		if (!taken(name, ctx))
			return name;
		free(name);
	}
}
