/* SPDX-License-Identifier: MIT */
/* The compiled plan: kernel XFRM policies and SAs, plus the named rules they come from. */
#ifndef MCPSEC_PLAN_H
#define MCPSEC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "model.h"

struct mc_alg;
struct mc_buf;

/* A kernel selector, normalised: host bits and port bits outside the masks are zero, so that
 * byte equality is the kernel's identity (net/xfrm/xfrm_policy.c selector_cmp(); doc/kernel-notes.md §1). */
struct mc_sel {
	uint8_t family;
	uint8_t plen_s, plen_d;
	uint8_t proto;
	struct mc_addr saddr, daddr;
	uint16_t sport, sport_mask, dport, dport_mask;
};

/* One kernel policy. */
struct mc_xpolicy {
	enum mc_dir dir;
	struct mc_sel sel;
	uint32_t priority;
	enum mc_action action;  /* PROTECT carries tmpl */
	uint8_t tmpl_proto;     /* MC_PROTO_ESP / MC_PROTO_AH */
	uint32_t tmpl_spi;
	uint32_t tmpl_reqid;
	bool tmpl_optional;     /* inbound "level use": clear traffic passes too (enforce accept, protect) */
	size_t rule;            /* index into mc_plan.rules */
};

/* One manual SA. Keys are copies, wiped by mc_plan_free(). */
struct mc_xsa {
	uint8_t family;
	struct mc_addr saddr, daddr;
	uint32_t spi;
	uint8_t proto;
	uint32_t reqid;
	const struct mc_alg *integrity, *confidentiality;
	uint8_t ikey[64], ekey[32];
	size_t ikey_len, ekey_len;
	size_t rule;
	bool local_unresolved; /* local 'any' not resolved (no kernel access): not installable */
	/* Outbound SAs carry XFRM_SA_XFLAG_OSEQ_MAY_WRAP: without it the kernel stops the SA after
	 * 2^32 - 1 packets. Inbound SAs never carry it (kernel >= 6.10 refuses it there). */
	bool oseq_may_wrap;
	struct mc_lifetime lft; /* 0: no limit */
	/* The send counter: as the kernel dump gives it, or where a replacement SA starts (0: the
	 * kernel's default), so that replacing a running SA never resets its sequence numbers. */
	uint32_t oseq;
};

enum mc_rule_kind { MC_RULE_USER, MC_RULE_BUILTIN, MC_RULE_DEFAULT };

/* A named policy as status and test show it: a user policy, a built-in or a default discard. */
struct mc_rule {
	char *name;
	enum mc_rule_kind kind;
	enum mc_dir dir;
	enum mc_action action;
	uint32_t priority;
	uint32_t reqid;    /* PROTECT: its templates' and SAs' (compile.h) */
	bool clear_passes; /* PROTECT in a phase-in: clear traffic passes (mc_policy_clear_passes) */
	size_t nfrag;      /* kernel policies it became */
	size_t nshadowed;  /* selectors left out because an earlier rule has them exactly */
	char *shadowed_by; /* the first such earlier rule, when nshadowed */
	const struct mc_policy *src; /* NULL for built-ins and defaults */
	char *local_note;  /* "local any resolved to X via route lookup" */
};

struct mc_plan {
	struct mc_rule *rules;
	size_t nrules, caprules;
	struct mc_xpolicy *pols;
	size_t npols, cappols;
	/* Fragments left out of the kernel because an earlier rule has the same selector: never
	 * the first match, but `mcpsec test` lists them among the matching policies, as MCP does. */
	struct mc_xpolicy *shadow;
	size_t nshadow, capshadow;
	struct mc_xsa *sas;
	size_t nsas, capsas;
	enum mc_default def;
	enum mc_on_failure on_failure;
	bool enabled;
	/* IPv4 remote spans the kernel routes through lo: 127.0.0.0/8, and the host's own IPv4
	 * addresses when they are known. Linux applies no IPsec to them (lo has disable_xfrm and
	 * disable_policy; doc/kernel-notes.md §5) unless lo4_xfrm_out / lo4_policy_in say it
	 * does. Only mcpsec test reads them: nothing is installed for them. */
	struct mc_range *lo4;
	size_t nlo4;
	bool lo4_xfrm_out, lo4_policy_in;
	/* mc_eval's index of pols and shadow by remote prefix, made by its first query of
	 * one remote address (lib/eval.c) and freed with the plan: a cache, never read elsewhere. */
	struct mc_evalindex *eval_index;
};

void mc_plan_free(struct mc_plan *p);

/* Text forms (no key bytes ever, unless show_keys). */
void mc_sel_str(const struct mc_sel *s, enum mc_dir dir, struct mc_buf *out);
/* The same in MCP's terms, as its policy list shows it: "tcp local any remote fec0::7 port 20-21"
 * (local and remote by direction; ICMP type and code after both). */
void mc_sel_local_str(const struct mc_sel *s, enum mc_dir dir, struct mc_buf *out);
void mc_plan_render(const struct mc_plan *p, struct mc_buf *out);
void mc_xpolicy_ip_cmd(const struct mc_xpolicy *x, const char *verb, struct mc_buf *out);
void mc_xsa_ip_cmd(const struct mc_xsa *x, const char *verb, bool show_keys, const char *rule_name,
		   struct mc_buf *out);
/* "esp aes-cbc-256 hmac-sha256-128" */
void mc_xsa_algs_str(const struct mc_xsa *x, struct mc_buf *out);

bool mc_sel_eq(const struct mc_sel *a, const struct mc_sel *b);
/* Hash of a policy identity (direction + selector). */
uint64_t mc_sel_hash(enum mc_dir dir, const struct mc_sel *s);

#endif
