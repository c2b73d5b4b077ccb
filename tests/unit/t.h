/* SPDX-License-Identifier: MIT */
/* A tiny TAP harness: each check is one "ok N - name" line; the plan comes last. */
#ifndef MCPSEC_T_H
#define MCPSEC_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_n, t_failed;

#define T_OK(cond, ...)                                                           \
	do {                                                                      \
		int t_ok = !!(cond);                                              \
		t_n++;                                                            \
		if (t_ok) {                                                       \
			printf("ok %d - ", t_n);                                  \
		} else {                                                          \
			t_failed++;                                               \
			printf("not ok %d - ", t_n);                              \
		}                                                                 \
		printf(__VA_ARGS__);                                              \
		printf("\n");                                                     \
		if (!t_ok)                                                        \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	} while (0)

#define T_EQ_INT(a, b, ...)                                                          \
	do {                                                                         \
		long long t_a = (long long)(a), t_b = (long long)(b);                \
		T_OK(t_a == t_b, __VA_ARGS__);                                       \
		if (t_a != t_b)                                                      \
			printf("#   got %lld, want %lld\n", t_a, t_b);               \
	} while (0)

#define T_EQ_STR(a, b, ...)                                                          \
	do {                                                                         \
		const char *t_a = (a), *t_b = (b);                                   \
		int t_eq = t_a && t_b && !strcmp(t_a, t_b);                          \
		T_OK(t_eq, __VA_ARGS__);                                             \
		if (!t_eq)                                                           \
			printf("#   got:\n%s\n#   want:\n%s\n", t_a ? t_a : "(null)", \
			       t_b ? t_b : "(null)");                                \
	} while (0)

static inline int t_done(void)
{
	printf("1..%d\n", t_n);
	return t_failed ? 1 : 0;
}

#endif
