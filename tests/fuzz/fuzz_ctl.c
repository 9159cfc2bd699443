/*
 * fuzz_ctl.c — jobs/N/ctl: the command parser (sfs_job_ctl_parse) and what a
 * write does to a job in each state (sfs_solver_job_ctl), on a real solver
 * over a scratch cache.  There is no cache/ctl file in the mount.
 *
 * The whole input is parsed once as one write.  It is then split at FZ_SEP
 * into up to 8 writes, given in turn to a pending job (no spec yet), a done
 * job and a running job (an op that blocks until cancelled), from the job's
 * owner, root and another user in turn.  Checked: every write gives one of
 * the documented errors with a message, or 0 and the job is cancelled or gone
 * (or, for keep and unkeep, unchanged);
 * a write the parser refuses does nothing.  At the end of the input every job
 * left is cancelled and discarded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "tree.h"
#include "solver.h"
#include "fuzz.h"
#include "../unit/fixture.h"

#define MAX_WRITES 8
#define OWNER 1000

static struct sfs_cache *cache;
static struct sfs_solver *solver;

/* "block" runs until cancelled; anything else makes the empty tree. */
static int t_exec(struct sfs_op *op, struct sfs_op_ctx *ctx, const char *const *inputs,
		  size_t ninputs, char (*outputs)[SFS_DIGEST_SIZE], char **ret_msg)
{
	const struct tree_entry root = {.type = 'd', .mode = 0755, .path = "."};

	if (strcmp(op->v->key, "block") == 0) {
		while (!sfs_op_cancelled(ctx))
			usleep(200);
		return -ECANCELED;
	}
	return fx_op_outputs(op, ctx, &root, 1, outputs);
}

static const struct sfs_op_type t_op = {"fuzz", NULL, t_exec, NULL, NULL};

static int t_resolve(void *arg, const struct sfs_spec_vertex *v, struct sfs_op **ret)
{
	return fx_op_new(&t_op, v, NULL, ret);
}

static void solver_done(void)
{
	solver = sfs_solver_close(solver);
	cache = sfs_cache_close(cache);
}

/* On the first input, not in LLVMFuzzerInitialize: libFuzzer's -jobs parent
 * runs that too and never fuzzes. */
static void solver_init(void)
{
	struct sfs_solver_opts o;
	char *msg = NULL;

	if (solver)
		return;
	sfs_solver_opts_default(&o);
	o.workers = 2;
	o.jobs_keep = 8;
	o.resolve = t_resolve;
	if (sfs_cache_open(fz_path(0, "state"), &cache, &msg) < 0 ||
	    sfs_solver_open(cache, &o, &solver, &msg) < 0) {
		fprintf(stderr, "fuzz_ctl: %s\n", msg ? msg : "cannot open the solver");
		abort();
	}
	atexit(solver_done);
}

static int job_state(uint64_t id)
{
	struct sfs_job_info i;
	int r = sfs_solver_job_info(solver, id, &i);

	if (r < 0)
		return r;
	r = (int)i.state;
	sfs_job_info_release(&i);
	return r;
}

static uint64_t job_start(const char *key)
{
	char spec[256];
	char *msg = NULL;
	uint64_t id = 0;

	FZ_CHECK(sfs_solver_job_new(solver, OWNER, OWNER, &id) == 0);
	if (!key)
		return id;
	snprintf(spec, sizeof(spec),
		 "{\"vertices\":{\"%s\":{\"op\":\"file\",\"actions\":[{\"mkdir\":"
		 "{\"path\":\"%s\"}}]}},\"outputs\":[\"%s\"]}",
		 key, key, key);
	int r = sfs_solver_job_submit(solver, id, OWNER, spec, strlen(spec), &msg);
	if (r < 0)
		fprintf(stderr, "fuzz_ctl: submit: %s\n", msg ? msg : strerror(-r));
	FZ_CHECK(r == 0);
	return id;
}

