/* SPDX-License-Identifier: MIT */
/* MCP listing import: every spelling (golden YAML), every error (verbatim), and the seed's
 * example listing deciding every flow exactly as examples/host-a does. */
#include <sys/socket.h>

#include "../../lib/eval.h"
#include "../../lib/import.h"
#include "fixture.h"
#include "t.h"

#define IMP "tests/unit/fixtures/import"
#define A_ADDR "fec0::2222:a00:bff:fe3a:100"

static char *import_file(const char *path, enum mc_default def, size_t *errors, char **ret_diags)
{
	char *text = slurp(path);
	struct mc_import_opts o = { NULL, def };
	struct mc_diags ds = { 0 };
	struct mc_buf out = { 0 }, d = { 0 };

	if (text)
		mc_import(path, text, &o, &out, &ds);
	mc_diags_sort(&ds);
	mc_diags_render(&ds, &d);
	*errors = ds.errors;
	*ret_diags = d.s ? d.s : mc_strdup("");
	mc_diags_free(&ds);
	free(text);
	return out.s ? out.s : mc_strdup("");
}

static bool load(const char *path, struct mc_site **s, struct mc_plan *plan)
{
	struct mc_conf_opts o = { 0 };
	struct mc_diags ds = { 0 };
	bool ok = mc_conf_load(path, &o, &ds, s) == 0 && mc_site_validate(*s, &ds) == 0 &&
		  mc_compile(*s, NULL, &ds, plan) == 0 && ds.errors == 0;
	mc_diags_free(&ds);
	return ok;
}

/* The imported listing names the two unnamed blocks itself. */
static const char *host_a_name(const char *imported)
{
	if (!strcmp(imported, "BYPASS-ANY-OUT"))
		return "BYPASSALLOUT";
	if (!strcmp(imported, "BYPASS-ANY-IN"))
		return "BYPASSALLIN";
	return imported;
}

int main(void)
{
	size_t errors;
	char *diags, *yaml, *want;

	yaml = import_file(IMP "/variants.txt", MC_DEF_BYPASS, &errors, &diags);
	want = slurp(IMP "/variants.expect");
	T_EQ_INT(errors, 0, "variants.txt imports without errors (IPv4 in it: --default bypass)");
	T_EQ_STR(yaml, want ? want : "(missing)", "variants.txt: the YAML matches variants.expect verbatim");
	free(yaml);
	free(want);
	free(diags);

	yaml = import_file(IMP "/bad.txt", MC_DEF_IPV6_ONLY, &errors, &diags);
	want = slurp(IMP "/bad.expect");
	T_OK(errors >= 15, "bad.txt: %zu errors, all in one run", errors);
	T_EQ_STR(diags, want ? want : "(missing)", "bad.txt: diagnostics match bad.expect verbatim");
	T_EQ_STR(yaml, "", "bad.txt: nothing is written");
	free(yaml);
	free(want);
	free(diags);

	/* What check would refuse is refused here, at the listing's line, in the listing's words. */
	yaml = import_file(IMP "/meaning.txt", MC_DEF_IPV6_ONLY, &errors, &diags);
	want = slurp(IMP "/meaning.expect");
	T_EQ_INT(errors, 8, "meaning.txt: ports without TCP/UDP, IPv4 under IPv6Only, a name twice");
	T_EQ_STR(diags, want ? want : "(missing)", "meaning.txt: diagnostics match meaning.expect verbatim");
	T_EQ_STR(yaml, "", "meaning.txt: nothing is written");
	free(yaml);
	free(want);
	free(diags);

	char *tmp = enter_private_copy(IMP);
	T_OK(tmp && system("chmod 600 examples/*/keys.yaml") == 0, "examples copied to a private directory");
	yaml = import_file("examples/mcp-listing/policies.txt", MC_DEF_IPV6_ONLY, &errors, &diags);
	T_EQ_INT(errors, 0, "the seed's example listing imports without errors");
	FILE *f = fopen("examples/host-a/imported.yaml", "w");
	fputs(yaml, f);
	fclose(f);
	struct mc_site *a = NULL, *m = NULL;
	struct mc_plan pa, pm;
	T_OK(load("examples/host-a/site.yaml", &a, &pa), "examples/host-a loads");
	T_OK(load("examples/host-a/imported.yaml", &m, &pm), "the imported site loads with host A's keys");
	T_EQ_INT(m ? (long long)m->npol : -1, 8, "eight policies");
	T_EQ_INT(pm.nsas, pa.nsas, "as many SAs as host A");

	/* Every protocol, direction and local port sample, all remote ports, to the backup host
	 * and to another host: same result and same first match (up to the two generated names). */
	static const int protos[] = { MC_PROTO_TCP, MC_PROTO_UDP, MC_PROTO_BIP, MC_PROTO_ICMPV6, 47 };
	static const char *remotes[] = { "fec0::2222:a00:bff:fe3a:127", "fec0::99" };
	long ranges = 0, differ = 0;
	for (size_t p = 0; p < MC_ARRAY_SIZE(protos); p++)
		for (size_t r = 0; r < MC_ARRAY_SIZE(remotes); r++)
			for (int d = 0; d < 2; d++)
				for (unsigned lp = 1; lp < 65535; lp += 811) {
					struct mc_query q = { .proto = protos[p], .dir = (enum mc_dir)d, .local_lo = lp,
							      .local_hi = lp, .remote_lo = 1, .remote_hi = 65535 };
					struct mc_results ra, rm;
					mc_addr_parse(A_ADDR, &q.local);
					mc_addr_parse(remotes[r], &q.remote);
					if (protos[p] == MC_PROTO_ICMPV6) {
						q.local_lo = q.local_hi = lp % 256;
						q.remote_lo = 0;
						q.remote_hi = 255;
					}
					mc_eval(&pa, &q, &ra);
					mc_eval(&pm, &q, &rm);
					bool same = same_results(&ra, &rm, host_a_name);
					ranges++;
					differ += !same;
					mc_results_free(&ra);
					mc_results_free(&rm);
				}
	T_OK(ranges > 1000, "%ld flow ranges compared", ranges);
	T_EQ_INT(differ, 0, "the imported seed listing decides every flow as examples/host-a does");
	bool spis = pm.nsas == pa.nsas;
	for (size_t i = 0; spis && i < pa.nsas; i++) {
		bool found = false;
		for (size_t j = 0; j < pm.nsas; j++)
			found |= pm.sas[j].spi == pa.sas[i].spi && pm.sas[j].proto == pa.sas[i].proto &&
				 pm.sas[j].integrity == pa.sas[i].integrity &&
				 pm.sas[j].confidentiality == pa.sas[i].confidentiality;
		spis = found;
	}
	T_OK(spis, "the same SAs: SPIs, protocols and algorithms");
	if (a)
		mc_plan_free(&pa);
	if (m)
		mc_plan_free(&pm);
	mc_site_free(a);
	mc_site_free(m);
	free(yaml);
	free(diags);
	leave_private_copy(tmp);
	return t_done();
}
