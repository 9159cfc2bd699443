/*
 * test_numtext.c — integers as text (base/numtext.h): the same characters as
 * printf's %llu, %llx and %lld for edge values and a sweep, and the lengths;
 * strbuf_addu and strbuf_addi.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "numtext.h"
#include "strbuf.h"
#include "tap.h"

static void check_u(uint64_t v)
{
	char got[SFS_NUM_SIZE], want[SFS_NUM_SIZE];
	int n = snprintf(want, sizeof(want), "%" PRIu64, v);
	CHECK_EQ_INT(sfs_u64_text(got, v, 10), n);
	CHECK_EQ_STR(got, want);
	n = snprintf(want, sizeof(want), "%" PRIx64, v);
	CHECK_EQ_INT(sfs_u64_text(got, v, 16), n);
	CHECK_EQ_STR(got, want);
}

static void check_i(int64_t v)
{
	char got[SFS_NUM_SIZE], want[SFS_NUM_SIZE];
	int n = snprintf(want, sizeof(want), "%" PRId64, v);
	CHECK_EQ_INT(sfs_i64_text(got, v), n);
	CHECK_EQ_STR(got, want);
}

static void test_edges(void)
{
	const uint64_t u[] = {0,
			      1,
			      9,
			      10,
			      15,
			      16,
			      99,
			      100,
			      UINT32_MAX,
			      (uint64_t)UINT32_MAX + 1,
			      UINT64_MAX / 10,
			      UINT64_MAX - 1,
			      UINT64_MAX};
	const int64_t s[] = {0,	  1,	     -1,	9,	   -9,	      10,
			     -10, INT32_MIN, INT32_MAX, INT64_MAX, INT64_MIN, INT64_MIN + 1};
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++)
		check_u(u[i]);
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		check_i(s[i]);
}

/* Every power of ten and of two, and one either side, in both signs. */
static void test_sweep(void)
{
	for (uint64_t p = 1; p && p <= UINT64_MAX / 10; p *= 10)
		for (int d = -1; d <= 1; d++) {
			check_u(p + (uint64_t)d);
			check_i((int64_t)(p + (uint64_t)d));
			check_i(-(int64_t)(p + (uint64_t)d));
		}
	for (int b = 0; b < 64; b++) {
		check_u((uint64_t)1 << b);
		check_u(((uint64_t)1 << b) - 1);
	}
}

/* Another base than 10 or 16 is taken as 10. */
static void test_other_base(void)
{
	char got[SFS_NUM_SIZE];
	CHECK_EQ_INT(sfs_u64_text(got, 255, 8), 3);
	CHECK_EQ_STR(got, "255");
}

/* strbuf_addu and strbuf_addi append the same text, after what the buffer holds. */
static void test_strbuf(void)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "#");
	strbuf_addi(&sb, -42);
	strbuf_addch(&sb, ' ');
	strbuf_addu(&sb, UINT64_MAX);
	strbuf_addch(&sb, ' ');
	strbuf_addi(&sb, INT64_MIN);
	CHECK_EQ_STR(sb.buf, "#-42 18446744073709551615 -9223372036854775808");
	CHECK_EQ_INT(sb.len, strlen(sb.buf));
	strbuf_release(&sb);
}

int main(void)
{
	RUN(test_strbuf);
	RUN(test_edges);
	RUN(test_sweep);
	RUN(test_other_base);
	return tap_done();
}
