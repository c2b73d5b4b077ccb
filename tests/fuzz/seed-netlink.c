/* SPDX-License-Identifier: MIT */
/* Writes netlink seed messages for fuzz_netlink: every kind of SA mcpsec installs, encoded by
 * lib/nlx.c (the layout of the kernel's own SA dump replies). Kernel-recorded policy dumps and
 * events come from record-netlink.py. Usage: seed-netlink DIR */
#include <stdio.h>

#include "../../lib/algo.h"
#include "../../lib/nlx.h"
#include "../../lib/util.h"

int main(int argc, char **argv)
{
	const char *specs[][2] = { { "hmac-sha1-96", NULL }, { "hmac-sha256-128", "aes-cbc" },
				   { "hmac-sha512-256", "tdes-cbc" }, { NULL, "aes-cbc" } };
	if (argc != 2)
		return 2;
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		struct mc_op op = { .kind = MC_OP_SA_ADD };
		uint8_t buf[4097];
		op.sa.family = 10;
		mc_addr_parse("fec0::2222:a00:bff:fe3a:100", &op.sa.saddr);
		mc_addr_parse("fec0::2222:a00:bff:fe3a:127", &op.sa.daddr);
		op.sa.spi = 24577 + (uint32_t)i;
		op.sa.proto = specs[i][1] ? 50 : 51;
		op.sa.reqid = 0x6d630000;
		op.sa.integrity = specs[i][0] ? mc_alg_find(specs[i][0], MC_ALG_INTEGRITY) : NULL;
		op.sa.confidentiality = specs[i][1] ? mc_alg_find(specs[i][1], MC_ALG_CONFIDENTIALITY) : NULL;
		op.sa.ikey_len = op.sa.integrity ? 20 : 0;
		op.sa.ekey_len = op.sa.confidentiality ? (i == 2 ? 24 : 16) : 0;
		for (size_t k = 0; k < sizeof(op.sa.ikey); k++)
			op.sa.ikey[k] = (uint8_t)(0xa0 + k);
		for (size_t k = 0; k < sizeof(op.sa.ekey); k++)
			op.sa.ekey[k] = (uint8_t)(0x10 + k);
		buf[0] = 1; /* fuzz_netlink: the SA decoder */
		size_t len = mc_nl_encode(&op, 1, buf + 1, sizeof(buf) - 1);
		char path[512];
		snprintf(path, sizeof(path), "%s/sa-%zu.bin", argv[1], i);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(buf, 1, len + 1, f) != len + 1)
			return 1;
		fclose(f);
	}
	return 0;
}
