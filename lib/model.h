/* SPDX-License-Identifier: MIT */
/* The configuration model: what site.yaml and keys.yaml say, validated, before compiling. */
#ifndef MCPSEC_MODEL_H
#define MCPSEC_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "diag.h"
#include "wire.h"

struct mc_alg;

enum mc_dir { MC_DIR_IN = 0, MC_DIR_OUT = 1 }; /* the kernel's XFRM_POLICY_IN / _OUT */
enum mc_action { MC_BYPASS, MC_DISCARD, MC_PROTECT };

/* ipsec.default, MCP's IPSECDefault. */
enum mc_default { MC_DEF_IPV6_ONLY, MC_DEF_BYPASS, MC_DEF_DENY, MC_DEF_DENY_ALL };

/* ipsec.on-failure: what enable and mcpsecd install when the committed configuration itself
 * cannot be read. lockdown: the built-in bypasses and a discard of everything else. */
enum mc_on_failure { MC_ON_FAILURE_LOCKDOWN, MC_ON_FAILURE_OPEN };

#define MC_PROTO_ANY 0
#define MC_PROTO_ICMP MC_WIRE_ICMP
#define MC_PROTO_TCP 6
#define MC_PROTO_UDP 17
#define MC_PROTO_BIP 49 /* IANA "BNA": MCP's BNA over IP */
#define MC_PROTO_ESP 50
#define MC_PROTO_AH 51
#define MC_PROTO_ICMPV6 MC_WIRE_ICMPV6

/* A set of addresses: any, or merged ranges (from hosts, prefixes, ranges, selector names). */
struct mc_addrset {
	bool any;
	struct mc_range *r;
	size_t n, cap;
	struct mc_loc loc;
	/* The selector name the set was written as, when it is exactly one name (borrowed from the
	 * site's selectors): mirror and import write the name back, not the addresses. */
	const char *name;
};

struct mc_portrange {
	uint16_t lo, hi;
};

/* A set of 16-bit values (ports): any, or merged ranges. */
struct mc_portset {
	bool any;
	struct mc_portrange *r;
	size_t n, cap;
	struct mc_loc loc;
};

/* icmp: any | TYPE | TYPE-TYPE | TYPE/CODE | TYPE/CODE-CODE */
struct mc_icmpspec {
	bool any;
	uint8_t type_lo, type_hi, code_lo, code_hi;
	struct mc_loc loc;
};

struct mc_key {
	char *name;
	char *type; /* sha1 | sha256 | sha512 | aes | tdes */
	uint8_t *bytes;
	size_t len;
	struct mc_loc loc;
};

/* Where rekey edits a policy's text: a node's first character and the one after its last
 * (1-based lines and columns, as libyaml marks them); line 0 when the node is absent. */
struct mc_span {
	int line, col, end_line, end_col;
};

/* SA lifetimes (lifetime: of a PROTECT policy): 0 is no limit, the default (manual SAs live
 * forever). A soft limit makes the kernel report EXPIRE (mcpsecd logs rekey-due); a hard one
 * removes the SA. */
struct mc_lifetime {
	uint64_t soft_bytes, hard_bytes, soft_packets, hard_packets, soft_secs, hard_secs;
};

/* The limits as a table, [time, bytes, packets][soft, hard], for what writes them out. */
static inline void mc_lifetime_table(const struct mc_lifetime *l, uint64_t v[3][2])
{
	v[0][0] = l->soft_secs;
	v[0][1] = l->hard_secs;
	v[1][0] = l->soft_bytes;
	v[1][1] = l->hard_bytes;
	v[2][0] = l->soft_packets;
	v[2][1] = l->hard_packets;
}

static inline bool mc_lifetime_set(const struct mc_lifetime *l)
{
	return l->soft_bytes || l->hard_bytes || l->soft_packets || l->hard_packets || l->soft_secs || l->hard_secs;
}

/* Key rollover, make before break: the phases of a PROTECT policy's `next:` SA. Retiring is no
 * phase: rekey folds `next` into the policy's own spi and keys. */
enum mc_phase {
	MC_PHASE_ACCEPT, /* the next SA is installed; inbound accepts both, outbound sends current */
	MC_PHASE_SWITCH, /* outbound sends with the next SA; inbound still accepts both */
};

