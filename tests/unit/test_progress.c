/*
 * test_progress.c — golden output of solver/progress.c: one fixed sequence of
 * vertex events with fixed timestamps, and the exact plain (`status`) and rawjson
 * (`status.json`) texts it renders (docs/progress.md §2, §3; §4 for the CACHED
 * inputs and the CANCELED vertices at the end).
 *
 * `test_progress --print` writes the two texts to stdout instead of checking them,
 * to review a deliberate change of the format before pasting it here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"
#include "tap.h"

#define D_SRC "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D_DEP "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D_RUN "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D_IDLE "sha256:4444444444444444444444444444444444444444444444444444444444444444"

/* 2026-11-23T21:41:15Z plus ms milliseconds. */
#define T(ms) (1795470000000000000LL + 75000000000LL + (int64_t)(ms)*1000000LL)

static bool print_only;

/*
 * src runs; dep is never started (an input of run, so reported CACHED); run logs a
 * line on each stream and a partial line, then fails; idle starts and never ends
 * (CANCELED at the end).
 */
static struct sfs_progress *scenario(void)
{
	struct sfs_progress *p = NULL;
	const char *run_in[] = {D_SRC, D_DEP};

	CHECK_EQ_INT(sfs_progress_new(NULL, 0, &p), 0);
	if (!p)
		return NULL;
	CHECK_EQ_INT(sfs_progress_add_vertex(p, D_SRC, "[src] local /src", NULL, 0), 0);
	CHECK_EQ_INT(sfs_progress_add_vertex(p, D_DEP, "[dep] file mkdir", NULL, 0), 0);
	CHECK_EQ_INT(sfs_progress_add_vertex(p, D_RUN, "[run] exec sh -c make", run_in, 2), 0);
	CHECK_EQ_INT(sfs_progress_add_vertex(p, D_IDLE, "[idle] exec sleep 60", NULL, 0), 0);
	sfs_progress_started(p, D_SRC, T(0), false);
	sfs_progress_completed(p, D_SRC, T(250), false, NULL);
	sfs_progress_started(p, D_RUN, T(300), false);
	sfs_progress_log(p, D_RUN, 1, "compiling\n", 10, T(1300));
	sfs_progress_started(p, D_IDLE, T(1400), false);
	sfs_progress_log(p, D_RUN, 2, "warning: x\nno newline", 21, T(1500));
	sfs_progress_completed(p, D_RUN, T(2000), false, "exit code 2");
	sfs_progress_end(p, T(2100));
	return p;
}

static char *text(const struct textlog *t)
{
	char *s = NULL;
	size_t n = 0;

	CHECK_EQ_INT(textlog_read_all(t, &s, &n), 0);
	return s;
}

/* Prints where got and want first differ, for a failing comparison. */
static void check_text(const char *what, const char *got, const char *want)
{
	if (print_only) {
		printf("==== %s\n%s", what, got ? got : "(null)");
		return;
	}
	if (got && strcmp(got, want) == 0)
		return;
	size_t i = 0;
	while (got && got[i] && got[i] == want[i])
		i++;
	fprintf(stderr, "  %s differs at byte %zu\n  --- got ---\n%s  --- want ---\n%s", what, i,
		got ? got : "(null)\n", want);
	CHECK(!"golden text");
}

/* clang-format off */
static const char plain_want[] =
    "#1 [src] local /src\n"
    "#1 DONE 0.2s\n"
    "\n"
    "#2 [dep] file mkdir\n"
    "#2 CACHED\n"
    "\n"
    "#3 [run] exec sh -c make\n"
    "#3 1.000 compiling\n"
    "#3 ...\n"
    "\n"
    "#4 [idle] exec sleep 60\n"
    "#4 ...\n"
    "\n"
    "#3 [run] exec sh -c make\n"
    "#3 1.200 warning: x\n"
    "#3 ERROR: exit code 2\n"
    "#3 1.800 no newline\n"
    "\n"
    "#4 [idle] exec sleep 60\n"
    "#4 CANCELED\n"
    "------\n"
    " > [run] exec sh -c make:\n"
    "compiling\n"
    "warning: x\n"
    "no newline\n"
    "------\n";

