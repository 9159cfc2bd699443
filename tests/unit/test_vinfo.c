/*
 * test_vinfo.c — a job's vertex list as its history row holds it: the binary
 * form round-trips every field, a damaged one is refused, and the JSON of rows
 * written before the binary form still reads the same.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tap.h"

#define D1 "sha256:0908e8a82abbba1cdd343a4709f7e3c29bf06c081c0a38decf25297d6733f928"
#define D2 "sha256:76a2c77d26073d8911a8c22c30f7ff577dc6ba92930c7422897328bc7280cec7"

static const char op1[] = "{\"op\":\"file\"}\0tail"; /* bytes after a NUL too */

/* Two vertices: a cached root nobody needed, and a done one with a log,
 * an input, a built and an unbuilt output, and a digest of another spelling. */
static void write_two(struct strbuf *sb)
{
	const char *none[] = {""};
	const char *in[] = {D1}, *res[] = {D2, "", "sha256:short"};
	struct sfs_vinfo_view a = {.digest = D1,
				   .name = "v0",
				   .op = op1,
				   .op_len = sizeof(op1) - 1,
				   .state = SFS_VERTEX_CACHED,
				   .noutputs = 1,
				   .results = none,
				   .why = SFS_WHY_NOT_NEEDED,
				   .keys = "0 sha256:5ca2\n",
				   .names = "v0\n"};
	struct sfs_vinfo_view b = {.digest = D2,
				   .name = "[b] n\xc3\xa9",
				   .op = "{}",
				   .op_len = 2,
				   .state = SFS_VERTEX_DONE,
				   .log_path = "/state/logs/x.log",
				   .ninputs = 1,
				   .inputs = in,
				   .noutputs = 3,
				   .results = res,
				   .why = "executed: no record",
				   .keys = "",
				   .names = ""};
	sfs_vinfo_begin(sb);
	sfs_vinfo_write(sb, &a);
	sfs_vinfo_write(sb, &b);
}

static void check_two(const struct sfs_vertex_info *v, size_t n)
{
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_STR(v[0].digest, D1);
	CHECK_EQ_STR(v[0].name, "v0");
	CHECK_EQ_INT(v[0].op_len, sizeof(op1) - 1);
	CHECK(memcmp(v[0].op, op1, sizeof(op1)) == 0); /* and NUL-terminated */
	CHECK_EQ_INT(v[0].state, SFS_VERTEX_CACHED);
	CHECK(v[0].log_path == NULL);
	CHECK_EQ_INT(v[0].ninputs, 0);
	CHECK_EQ_INT(v[0].noutputs, 1);
	CHECK_EQ_STR(v[0].results[0], "");
	CHECK_EQ_STR(v[0].why, SFS_WHY_NOT_NEEDED);
	CHECK_EQ_STR(v[0].keys, "0 sha256:5ca2\n");
	CHECK_EQ_STR(v[0].names, "v0\n");
	CHECK_EQ_INT(v[0].njobs, 0);
	CHECK_EQ_STR(v[1].digest, D2);
	CHECK_EQ_STR(v[1].name, "[b] n\xc3\xa9");
	CHECK_EQ_STR(v[1].op, "{}");
	CHECK_EQ_INT(v[1].state, SFS_VERTEX_DONE);
	CHECK_EQ_STR(v[1].log_path, "/state/logs/x.log");
	CHECK_EQ_INT(v[1].ninputs, 1);
	CHECK_EQ_STR(v[1].inputs[0], D1);
	CHECK_EQ_INT(v[1].noutputs, 3);
	CHECK_EQ_STR(v[1].results[0], D2);
	CHECK_EQ_STR(v[1].results[1], "");
	CHECK_EQ_STR(v[1].results[2], "sha256:short");
	CHECK_EQ_STR(v[1].why, "executed: no record");
	CHECK_EQ_STR(v[1].keys, "");
	CHECK_EQ_STR(v[1].names, "");
}