/* Protection turned on (or off) without loss, make before break: how far a PROTECT policy
 * enforces IPsec (`enforce:`). Each step is applied on both hosts of a pair before the next. */
enum mc_enforce {
	MC_ENFORCE_REQUIRE = 0, /* the default: SAs, outbound sends with them, inbound requires them */
	MC_ENFORCE_ACCEPT,      /* SAs installed; outbound sends in clear; inbound accepts clear or IPsec */
	MC_ENFORCE_PROTECT,     /* outbound sends with the SAs; inbound still accepts clear */
};

struct mc_next {
	bool given;
	enum mc_phase phase;
	uint32_t spi;
	char *integrity_key, *confidentiality_key; /* esp's names; ah's `key` is integrity_key */
	struct mc_loc loc, spi_loc, phase_loc, integrity_loc, confidentiality_loc;
	struct mc_span key_span;   /* the `next` key: its line starts the block rekey removes */
	struct mc_span value_span; /* the mapping; end_line is its last line with content */
	struct mc_span phase_span, spi_span, ikey_span, ekey_span;
};

struct mc_policy {
	char *name;
	struct mc_loc loc; /* the list item */
	enum mc_dir dir;
	int proto; /* MC_PROTO_ANY or 1..255 */
	struct mc_loc proto_loc;
	struct mc_addrset local, remote;
	struct mc_portset local_ports, remote_ports;
	struct mc_icmpspec icmp;
	enum mc_action action;
	/* PROTECT only */
	uint32_t spi;
	bool spi_given; /* the key was present, valid or not */
	struct mc_loc spi_loc;
	int ipsec_proto; /* MC_PROTO_ESP or MC_PROTO_AH */
	const struct mc_alg *integrity, *confidentiality;
	unsigned confidentiality_bits; /* a key length the algorithm's spelling fixes (aes256), or 0 */
	char *integrity_key, *confidentiality_key;
	struct mc_loc integrity_loc, confidentiality_loc;
	struct mc_next next; /* key rollover in progress */
	enum mc_enforce enforce; /* phase-in (or -out) in progress, unless MC_ENFORCE_REQUIRE */
	bool enforce_given;
	struct mc_loc enforce_loc;
	struct mc_span enforce_key_span, enforce_span; /* the `enforce` key (its line) and value */
	struct mc_lifetime lifetime;
	struct mc_loc lifetime_loc;
	/* For rekey: the policy's own spi and key-name values, the policy mapping (end_line: its
	 * last line with content) and whether it is in block style (rekey edits only those). */
	struct mc_span spi_span, ikey_span, ekey_span, span;
	bool block_style;
};

/* The SPI a PROTECT policy sends with (outbound): the next one once it switched. */
static inline uint32_t mc_policy_send_spi(const struct mc_policy *p)
{
	return p->next.given && p->next.phase == MC_PHASE_SWITCH ? p->next.spi : p->spi;
}

const char *mc_phase_str(enum mc_phase ph);
/* "accept", "protect", "require"; and the steps in order (accept 0, protect 1, require 2). */
const char *mc_enforce_str(enum mc_enforce e);
int mc_enforce_rank(enum mc_enforce e);
/* What a PROTECT rule that lets clear through does in direction dir, as status, test and the
 * plan say it: "sends in clear (enforce accept); its SAs are installed", "accepts clear ...". */
const char *mc_clear_passes_str(enum mc_dir dir);

/* Whether a policy lets clear traffic through in its direction although it protects: an
 * outbound one in phase accept (it sends in clear), an inbound one before phase require (it
 * accepts clear as well as IPsec). Only PROTECT policies are ever phased. */
static inline bool mc_policy_clear_passes(const struct mc_policy *p)
{
	return p->action == MC_PROTECT &&
	       (p->dir == MC_DIR_OUT ? p->enforce == MC_ENFORCE_ACCEPT : p->enforce != MC_ENFORCE_REQUIRE);
}

struct mc_selector_name {
	char *name;
	struct mc_addrset addrs;
};

