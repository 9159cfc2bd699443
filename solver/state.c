/*
 * state.c — the solver's state machines, checked: a vertex's phase, an edge's
 * phase, the round of a vertex's rounds and a job's state change only through
 * the setters here (sfs_vstate_set_phase, sfs_vstate_set_round,
 * sfs_edge_set_phase, sfs_job_set_state, declared in internal.h), and each
 * checks its transition against a table of the allowed ones (README "How the
 * solver decides"; what the rounds do is in rounds.c).
 *
 * The checks, and the owner record behind sfs_lock_held (internal.h), are made
 * when NDEBUG is not defined: in the debug, debugoptimized and sanitizer
 * builds (meson's b_ndebug defaults to false).  A transition that is not in
 * its table is a broken invariant: the check says which and aborts.  With
 * NDEBUG the setters are plain stores.
 *
 * Every setter runs with sfs_solver.lock held.
 */
#include <stdio.h>
#include <stdlib.h>

#include "array.h"
#include "err.h"
#include "internal.h"

#ifndef NDEBUG
_Thread_local const char sfs_lock_tag;

void sfs_lock_check_failed(const char *want, const char *func, const char *file, int line)
{
	sfs_log(SFS_LOG_ERR, "%s:%d: %s: expected %s", file, line, func, want);
	abort();
}

#define BIT(x) (1u << (x))

/*
 * A vertex: keys first (NEW → WAIT_KEYS → KEYING → KEYED), then, for an edge
 * without a record, the rounds (KEYED → WAIT_INPUTS ⇄ SLOW, each round again
 * WAIT_INPUTS) that end keyed again (a record found, or only keys asked for),
 * or in EXEC → EXECUTED.  A root has no rounds (KEYED → EXEC).  Anything not
 * settled can fail.
 */
static const unsigned vstate_next[] = {
    [VSTATE_NEW] = BIT(VSTATE_WAIT_KEYS) | BIT(VSTATE_FAILED),
    [VSTATE_WAIT_KEYS] = BIT(VSTATE_KEYING) | BIT(VSTATE_FAILED),
    [VSTATE_KEYING] = BIT(VSTATE_KEYED) | BIT(VSTATE_FAILED),
    [VSTATE_KEYED] = BIT(VSTATE_WAIT_INPUTS) | BIT(VSTATE_EXEC) | BIT(VSTATE_FAILED),
    [VSTATE_WAIT_INPUTS] = BIT(VSTATE_SLOW) | BIT(VSTATE_WAIT_INPUTS) | BIT(VSTATE_KEYED) |
			   BIT(VSTATE_EXEC) | BIT(VSTATE_FAILED),
    [VSTATE_SLOW] =
	BIT(VSTATE_WAIT_INPUTS) | BIT(VSTATE_KEYED) | BIT(VSTATE_EXEC) | BIT(VSTATE_FAILED),
    [VSTATE_EXEC] = BIT(VSTATE_EXECUTED) | BIT(VSTATE_FAILED),
    [VSTATE_EXECUTED] = 0,
    [VSTATE_FAILED] = 0,
};

/*
 * The rounds of a vertex with no record: they start at DISCOVER from a keyed
 * vertex, and each either leads to the next (DISCOVER → HASH → ALL, the
 * vertex waiting for inputs or slow) or ends the rounds with the vertex keyed
 * again (NONE).  ALL also ends in the exec, which keeps its round.
 * round_phases: the phases a vertex may be in when it enters each round.
 */
static const unsigned round_next[] = {
    [SFS_ROUND_NONE] = BIT(SFS_ROUND_DISCOVER),
    [SFS_ROUND_DISCOVER] = BIT(SFS_ROUND_HASH) | BIT(SFS_ROUND_NONE),
    [SFS_ROUND_HASH] = BIT(SFS_ROUND_ALL) | BIT(SFS_ROUND_NONE),
    [SFS_ROUND_ALL] = BIT(SFS_ROUND_NONE),
};

static const unsigned round_phases[] = {
    [SFS_ROUND_NONE] = BIT(VSTATE_KEYED),
    [SFS_ROUND_DISCOVER] = BIT(VSTATE_KEYED),
    [SFS_ROUND_HASH] = BIT(VSTATE_WAIT_INPUTS) | BIT(VSTATE_SLOW),
    [SFS_ROUND_ALL] = BIT(VSTATE_WAIT_INPUTS) | BIT(VSTATE_SLOW),
};

/*
 * An edge: IDLE until its vertex is keyed and someone wants it; then it loads
 * a record or waits for the exec, or (still idle) merges into an active edge
 * with the same key and takes that one's outcome.  A failed load or a merge
 * target that went away makes it idle again.  An execution completes every
 * edge of its vertex, whatever it was doing.
 */
static const unsigned edge_next[] = {
    [EDGE_IDLE] = BIT(EDGE_LOADING) | BIT(EDGE_WAIT_EXEC) | BIT(EDGE_MERGED) | BIT(EDGE_DONE) |
		  BIT(EDGE_FAILED),
    [EDGE_LOADING] = BIT(EDGE_IDLE) | BIT(EDGE_DONE) | BIT(EDGE_FAILED),
    [EDGE_WAIT_EXEC] = BIT(EDGE_LOADING) | BIT(EDGE_DONE) | BIT(EDGE_FAILED),
    [EDGE_MERGED] = BIT(EDGE_IDLE) | BIT(EDGE_DONE) | BIT(EDGE_FAILED),
    [EDGE_DONE] = 0,
    [EDGE_FAILED] = 0,
};