/* Waits (up to 20 s) until job id is final or gone. */
static void job_wait(uint64_t id)
{
	for (int i = 0; i < 20000; i++) {
		int st = job_state(id);
		if (st < 0 || sfs_job_state_final((enum sfs_job_state)st))
			return;
		usleep(1000);
	}
	fz_fail(__FILE__, __LINE__, "a job did not end");
}

static void check_parse(const uint8_t *data, size_t size)
{
	enum sfs_job_cmd cmd = (enum sfs_job_cmd) - 1;
	char *msg = NULL;
	int r = sfs_job_ctl_parse((const char *)data, size, &cmd, &msg);

	if (r < 0) {
		FZ_CHECK(r == -EINVAL && msg && (int)cmd == -1);
		free(msg);
		return;
	}
	FZ_CHECK(r == 0 && !msg);
	static const char *const words[] = {[SFS_JOB_CMD_CANCEL] = "cancel",
					    [SFS_JOB_CMD_DISCARD] = "discard",
					    [SFS_JOB_CMD_KEEP] = "keep",
					    [SFS_JOB_CMD_UNKEEP] = "unkeep"};
	FZ_CHECK((unsigned)cmd <= SFS_JOB_CMD_UNKEEP);
	/* the command word is in the input, everything else is blank */
	const char *word = words[cmd];
	const char *at = memmem(data, size, word, strlen(word));
	FZ_CHECK(at);
	for (size_t i = 0; i < size; i++)
		if ((const char *)data + i < at || (const char *)data + i >= at + strlen(word))
			FZ_CHECK(strchr(" \t\r\n", data[i]) && data[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uid_t uids[] = {OWNER, 0, OWNER + 1};
	struct fz_part w[MAX_WRITES];
	size_t n;
	uint64_t jobs[3];

	solver_init();
	check_parse(data, size);
	n = fz_split(data, size, w, MAX_WRITES);
	jobs[0] = job_start(NULL);
	jobs[1] = job_start("done");
	job_wait(jobs[1]);
	FZ_CHECK(job_state(jobs[1]) == SFS_JOB_DONE);
	jobs[2] = job_start("block");
	for (size_t i = 0; i < n; i++) {
		uint64_t id = jobs[i % 3];
		uid_t uid = uids[(i / 3) % 3];
		enum sfs_job_cmd cmd;
		int before = job_state(id),
		    parsed = sfs_job_ctl_parse((const char *)w[i].p, w[i].n, &cmd, NULL);
		char *msg = NULL;
		int r = sfs_solver_job_ctl(solver, id, uid, (const char *)w[i].p, w[i].n, &msg);
		int after = job_state(id);

		FZ_CHECK(r == 0 || r == -EINVAL || r == -EBUSY || r == -ENOENT || r == -EPERM);
		FZ_CHECK(r == 0 ? !msg : msg != NULL);
		free(msg);
		if (parsed < 0)
			FZ_CHECK(r == -EINVAL);
		if (r < 0) {
			FZ_CHECK(after == before); /* a refused write changes nothing */
			continue;
		}
		FZ_CHECK(parsed == 0 && before >= 0 && (uid == 0 || uid == OWNER));
		if (cmd == SFS_JOB_CMD_CANCEL)
			FZ_CHECK(!sfs_job_state_final((enum sfs_job_state)before) &&
				 after == SFS_JOB_CANCELLED);
		else if (cmd == SFS_JOB_CMD_DISCARD)
			FZ_CHECK(before != SFS_JOB_RUNNING && after == -ENOENT);
		else if (cmd == SFS_JOB_CMD_KEEP) /* pins a finished job's outputs */
			FZ_CHECK(sfs_job_state_final((enum sfs_job_state)before) && after == before);
		else
			FZ_CHECK(after == before);
	}
	for (size_t k = 0; k < 3; k++) {
		sfs_solver_job_ctl(solver, jobs[k], 0, "cancel", 6, NULL);
		job_wait(jobs[k]);
		sfs_solver_job_ctl(solver, jobs[k], 0, "discard", 7, NULL);
		FZ_CHECK(job_state(jobs[k]) == -ENOENT);
	}
	return 0;
}
