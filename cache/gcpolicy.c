/*
 * gcpolicy.c — the automatic GC's arithmetic (gcpolicy.h, docs/gc.md).
 */
#include "gcpolicy.h"

#include <string.h>

void gc_opts_default(struct gc_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->keep_ns = GC_KEEP_NS_DEFAULT;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* pct percent of size without overflow (size < 2^64, pct <= 100). */
static uint64_t percent_of(uint64_t size, uint64_t pct)
{
	return size / 100 * pct + size % 100 * pct / 100;
}

/* An amount in bytes: its value, or the default percentage capped at cap (0: none). */
static uint64_t resolve(const struct gc_amount *a, uint64_t fs_size, uint64_t def_pct, uint64_t cap)
{
	if (!a->set) {
		uint64_t v = percent_of(fs_size, def_pct);
		return cap ? min_u64(v, cap) : v;
	}
	return a->percent ? percent_of(fs_size, a->value) : a->value;
}

void gc_plan_compute(const struct gc_opts *o, const struct gc_usage *u, struct gc_plan *ret)
{
	struct gc_plan p = {.keep_ns = o->keep_ns};

	if (o->off) {
		p.soft = p.hard = p.max_used = UINT64_MAX;
		*ret = p;
		return;
	}
	p.max_used = resolve(&o->max_used, u->fs_size, GC_MAX_USED_PCT, GC_MAX_USED_CAP);
	p.reserved = min_u64(resolve(&o->reserved, u->fs_size, GC_RESERVED_PCT, GC_RESERVED_CAP),
			     p.max_used);
	p.min_free = resolve(&o->min_free, u->fs_size, GC_MIN_FREE_PCT, 0);
	p.hard = p.max_used;
	p.soft = p.max_used;
	if (u->fs_free < p.min_free) {
		uint64_t short_by = p.min_free - u->fs_free;
		p.soft = min_u64(p.soft, u->used > short_by ? u->used - short_by : 0);
	}
	p.soft = max_u64(p.soft, p.reserved);
	p.excess = u->used > p.soft ? u->used - p.soft : 0;
	*ret = p;
}
