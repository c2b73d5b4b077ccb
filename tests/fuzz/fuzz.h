/* SPDX-License-Identifier: MIT */
/* Shared by the libFuzzer targets: the entry point, and input as a NUL-terminated copy. */
#ifndef MCPSEC_FUZZ_H
#define MCPSEC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs larger than this are not interesting (the loaders cap files at 16 MiB anyway) and only
 * slow the search. */
#define FUZZ_MAX_INPUT (64u << 10)

static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* A property the target checks: a violation is a crash, which libFuzzer keeps as a reproducer. */
#define FUZZ_ASSERT(cond)                                                                           \
	do {                                                                                        \
		if (!(cond)) {                                                                      \
			fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
			abort();                                                                    \
		}                                                                                   \
	} while (0)

#endif
