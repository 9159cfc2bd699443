/*
 * specparse.c — sfs-bench-specparse: the spec parser alone (solver/spec.h), for
 * bench/spec-parse.sh and for comparing digests across parser versions.
 *
 *     sfs-bench-specparse time SPEC [ROUNDS]   parse SPEC ROUNDS times (default 5)
 *     sfs-bench-specparse dump SPEC...         every vertex's digests and op bytes
 *
 * time prints the vertex count, the first (in fresh memory, as a daemon's first
 * job after a mount), best and median µs a vertex of a parse (the
 * parse and the free of the spec are timed apart: the free is the job's end), and
 * the heap bytes a vertex a parsed spec holds (mallinfo2's in-use bytes, arenas
 * and mmap'd chunks, with one spec alive minus without).  dump prints, per spec, "key digest cache_map_digest
 * op_bytes" a line and, per input, its ref and selector digest, or the rejection
 * with its message; two parser versions agree on a corpus when their dumps match.
 * Parsed as bench/solve-scale.sh's mount does: session 7, local and network
 * allowed, spec_max=256M, max_vertices=1000000.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spec.h"

static const struct sfs_spec_limits lim = {.max_bytes = (size_t)256 << 20,
					   .max_vertices = 1000000};
static const struct sfs_spec_ctx ctx = {.session = 7,
					.limits = &lim,
					.allow_local = true,
					.allow_network = true,
					.mountpoint = "/nonexistent"};

static char *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (!f)
		return NULL;
	do {
		if (len + 65536 > cap) {
			char *nb = realloc(buf, cap = 2 * cap + 65536);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	*ret_len = len;
	return buf;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Bytes malloc has handed out: from its arenas and as chunks of their own (mmap). */
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int time_spec(const char *path, int rounds)
{
	size_t len, n = 0;
	char *buf = slurp(path, &len), *msg = NULL;
	double *parse = calloc((size_t)rounds, sizeof(double));
	double *fr = calloc((size_t)rounds, sizeof(double));
	size_t heap = 0;
	double first = 0;

	if (!buf || !parse || !fr) {
		fprintf(stderr, "sfs-bench-specparse: %s: cannot read\n", path);
		return 1;
	}
	for (int i = 0; i < rounds; i++) {
		struct sfs_spec *sp = NULL;
		size_t before = heap_in_use();
		double t0 = now_us();
		int r = sfs_spec_parse(buf, len, &ctx, &sp, &msg);
		double t1 = now_us();
		if (r < 0) {
			fprintf(stderr, "sfs-bench-specparse: %s: %s\n", path, msg ? msg : "?");
			return 1;
		}
		n = sp->n;
		heap = heap_in_use() - before;
		sfs_spec_free(sp);
		parse[i] = t1 - t0;
		if (i == 0)
			first = parse[0];
		fr[i] = now_us() - t1;
	}
	qsort(parse, (size_t)rounds, sizeof(double), cmp_double);
	qsort(fr, (size_t)rounds, sizeof(double), cmp_double);
	printf("%s: %zu vertices, %zu bytes; parse first %.2f best %.2f median %.2f us/vertex; "
	       "free median %.2f us/vertex; spec heap %.0f B/vertex\n",
	       path, n, len, first / (double)n, parse[0] / (double)n, parse[rounds / 2] / (double)n,
	       fr[rounds / 2] / (double)n, (double)heap / (double)n);
	free(parse);
	free(fr);
	free(buf);
	return 0;
}

static void dump_spec(const char *path)
{
	size_t len;
	char *buf = slurp(path, &len), *msg = NULL;
	struct sfs_spec *sp = NULL;
	int r;

	printf("== %s\n", path);
	if (!buf) {
		printf("unreadable\n");
		return;
	}
	r = sfs_spec_parse(buf, len, &ctx, &sp, &msg);
	if (r < 0) {
		printf("rejected %d: %s\n", r, msg ? msg : "");
		free(msg);
		free(buf);
		return;
	}
	for (size_t i = 0; i < sp->n; i++) {
		const struct sfs_spec_vertex *v = &sp->v[i];
		char map[SFS_DIGEST_SIZE];
		sfs_dgst_to_text(&v->cache_map_digest, map);
		printf("%s %s %s %zu outputs, summary %s\n  ", v->key, v->digest, map, v->noutputs,
		       v->summary);
		fwrite(v->op_bytes, 1, v->op_len, stdout);
		printf("\n");
		for (size_t k = 0; k < v->ninputs; k++)
			printf("  input %zu: %s:%d %s %zu%s\n", k, sp->v[v->inputs[k].ref.vertex].key,
			       v->inputs[k].ref.output, v->inputs[k].selector_digest,
			       v->inputs[k].selector_len, v->inputs[k].content_func ? "" : " no-cf");
	}
	for (size_t o = 0; o < sp->noutputs; o++)
		printf("output %s\n", sp->output_refs[o]);
	sfs_spec_free(sp);
	free(buf);
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "time") == 0)
		return time_spec(argv[2], argc > 3 ? atoi(argv[3]) : 5);
	if (argc >= 3 && strcmp(argv[1], "dump") == 0) {
		for (int i = 2; i < argc; i++)
			dump_spec(argv[i]);
		return 0;
	}
	fprintf(stderr, "usage: sfs-bench-specparse time SPEC [ROUNDS] | dump SPEC...\n");
	return 2;
}
