/* clock.c — see clock.h.  No locks: the only state is thread-local (gmtime_r). */
#include "clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t sfs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The thread's last formatted second: a solve stamps 100,000s of events within
 * the same few seconds, and gmtime_r + strftime cost more than the rest. */
static _Thread_local time_t last_sec = -1;
static _Thread_local char last_text[SFS_TIME_SIZE];
static _Thread_local size_t last_len;

/* "YYYY-MM-DDTHH:MM:SS" of sec into ret; its length. */
static size_t format_second(time_t sec, char *ret)
{
	if (sec != last_sec) {
		struct tm tm;
		gmtime_r(&sec, &tm);
		last_len = strftime(last_text, sizeof(last_text), "%Y-%m-%dT%H:%M:%S", &tm);
		last_sec = sec;
	}
	memcpy(ret, last_text, last_len);
	return last_len;
}

static void format_time(int64_t ns, bool trim, char ret[SFS_TIME_SIZE])
{
	time_t sec = (time_t)(ns / 1000000000);
	long frac = (long)(ns % 1000000000);
	int digits = 9;
	size_t n;

	if (frac < 0) { /* before the epoch: the second below, a positive fraction */
		frac += 1000000000;
		sec--;
	}
	n = format_second(sec, ret);
	if (trim && frac == 0) {
		memcpy(ret + n, "Z", 2);
		return;
	}
	while (trim && frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	ret[n] = '.';
	for (int i = digits; i > 0; i--, frac /= 10)
		ret[n + (size_t)i] = (char)('0' + frac % 10);
	memcpy(ret + n + 1 + (size_t)digits, "Z", 2);
}

void sfs_format_time(int64_t ns, char ret[SFS_TIME_SIZE])
{
	format_time(ns, false, ret);
}

void sfs_format_time_go(int64_t ns, char ret[SFS_TIME_SIZE])
{
	format_time(ns, true, ret);
}
