/* SPDX-License-Identifier: MIT */
/* Rollover steps as text edits: where accept inserts, what switch and retire change, and that
 * everything else (comments, layout) stays byte for byte. */
#include "../../lib/conf.h"
#include "../../lib/diag.h"
#include "../../lib/model.h"
#include "../../lib/rekey.h"
#include "../../lib/util.h"
#include "t.h"

static const char SITE[] =
	"# a comment that must survive\n"
	"policies:\n"
	"  - name: OUT            # trailing comment\n"
	"    direction: out\n"
	"    remote: 2001:db8::2\n"
	"    action: protect\n"
	"    spi: 0x1001\n"
	"    esp:\n"
	"      integrity: hmac-sha256-128\n"
	"      integrity-key: K1   # the key\n"
	"\n"
	"  # the next policy\n"
	"  - name: IN\n"
	"    direction: in\n"
	"    remote: 2001:db8::2\n"
	"    action: protect\n"
	"    spi: 8194\n"
	"    ah: { integrity: hmac-sha1-96, key: A-r7 }\n";

/* Parses text and moves policies OUT and IN one step; returns the new text (caller frees). */
static char *step(const char *text, enum mc_rekey_step want, const struct mc_rekey_fresh *fresh)
{
	struct mc_diags ds = { 0 };
	struct mc_site *s = NULL;
	struct mc_buf out = { 0 };

	mc_conf_parse("t.yaml", text, strlen(text), &ds, &s);
	const struct mc_policy *pol[2] = { mc_site_policy(s, "OUT"), mc_site_policy(s, "IN") };
	T_OK(pol[0] && pol[1] && mc_rekey_step_of(pol[0]) == want && mc_rekey_step_of(pol[1]) == want,
	     "both policies are due for %s", mc_rekey_step_str(want));
	T_EQ_INT(mc_rekey_edit(text, pol, 2, want, fresh, &out, &ds), 0, "%s edits", mc_rekey_step_str(want));
	mc_site_free(s);
	mc_diags_free(&ds);
	return out.s;
}

static int taken(const char *name, void *ctx)
{
	(void)ctx;
	return !strcmp(name, "K-r2") || !strcmp(name, "A-r8");
}

int main(void)
{
	struct mc_rekey_fresh fresh[2] = { { 0x2001, "K1-r2", NULL }, { 9000, "A-r8", NULL } };
	char *accept = step(SITE, MC_REKEY_ACCEPT, fresh);
	T_OK(strstr(accept, "      integrity-key: K1   # the key\n    next:") != NULL,
	     "accept: OUT's next block right after its last line, at its keys' indentation");
	T_OK(strstr(accept, "      phase: accept\n      spi: 8193\n      integrity-key: K1-r2\n\n  # the next policy") != NULL,
	     "accept: phase, spi and key; the blank line and the comment that follow stay");
	T_OK(strstr(accept, "key: A-r7 }\n    next:") && strstr(accept, "      key: A-r8\n"),
	     "accept: an AH policy names its next key 'key'");
	T_OK(!strncmp(accept, SITE, strstr(SITE, "    esp:") - SITE), "accept: everything before is unchanged");

	char *sw = step(accept, MC_REKEY_SWITCH, NULL);
	T_OK(strlen(sw) == strlen(accept) && strstr(sw, "phase: switch") && !strstr(sw, "phase: accept"),
	     "switch: only the phases change");

	char *retired = step(sw, MC_REKEY_RETIRE, NULL);
	T_OK(!strstr(retired, "next:") && strstr(retired, "    spi: 0x2001\n") && strstr(retired, "    spi: 9000\n"),
	     "retire: next gone; spi written in the file's own style (hex stays hex)");
	T_OK(strstr(retired, "      integrity-key: K1-r2   # the key\n") && strstr(retired, "key: A-r8 }"),
	     "retire: key names replaced in place, their comments kept");
	T_OK(strstr(retired, "# a comment that must survive\n") && strstr(retired, "  - name: OUT            # trailing comment\n") &&
	     strstr(retired, "\n\n  # the next policy\n"), "retire: every comment and blank line survives");
	T_EQ_INT(strlen(retired), strlen(SITE) + 3, "retire: the file is the original but for K1 → K1-r2 (same-length SPIs and A-r7 → A-r8)");

	char *n1 = mc_rekey_key_name("K", taken, NULL), *n2 = mc_rekey_key_name("A-r7", taken, NULL),
	     *n3 = mc_rekey_key_name("X-r", taken, NULL);
	T_EQ_STR(n1, "K-r3", "successor of K skips the taken K-r2");
	T_EQ_STR(n2, "A-r9", "successor of A-r7 is A-r8, taken, so A-r9");
	T_EQ_STR(n3, "X-r-r2", "a name that only looks like a generation gets one");
	free(n1);
	free(n2);
	free(n3);
	free(accept);
	free(sw);
	free(retired);
	return t_done();
}
