/*
 * clock.h — the wall clock in nanoseconds and its one RFC 3339 spelling.
 *
 * Times are int64 nanoseconds since the epoch (CLOCK_REALTIME) everywhere in
 * solverfs: job and record times, the database, what files show.  Text is
 * RFC 3339 in UTC; SFS_TIME_SIZE holds either form below with its NUL.
 */
#ifndef SFS_CLOCK_H
#define SFS_CLOCK_H

#include <stdint.h>

#define SFS_TIME_SIZE 40

int64_t sfs_now_ns(void);

/* Nine fraction digits always: "2026-11-23T21:57:55.123456789Z" (what the
 * mount's files and progress show). */
void sfs_format_time(int64_t ns, char ret[SFS_TIME_SIZE]);
/* Go's time.RFC3339Nano, as BuildKit writes a cache config: trailing zeros of
 * the fraction dropped, no fraction for a whole second:
 * "2026-11-23T21:57:55.5Z", "2026-11-23T21:57:55Z". */
void sfs_format_time_go(int64_t ns, char ret[SFS_TIME_SIZE]);

#endif
