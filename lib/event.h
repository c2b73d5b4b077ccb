/* SPDX-License-Identifier: MIT */
/* XFRM netlink events, decoded (nlx.c) into plain values for the daemon's pure logic. */
#ifndef MCPSEC_EVENT_H
#define MCPSEC_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "model.h"
#include "plan.h"

enum mc_ev_kind {
	MC_EV_ACQUIRE,    /* outbound PROTECT with no usable SA: the packet was dropped */
	MC_EV_SA_EXPIRE,  /* soft or hard; spi 0 is a larval (ACQUIRE) state timing out */
	MC_EV_SA_NEW,
	MC_EV_SA_UPD,
	MC_EV_SA_DEL,
	MC_EV_SA_FLUSH,
	MC_EV_POL_NEW,
	MC_EV_POL_UPD,
	MC_EV_POL_DEL,
	MC_EV_POL_FLUSH,
	MC_EV_POL_EXPIRE,
	MC_EV_OTHER,
};

struct mc_event {
	enum mc_ev_kind kind;
	uint32_t portid;   /* netlink port of the process whose request caused it; 0: the kernel */
	/* Policy events and ACQUIRE: the policy. */
	enum mc_dir dir;
	uint32_t priority, index;
	struct mc_sel sel;
	/* ACQUIRE: the packet's flow (exact addresses; ports or ICMP type/code). */
	struct mc_sel flow;
	/* SA events, EXPIRE and ACQUIRE's template: which SA. */
	uint8_t family;
	struct mc_addr saddr, daddr;
	uint32_t spi, reqid;
	uint8_t proto;     /* 50 ESP, 51 AH; FLUSH: 0 = all */
	bool hard;         /* EXPIRE */
};

const char *mc_ev_kind_str(enum mc_ev_kind k);

#endif
