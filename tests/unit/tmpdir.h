/* SPDX-License-Identifier: MIT */
/* A private temporary directory for a unit test, and files in it (created 0600, never through
 * a link: mc_file_write_new). tmp_setup first; tmp_cleanup removes it all. */
#ifndef MCPSEC_TMPDIR_H
#define MCPSEC_TMPDIR_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/fileio.h"
#include "../../lib/util.h"

static char tmp_base[] = "/tmp/mcpsec-unit-XXXXXX";

static bool tmp_setup(void)
{
	return mkdtemp(tmp_base) != NULL;
}

/* base/name; caller frees. */
static char *path(const char *name)
{
	return mc_asprintf("%s/%s", tmp_base, name);
}

/* Replaces base/name with text. */
static void put(const char *name, const char *text)
{
	char *p = path(name);
	unlink(p);
	if (mc_file_write_new(p, text, strlen(text), 0600) < 0)
		printf("# cannot write %s\n", p);
	free(p);
}

static int tmp_cleanup(void)
{
	char *cmd = mc_asprintf("rm -rf '%s'", tmp_base);
	int r = system(cmd);
	free(cmd);
	return r;
}

#endif
