/* clock.c — see clock.h.  No state, no locks (gmtime_r). */
#include "clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

int64_t sfs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void format_time(int64_t ns, bool trim, char ret[SFS_TIME_SIZE])
{
	time_t sec = (time_t)(ns / 1000000000);
	long frac = (long)(ns % 1000000000);
	int digits = 9;
	struct tm tm;
	size_t n;

	if (frac < 0) { /* before the epoch: the second below, a positive fraction */
		frac += 1000000000;
		sec--;
	}
	gmtime_r(&sec, &tm);
	n = strftime(ret, SFS_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
	if (trim && frac == 0) {
		snprintf(ret + n, SFS_TIME_SIZE - n, "Z");
		return;
	}
	while (trim && frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	snprintf(ret + n, SFS_TIME_SIZE - n, ".%0*ldZ", digits, frac);
}

void sfs_format_time(int64_t ns, char ret[SFS_TIME_SIZE])
{
	format_time(ns, false, ret);
}

void sfs_format_time_go(int64_t ns, char ret[SFS_TIME_SIZE])
{
	format_time(ns, true, ret);
}