/* The digests of the rawjson text as their macros, one string per line. */
static const char json_want[] =
    "{\"vertexes\":[{\"digest\":\"" D_SRC "\",\"name\":\"[src] local /src\"}]}\n"
    "{\"vertexes\":[{\"digest\":\"" D_DEP "\",\"name\":\"[dep] file mkdir\"}]}\n"
    "{\"vertexes\":[{\"digest\":\"" D_RUN "\",\"inputs\":[\"" D_SRC "\",\"" D_DEP "\"],\"name\":\"[run] exec sh -c make\"}]}\n"
    "{\"vertexes\":[{\"digest\":\"" D_IDLE "\",\"name\":\"[idle] exec sleep 60\"}]}\n"
    "{\"vertexes\":[{\"digest\":\"" D_SRC "\",\"name\":\"[src] local /src\",\"started\":\"2026-11-23T21:41:15.000000000Z\"}]}\n"
    "{\"vertexes\":[{\"digest\":\"" D_SRC "\",\"name\":\"[src] local /src\",\"started\":\"2026-11-23T21:41:15.000000000Z\",\"completed\":\"2026-11-23T21:41:15.250000000Z\"}]}\n"
    "{\"vertexes\":[{\"digest\":\"" D_DEP "\",\"name\":\"[dep] file mkdir\",\"started\":\"2026-11-23T21:41:15.300000000Z\",\"completed\":\"2026-11-23T21:41:15.300000000Z\",\"cached\":true}]}\n"
    "{\"vertexes\":[{\"digest\":\"" D_RUN "\",\"inputs\":[\"" D_SRC "\",\"" D_DEP "\"],\"name\":\"[run] exec sh -c make\",\"started\":\"2026-11-23T21:41:15.300000000Z\"}]}\n"
    "{\"logs\":[{\"vertex\":\"" D_RUN "\",\"stream\":1,\"data\":\"Y29tcGlsaW5nCg==\",\"timestamp\":\"2026-11-23T21:41:16.300000000Z\"}]}\n"
    "{\"vertexes\":[{\"digest\":\"" D_IDLE "\",\"name\":\"[idle] exec sleep 60\",\"started\":\"2026-11-23T21:41:16.400000000Z\"}]}\n"
    "{\"logs\":[{\"vertex\":\"" D_RUN "\",\"stream\":2,\"data\":\"d2FybmluZzogeApubyBuZXdsaW5l\",\"timestamp\":\"2026-11-23T21:41:16.500000000Z\"}]}\n"
    "{\"vertexes\":[{\"digest\":\"" D_RUN "\",\"inputs\":[\"" D_SRC "\",\"" D_DEP "\"],\"name\":\"[run] exec sh -c make\",\"started\":\"2026-11-23T21:41:15.300000000Z\",\"completed\":\"2026-11-23T21:41:17.000000000Z\",\"error\":\"exit code 2\"}]}\n"
    "{\"vertexes\":[{\"digest\":\"" D_IDLE "\",\"name\":\"[idle] exec sleep 60\",\"started\":\"2026-11-23T21:41:16.400000000Z\",\"completed\":\"2026-11-23T21:41:17.100000000Z\",\"error\":\"context canceled\"}]}\n";
/* clang-format on */

/* The scenario's text in one form (what, read by form) is want. */
static void golden(const char *what, const struct textlog *(*form)(const struct sfs_progress *p),
		   const char *want)
{
	struct sfs_progress *p = scenario();
	char *s = p ? text(form(p)) : NULL;
	check_text(what, s, want);
	free(s);
	sfs_progress_free(p);
}

static void test_plain_golden(void)
{
	golden("plain", sfs_progress_plain, plain_want);
}

static void test_rawjson_golden(void)
{
	golden("rawjson", sfs_progress_json, json_want);
}

/* A vertex whose input was never announced keeps its own copy of the input's
 * digest; what is not a digest is no vertex. */
static void test_unannounced_input(void)
{
	struct sfs_progress *p = NULL;
	const char *in[] = {D_DEP, D_SRC};
	char *json;

	CHECK_EQ_INT(sfs_progress_new(NULL, 0, &p), 0);
	if (!p)
		return;
	CHECK_EQ_INT(sfs_progress_add_vertex(p, D_SRC, "[src] local /src", NULL, 0), 0);
	CHECK_EQ_INT(sfs_progress_add_vertex(p, D_RUN, "[run] exec make", in, 2), 0);
	CHECK_EQ_INT(sfs_progress_add_vertex(p, D_RUN, "[run] again", NULL, 0), 0); /* known */
	CHECK_EQ_INT(sfs_progress_add_vertex(p, "d1", "[x] not a digest", NULL, 0), -EINVAL);
	CHECK(sfs_progress_has_vertex(p, D_RUN));
	CHECK(!sfs_progress_has_vertex(p, D_DEP));
	CHECK(!sfs_progress_has_vertex(p, "sha256:zz"));
	sfs_progress_started(p, "sha256:zz", T(0), false); /* nothing */
	sfs_progress_started(p, D_RUN, T(0), false);
	json = text(sfs_progress_json(p));
	CHECK(json && strstr(json, "{\"vertexes\":[{\"digest\":\"" D_RUN "\",\"inputs\":[\"" D_DEP
				   "\",\"" D_SRC "\"],\"name\":\"[run] exec make\"") != NULL);
	/* the announced input is reported cached, the other is not there to */
	CHECK(json && strstr(json, "\"digest\":\"" D_SRC "\",\"name\":\"[src] local /src\","
				   "\"started\"") != NULL);
	free(json);
	sfs_progress_free(p);
}

int main(int argc, char **argv)
{
	print_only = argc > 1 && strcmp(argv[1], "--print") == 0;
	RUN(test_plain_golden);
	RUN(test_rawjson_golden);
	RUN(test_unannounced_input);
	return print_only ? 0 : tap_done();
}