struct mc_site {
	char *file;
	bool enabled;
	bool enabled_given; /* ipsec.enabled was written: it decides, even on a disabled host */
	enum mc_default def;
	struct mc_loc def_loc; /* of ipsec.default; line 0 when implied */
	enum mc_on_failure on_failure;
	bool allow_shared_spi; /* ipsec.allow-shared-spi: a repeated SPI (other peer) is a warning */
	bool keys_skipped; /* loaded without its key file (mc_conf_opts.skip_keys): keys not checked */
	bool keys_optional; /* missing keys are warnings (mc_conf_opts.keys_optional) */
	bool keys_absent;   /* keys_optional and the key file does not exist (warned once) */
	char *keys_file; /* resolved path, or NULL when the site names none */
	char *keys_text; /* ipsec.keys as written (mirror writes it back) */
	struct mc_loc keys_loc;
	struct mc_selector_name *sels;
	size_t nsels, capsels;
	struct mc_policy *pol;
	size_t npol, cappol;
	struct mc_key *keys;
	size_t nkeys, capkeys;
};

const struct mc_key *mc_site_key(const struct mc_site *s, const char *name);
const struct mc_policy *mc_site_policy(const struct mc_site *s, const char *name);
void mc_site_free(struct mc_site *s);

const char *mc_dir_str(enum mc_dir d);
const char *mc_action_str(enum mc_action a); /* "bypass" */
const char *mc_action_upper(enum mc_action a); /* "BYPASS" */
const char *mc_default_str(enum mc_default d);
/* ipv6-only | bypass | deny | deny-all, or MCP's IPv6Only | BYPASS | DENY | DENYALL, any case. */
bool mc_default_parse(const char *s, enum mc_default *ret);
/* "tcp", "bip", or the number; buf of 8 bytes. */
const char *mc_proto_str(int proto, char *buf, size_t len);
/* An SA's or template's IPsec protocol: "ah", "esp", or "?" for any other number. The one
 * place that turns MC_PROTO_AH / MC_PROTO_ESP into words. */
const char *mc_ipsec_proto_str(int proto);
/* Protocol name or number to its number; -1 when unknown. "any" is MC_PROTO_ANY. */
int mc_proto_parse(const char *s);

/* Whether the address set holds x ('any' holds every address). */
bool mc_addrset_has(const struct mc_addrset *a, const struct mc_addr *x);
/* Sorts and merges a port set's ranges; 0-65535 becomes any. */
void mc_portset_merge(struct mc_portset *set);

/*
 * A TCP client that connects without bind() is decided before the kernel picks its port: the
 * connect's policy lookup sees local port 0, and over IPv6 the connection keeps that decision
 * (doc/kernel-notes.md, "Sockets and the policy lookup"). Port 0 is never on the wire, so it
 * stands for exactly that client. mcpsec counts it as covered by an outbound local-port (or
 * inbound remote-port) selector when, and only when, the selector covers every port the
 * kernel may pick, the ephemeral range (net.ipv4.ip_local_port_range, per namespace; Linux's
 * default when no namespace is asked). Then an unbound client meets the policy its port would
 * meet, whatever port it gets.
 */
#define MC_EPHEMERAL_LO 32768
#define MC_EPHEMERAL_HI 60999
enum mc_unbound {
	MC_UNBOUND_NONE, /* the selector holds no ephemeral port */
	MC_UNBOUND_SOME, /* some ephemeral ports, not all: an unbound client may or may not match */
	MC_UNBOUND_ALL,  /* every ephemeral port: an unbound client always matches */
};
enum mc_unbound mc_ports_unbound(const struct mc_portset *ps, unsigned eph_lo, unsigned eph_hi);
/* Whether the selector counts local port 0 (an unbound client's connect) as its own. */
bool mc_ports_take_zero(const struct mc_portset *ps, unsigned eph_lo, unsigned eph_hi);
/* "any" | TYPE | TYPE-TYPE | TYPE/CODE | TYPE/CODE-CODE; false when malformed (loc untouched). */
bool mc_icmp_parse(const char *s, struct mc_icmpspec *ret);

/* Protocols whose selectors match ports (TCP, UDP, DCCP, SCTP, UDP-Lite), and ICMP/ICMPv6,
 * whose type and code the kernel matches in the port fields. */
bool mc_proto_has_ports(int proto);
bool mc_proto_is_icmp(int proto);

/* Names mcpsec reserves for its built-in policies. */
bool mc_name_reserved(const char *name);

#endif