/*
 * A job: pending while its spec is parsed, running once accepted, then one
 * final state.  Done turns into failed when the job's history cannot be saved
 * (sfs_job_end: a job is done only once its row is on disk).
 */
static const unsigned job_next[] = {
    [SFS_JOB_PENDING] = BIT(SFS_JOB_RUNNING) | BIT(SFS_JOB_FAILED) | BIT(SFS_JOB_CANCELLED),
    [SFS_JOB_RUNNING] = BIT(SFS_JOB_DONE) | BIT(SFS_JOB_FAILED) | BIT(SFS_JOB_CANCELLED),
    [SFS_JOB_DONE] = BIT(SFS_JOB_FAILED),
    [SFS_JOB_FAILED] = 0,
    [SFS_JOB_CANCELLED] = 0,
};

static const char *const vstate_names[] = {
    [VSTATE_NEW] = "new",     [VSTATE_WAIT_KEYS] = "wait-keys",	    [VSTATE_KEYING] = "keying",
    [VSTATE_KEYED] = "keyed", [VSTATE_WAIT_INPUTS] = "wait-inputs", [VSTATE_SLOW] = "slow",
    [VSTATE_EXEC] = "exec",   [VSTATE_EXECUTED] = "executed",	    [VSTATE_FAILED] = "failed",
};

static const char *const round_names[] = {
    [SFS_ROUND_NONE] = "none",
    [SFS_ROUND_DISCOVER] = "discover",
    [SFS_ROUND_HASH] = "hash",
    [SFS_ROUND_ALL] = "all",
};

static const char *const edge_names[] = {
    [EDGE_IDLE] = "idle",     [EDGE_LOADING] = "loading", [EDGE_WAIT_EXEC] = "wait-exec",
    [EDGE_MERGED] = "merged", [EDGE_DONE] = "done",	  [EDGE_FAILED] = "failed",
};

_Static_assert(ARRAY_SIZE(vstate_next) == VSTATE_FAILED + 1, "a vertex phase without a row");
_Static_assert(ARRAY_SIZE(vstate_names) == VSTATE_FAILED + 1, "a vertex phase without a name");
_Static_assert(ARRAY_SIZE(round_next) == SFS_ROUND_ALL + 1, "a round without a row");
_Static_assert(ARRAY_SIZE(round_phases) == SFS_ROUND_ALL + 1, "a round without its phases");
_Static_assert(ARRAY_SIZE(round_names) == SFS_ROUND_ALL + 1, "a round without a name");
_Static_assert(ARRAY_SIZE(edge_next) == EDGE_FAILED + 1, "an edge phase without a row");
_Static_assert(ARRAY_SIZE(edge_names) == EDGE_FAILED + 1, "an edge phase without a name");
_Static_assert(ARRAY_SIZE(job_next) == SFS_JOB_CANCELLED + 1, "a job state without a row");

static void illegal(const char *what, const char *id, const char *from, const char *to)
{
	sfs_log(SFS_LOG_ERR, "%s %s: illegal transition %s -> %s", what, id, from, to);
	abort();
}

#endif

void sfs_vstate_set_phase(struct vstate *vs, enum vstate_phase to)
{
	SFS_ASSERT_LOCKED(vs->s);
#ifndef NDEBUG
	if (!(vstate_next[vs->phase] & BIT(to)))
		illegal("vertex", vs->digest, vstate_names[vs->phase], vstate_names[to]);
#endif
	vs->phase = to;
}

void sfs_vstate_set_round(struct vstate *vs, enum sfs_round to)
{
	SFS_ASSERT_LOCKED(vs->s);
#ifndef NDEBUG
	if (!(round_next[vs->round] & BIT(to)))
		illegal("vertex round", vs->digest, round_names[vs->round], round_names[to]);
	if (!(round_phases[to] & BIT(vs->phase))) {
		sfs_log(SFS_LOG_ERR, "vertex %s: round %s entered in phase %s", vs->digest,
			round_names[to], vstate_names[vs->phase]);
		abort();
	}
#endif
	vs->round = to;
}

void sfs_edge_set_phase(struct edge *e, enum edge_phase to)
{
	SFS_ASSERT_LOCKED(e->vs->s);
#ifndef NDEBUG
	if (!(edge_next[e->phase] & BIT(to))) {
		char id[SFS_DIGEST_SIZE + 24];
		snprintf(id, sizeof(id), "%s:%d", e->vs->digest, e->output);
		illegal("edge", id, edge_names[e->phase], edge_names[to]);
	}
#endif
	e->phase = to;
}

void sfs_job_set_state(struct sfs_job *j, enum sfs_job_state to)
{
	SFS_ASSERT_LOCKED(j->s);
#ifndef NDEBUG
	if (!(job_next[j->state] & BIT(to))) {
		char id[24];
		snprintf(id, sizeof(id), "%llu", (unsigned long long)j->id);
		illegal("job", id, sfs_job_state_name(j->state), sfs_job_state_name(to));
	}
#endif
	j->state = to;
}
