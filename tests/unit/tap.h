/*
 * tap.h — a very small test harness for the C unit tests.
 *
 *   static void test_put_twice(void) { ... CHECK(x == 1); CHECK_EQ_STR(a, b); }
 *   int main(void) { RUN(test_put_twice); return tap_done(); }
 *
 * Each RUN prints "ok N - name" or "not ok N - name"; a failed CHECK prints
 * file:line and the expression and marks the current test failed, then the test
 * goes on.  tap_done() prints "N passed, N failed" and returns the exit status.
 */
#ifndef SFS_TAP_H
#define SFS_TAP_H

#include <stdio.h>
#include <string.h>

extern int tap_failed_now;
void tap_run(const char *name, void (*fn)(void));
int tap_done(void);
void tap_fail(const char *file, int line, const char *expr);
/* A fresh scratch directory under $TMPDIR; tap owns the string and removes the
 * directory and frees it in tap_done: never free it. */
char *tap_tmpdir(void);
/* CLOCK_MONOTONIC in seconds, for what a test prints (or bounds) about time. */
double tap_now_s(void);

#define RUN(fn) tap_run(#fn, fn)
#define CHECK(e)                                                                                   \
	do {                                                                                       \
		if (!(e))                                                                          \
			tap_fail(__FILE__, __LINE__, #e);                                          \
	} while (0)
#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                                \
		if (_a != _b) {                                                                    \
			fprintf(stderr, "  %lld != %lld\n", _a, _b);                               \
			tap_fail(__FILE__, __LINE__, #a " == " #b);                                \
		}                                                                                  \
	} while (0)
#define CHECK_EQ_STR(a, b)                                                                         \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                                           \
			fprintf(stderr, "  \"%s\" != \"%s\"\n", _a ? _a : "(null)",                \
				_b ? _b : "(null)");                                               \
			tap_fail(__FILE__, __LINE__, #a " == " #b);                                \
		}                                                                                  \
	} while (0)

#endif