static void test_round_trip(void)
{
	struct strbuf sb = STRBUF_INIT;
	struct sfs_vertex_info *v = NULL;
	size_t n = 0;
	write_two(&sb);
	CHECK(!sb.oom);
	CHECK_EQ_INT(sfs_vinfo_decode(sb.buf, sb.len, &v, &n), 0);
	check_two(v, n);
	sfs_vertex_infos_free(v, n);
	strbuf_release(&sb);
}

static void test_empty_list(void)
{
	struct strbuf sb = STRBUF_INIT;
	struct sfs_vertex_info *v = NULL;
	size_t n = 7;
	sfs_vinfo_begin(&sb);
	CHECK_EQ_INT(sfs_vinfo_decode(sb.buf, sb.len, &v, &n), 0);
	CHECK_EQ_INT(n, 0);
	CHECK(v != NULL);
	sfs_vertex_infos_free(v, n);
	strbuf_release(&sb);
}

/* Every cut of the list short of its end, and a bad state byte, are refused. */
static void test_damaged(void)
{
	struct strbuf sb = STRBUF_INIT;
	struct sfs_vertex_info *v = NULL;
	size_t n = 0, whole;
	write_two(&sb);
	whole = sb.len;
	for (size_t len = 6; len < whole; len++) {
		int r = sfs_vinfo_decode(sb.buf, len, &v, &n);
		if (r == 0) { /* a cut exactly between the two vertices */
			CHECK_EQ_INT(n, 1);
			CHECK_EQ_STR(v[0].digest, D1);
			sfs_vertex_infos_free(v, n);
		} else {
			CHECK_EQ_INT(r, -EINVAL);
		}
	}
	/* the state byte of the first vertex: after magic, digest, name, op */
	size_t state_at = 5 + 33 + 3 + 1 + (sizeof(op1) - 1);
	CHECK_EQ_INT(sb.buf[state_at], SFS_VERTEX_CACHED);
	sb.buf[state_at] = 99;
	CHECK_EQ_INT(sfs_vinfo_decode(sb.buf, whole, &v, &n), -EINVAL);
	strbuf_release(&sb);
}

/* A row written before the binary form. */
static void test_json_rows(void)
{
	static const char json[] =
	    "[{\"digest\":\"" D1 "\",\"name\":\"v0\",\"op\":\"{\\\"op\\\":\\\"file\\\"}\","
	    "\"state\":\"cached\",\"inputs\":[],\"results\":[\"\"],"
	    "\"why\":\"" SFS_WHY_NOT_NEEDED "\",\"keys\":\"0 sha256:5ca2\\n\",\"names\":\"v0\\n\"},"
	    "{\"digest\":\"" D2 "\",\"name\":\"v1\",\"op\":\"{}\",\"state\":\"done\","
	    "\"log\":\"/state/logs/x.log\",\"inputs\":[\"" D1 "\"],\"results\":[\"" D2 "\"],"
	    "\"why\":\"executed\",\"keys\":\"\"}]";
	struct sfs_vertex_info *v = NULL;
	size_t n = 0;
	CHECK_EQ_INT(sfs_vinfo_decode(json, sizeof(json) - 1, &v, &n), 0);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_STR(v[0].op, "{\"op\":\"file\"}");
	CHECK_EQ_INT(v[0].state, SFS_VERTEX_CACHED);
	CHECK_EQ_STR(v[0].names, "v0\n");
	CHECK_EQ_STR(v[1].log_path, "/state/logs/x.log");
	CHECK_EQ_STR(v[1].inputs[0], D1);
	CHECK_EQ_STR(v[1].results[0], D2);
	CHECK_EQ_STR(v[1].names, "");
	sfs_vertex_infos_free(v, n);
	CHECK_EQ_INT(sfs_vinfo_decode("[{", 2, &v, &n), -EINVAL);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_empty_list);
	RUN(test_damaged);
	RUN(test_json_rows);
	return tap_done();
}
