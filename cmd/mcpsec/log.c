/* SPDX-License-Identifier: MIT */
/* mcpsec log: the daemon's drop records from the state directory (log.jsonl.1, then log.jsonl). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/monitor.h"
#include "../../lib/util.h"
#include "cmd.h"


/* "15m" (ago), "1795737342", "2026-11-26T10:00:00Z" → seconds since the epoch; -1 if malformed. */
static int64_t parse_since(const char *s, int64_t now)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	struct tm tm;

	if (end != s && (!strcmp(end, "s") || !strcmp(end, "m") || !strcmp(end, "h") || !strcmp(end, "d")) && v >= 0)
		return now - v * (*end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : 86400);
	if (end != s && !*end && v >= 0)
		return v;
	memset(&tm, 0, sizeof(tm));
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest && (!*rest || !strcmp(rest, "Z")))
		return (int64_t)timegm(&tm);
	return -1;
}

/* Prints the records of one file from offset on; returns the new offset. */
static off_t print_from(const char *path, off_t offset, const struct mc_record_filter *flt, bool json)
{
	FILE *f = fopen(path, "re");
	char line[2048];
	struct mc_buf out = { 0 };

	if (!f)
		return offset;
	if (offset && fseeko(f, offset, SEEK_SET) < 0) {
		fclose(f);
		return offset;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		struct mc_record r;
		if (!n || line[n - 1] != '\n')
			break; /* a line still being written: read it next time */
		offset += (off_t)n;
		if (!mc_record_parse(line, &r) || !mc_record_match(&r, flt))
			continue;
		if (json)
			mc_buf_puts(&out, line);
		else
			mc_record_text(&r, &out);
	}
	fclose(f);
	fputs(mc_buf_str(&out), stdout);
	fflush(stdout);
	mc_buf_free(&out);
	return offset;
}

int log_main(int argc, char **argv)
{
	bool follow = false, json = false;
	int64_t now = time(NULL);
	struct mc_record_filter flt = { .port = -1 };

	for (int i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--follow") || is_flag(argv[i], "-f"))
			follow = true;
		else if (is_flag(argv[i], "--json"))
			json = true;
		else if (is_flag(argv[i], "--staged"))
			flt.staged = true;
		else if (is_flag(argv[i], "--since") && i + 1 < argc) {
			if ((flt.since = parse_since(argv[++i], now)) < 0) {
				fprintf(stderr, "mcpsec log: cannot read the time '%s'\n%s", argv[i], command_usage("log"));
				return EXIT_CONFIG;
			}
		} else if (is_flag(argv[i], "--policy") && i + 1 < argc) {
			flt.policy = argv[++i];
		} else if (is_flag(argv[i], "--addr") && i + 1 < argc) {
			const char *why;
			struct mc_addr a;
			i++;
			/* An IPv4-mapped address is the IPv4 one, as the records write it. */
			if (mc_addr_parse(argv[i], &a) && mc_addr_unmap(&a)) {
				flt.range = (struct mc_range){ AF_INET, mc_addr_to_u128(&a), mc_addr_to_u128(&a) };
			} else if (!mc_range_parse(argv[i], &flt.range, &why)) {
				fprintf(stderr, "mcpsec log: --addr '%s': %s\n%s", argv[i], why, command_usage("log"));
				return EXIT_CONFIG;
			}
			flt.has_range = true;
		} else if (is_flag(argv[i], "--port") && i + 1 < argc) {
			unsigned lo, hi;
			if (!mc_parse_range(argv[++i], 65535, &lo, &hi) || lo != hi) {
				fprintf(stderr, "mcpsec log: --port '%s': expected one port, 0-65535\n%s", argv[i], command_usage("log"));
				return EXIT_CONFIG;
			}
			flt.port = (int)lo;
		} else {
			fprintf(stderr, "mcpsec log: unexpected argument '%s'\n%s", argv[i], command_usage("log"));
			return EXIT_CONFIG;
		}
	}
	char *path = mc_asprintf("%s/log.jsonl", g_opts.state_dir), *old = mc_asprintf("%s.1", path);
	struct stat sb;
	if (stat(path, &sb) < 0 && !follow) {
		fprintf(stderr, "mcpsec log: no records in %s yet (does mcpsecd run for this namespace?)\n",
			g_opts.state_dir);
		free(path);
		free(old);
		return 0;
	}
	print_from(old, 0, &flt, json);
	off_t offset = print_from(path, 0, &flt, json);
	ino_t ino = stat(path, &sb) == 0 ? sb.st_ino : 0;
	while (follow) {
		usleep(200 * 1000);
		if (stat(path, &sb) < 0)
			continue;
		if (sb.st_ino != ino || sb.st_size < offset) {
			/* Rotated: finish nothing more of the old file; the new one starts at 0. */
			ino = sb.st_ino;
			offset = 0;
		}
		if (sb.st_size > offset)
			offset = print_from(path, offset, &flt, json);
	}
	free(path);
	free(old);
	return 0;
}
