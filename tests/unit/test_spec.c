/*
 * test_spec.c — the graph spec: validation, normalisation, digests (spec.h).
 *
 * The golden digests below were computed once outside this code, from the
 * canonical bytes written out by hand:
 *     printf '%s' '<canonical JSON>' | sha256sum
 * so a change to the normalisation or the canonical form shows up here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "sha256.h"
#include "strbuf.h"
#include "spec.h"
#include "tap.h"

static struct sfs_spec_ctx ctx_default(void)
{
	return (struct sfs_spec_ctx){.session = 7, .allow_local = true, .allow_network = false};
}

static int parse_ctx(const char *json, const struct sfs_spec_ctx *ctx, struct sfs_spec **ret,
		     char **msg)
{
	*msg = NULL;
	*ret = NULL;
	return sfs_spec_parse(json, strlen(json), ctx, ret, msg);
}

/* Parses json with the default ctx, expecting success. */
static struct sfs_spec *parse_ok(const char *json)
{
	struct sfs_spec_ctx ctx = ctx_default();
	struct sfs_spec *s = NULL;
	char *msg = NULL;
	int r = parse_ctx(json, &ctx, &s, &msg);
	if (r != 0)
		fprintf(stderr, "  unexpected error %d: %s\n  for %s\n", r, msg ? msg : "", json);
	CHECK_EQ_INT(r, 0);
	free(msg);
	return s;
}

/* The vertex named key, or an empty one (so a failed lookup fails the checks). */
static const struct sfs_spec_vertex *vertex(const struct sfs_spec *s, const char *key)
{
	static const struct sfs_spec_vertex none = {
	    .key = "(missing)", .op_bytes = "", .summary = ""};
	for (size_t i = 0; s && i < s->n; i++)
		if (strcmp(s->v[i].key, key) == 0)
			return &s->v[i];
	return &none;
}

/* The text of v's cache map digest, in buf. */
static const char *map_text(const struct sfs_spec_vertex *v, char buf[SFS_DIGEST_SIZE])
{
	sfs_dgst_to_text(&v->cache_map_digest, buf);
	return buf;
}

static const char *digest_of(const struct sfs_spec *s, const char *key)
{
	return vertex(s, key)->digest;
}

/* ---- golden values ---- */

static const char *golden_spec =
    "{\"vertices\": {"
    " \"src\": {\"op\": \"local\", \"path\": \"/src\"},"
    " \"f\": {\"op\": \"file\", \"base\": \"src\", \"actions\": ["
    "   {\"mkdir\": {\"path\": \"a\"}},"
    "   {\"mkfile\": {\"path\": \"a/b\", \"data\": \"hi\\n\"}},"
    "   {\"copy\": {\"from\": \"src\", \"src\": \"x\", \"dest\": \"y\"}},"
    "   {\"rm\": {\"path\": \"z\"}},"
    "   {\"symlink\": {\"target\": \"../t\", \"path\": \"l\"}}]},"
    " \"e\": {\"op\": \"exec\", \"args\": [\"sh\", \"-c\", \"true\"],"
    "        \"mounts\": [{\"dest\": \"in\", \"input\": \"f\", \"selector\": \"a/b\"},"
    "                     {\"dest\": \"out\", \"output\": true}]},"
    " \"m\": {\"op\": \"merge\", \"inputs\": [\"f\", \"e\"]},"
    " \"b\": {\"op\": \"build\", \"input\": \"m\"}"
    "}, \"outputs\": [\"b\"]}";

#define SRC_HEX "99cffc15f4fc0906064eaea2884d59b6636e446f88df5ce907e2f003607d51cd"
#define F_HEX "5ae2cbe708d2446e7278f83f3ded9335e15e7793c9f46a129f1c5cef16e48961"
#define E_HEX "db32fb4cf266d219411f1c46a6d13c8dc748524ab7f27cba26088021453f18bf"
#define M_HEX "a6a9b69393df58fa71cdd17b49ebeaece0c2d3cb91a0f3c40e556603dae0af20"
#define B_HEX "2824c56ad8d82665c6ffa82f7304c50697a708a785e9f0f4d8c1c5009bdfbf12"

static void test_golden_bytes_and_digests(void)
{
	char m[SFS_DIGEST_SIZE];
	struct sfs_spec *s = parse_ok(golden_spec);
	if (!s)
		return;
	CHECK_EQ_STR(vertex(s, "src")->op_bytes,
		     "{\"exclude\":[],\"include\":[],\"op\":\"local\",\"path\":\"/src\","
		     "\"session\":\"7\"}");
	CHECK_EQ_STR(
	    vertex(s, "f")->op_bytes,
	    "{\"actions\":[{\"mkdir\":{\"mode\":\"0755\",\"parents\":false,\"path\":\"a\"}},"
	    "{\"mkfile\":{\"data_base64\":\"aGkK\",\"mode\":\"0644\",\"path\":\"a/b\"}},"
	    "{\"copy\":{\"dest\":\"y\",\"exclude\":[],\"from\":\"sha256:" SRC_HEX ":0\","
	    "\"include\":[],\"src\":\"x\"}},"
	    "{\"rm\":{\"allow_not_found\":false,\"path\":\"z\"}},"
	    "{\"symlink\":{\"path\":\"l\",\"target\":\"../t\"}}],"
	    "\"base\":\"sha256:" SRC_HEX ":0\",\"op\":\"file\"}");
	CHECK_EQ_STR(vertex(s, "e")->op_bytes,
		     "{\"args\":[\"sh\",\"-c\",\"true\"],\"cwd\":\"\",\"env\":{},\"mounts\":["
		     "{\"dest\":\"in\",\"input\":\"sha256:" F_HEX ":0\",\"output\":false,"
		     "\"readonly\":false,\"selector\":\"a/b\"},"
		     "{\"dest\":\"out\",\"input\":null,\"output\":true,\"readonly\":false,"
		     "\"selector\":\"\"}],\"network\":false,\"op\":\"exec\"}");
	CHECK_EQ_STR(vertex(s, "m")->op_bytes, "{\"inputs\":[\"sha256:" F_HEX ":0\",\"sha256:" E_HEX
					       ":0\"],\"op\":\"merge\"}");
	CHECK_EQ_STR(vertex(s, "b")->op_bytes,
		     "{\"input\":\"sha256:" M_HEX ":0\",\"op\":\"build\",\"output\":\"\","
		     "\"path\":\"solverfs.json\"}");
	CHECK_EQ_INT(vertex(s, "b")->op_len, strlen(vertex(s, "b")->op_bytes));

	CHECK_EQ_STR(digest_of(s, "src"), "sha256:" SRC_HEX);
	CHECK_EQ_STR(digest_of(s, "f"), "sha256:" F_HEX);
	CHECK_EQ_STR(digest_of(s, "e"), "sha256:" E_HEX);
	CHECK_EQ_STR(digest_of(s, "m"), "sha256:" M_HEX);
	CHECK_EQ_STR(digest_of(s, "b"), "sha256:" B_HEX);

	/* Cache maps: refs as input indexes, no selector, no session. */
	CHECK_EQ_STR(map_text(vertex(s, "src"), m),
		     "sha256:cc32a19b005b2fd7c0fc5f2458ea5fd7b9fd971bd1ba48587404e36eb462a559");
	CHECK_EQ_STR(map_text(vertex(s, "f"), m),
		     "sha256:079153204bbd0b0561d715291e23f9f240442be75f21331efa8f6f4b586b9a39");
	CHECK_EQ_STR(map_text(vertex(s, "e"), m),
		     "sha256:a3ff299a207be71603d275e463a4ba073699f9730c3b5302fae8f0d0b93a90d5");
	CHECK_EQ_STR(map_text(vertex(s, "m"), m),
		     "sha256:cdbc2a5f9e5829c5ae1c249c5d3b7b00e6d844600b5c72ccc22c135946a2329e");
	CHECK_EQ_STR(map_text(vertex(s, "b"), m),
		     "sha256:a8ee51328c483dbb092d368a551a3950273905db927030bc0e82ab18c05d2aa4");
	sfs_spec_free(s);
}

/* Refs whose places in the canonical bytes are not in the order they were met
 * (file: base after actions; exec: mounts then rootfs; an input shared or
 * repeated): the digests the parser gave before its op trees became templates
 * with holes (computed with solverfs at ba27609, where each tree was written
 * and hashed whole). */
static void test_golden_refs_out_of_order(void)
{
	struct sfs_spec *s = parse_ok(
	    "{\"vertices\":{"
	    "\"src\":{\"op\":\"local\",\"path\":\"/tmp//x/./y/\",\"include\":[\"*.c\"],"
	    "\"exclude\":[\"b*\"]},"
	    "\"f\":{\"op\":\"file\",\"base\":\"src\",\"actions\":["
	    "{\"copy\":{\"from\":\"src\",\"src\":\"a/b\",\"dest\":\"c\"}},"
	    "{\"copy\":{\"from\":\"src\",\"src\":\"a/b\"}},{\"copy\":{\"from\":\"src\",\"src\":\"z\"}},"
	    "{\"mkfile\":{\"path\":\"q\",\"data\":\"\\u0001\\u001f\xc3\xa9\\n\\\"\\\\\"}},"
	    "{\"mkdir\":{\"path\":\"d/e\",\"mode\":\"700\",\"parents\":true}},"
	    "{\"symlink\":{\"target\":\"../x\",\"path\":\"l\"}},"
	    "{\"rm\":{\"path\":\"zz\",\"allow_not_found\":true}}]},"
	    "\"g\":{\"op\":\"file\",\"actions\":[{\"copy\":{\"from\":\"f\",\"src\":\"q\"}},"
	    "{\"copy\":{\"from\":\"src\",\"src\":\"k\"}}]},"
	    "\"e\":{\"op\":\"exec\",\"args\":[\"sh\",\"-c\",\"echo hi\"],"
	    "\"env\":{\"selector\":\"1\",\"B\":\"2\",\"A\":\"x\"},\"cwd\":\"w\",\"mounts\":["
	    "{\"dest\":\"\",\"input\":\"g\",\"output\":true},"
	    "{\"dest\":\"s\",\"input\":\"f\",\"selector\":\"d/e\",\"readonly\":true},"
	    "{\"dest\":\"t\",\"input\":\"f\",\"selector\":\"q\"},{\"dest\":\"o\",\"output\":true}],"
	    "\"rootfs\":\"g\",\"timeout\":5,\"name\":\"ex\",\"description\":{\"a\":\"b\"}},"
	    "\"m\":{\"op\":\"merge\",\"inputs\":[\"e\",\"e:1\",\"g\",\"e\"]}"
	    "},\"outputs\":[\"m\",\"e:1\"]}");
	static const char *const want[][3] = {
	    {"src", "8a7927dbf737fb1afe20b99fde90fff644115399f192cd543ee4a48c48bf1bef",
	     "2ab2c908721a3786ab9dd6c6e0510fbcf68312968624039724f719d203ff83bf"},
	    {"f", "54fafd55f0098543184d769b60a028709fb20b7e003b9098a68a4d919bb2faa5",
	     "b45804d6ff377a043a48860d2036202da635d2eec55e5b3b52392f472bbc5fb7"},
	    {"g", "667a03bd719d0fdded450d0ec6757bce2166abc10e779f2a05b62b435c441989",
	     "77c9be0f550a45b7dcdf6fef75255c31655bc054ccb94f52545b2c743d0b47f2"},
	    {"e", "8a011be7ac70634ce0338f7e2f6d7e23a2ae162c89e849aed80cbc6dc2be507e",
	     "4ed2b49ff5cdf189eaa25cbb0dd39be35e915f5b8da8db460e0cc3d1b88161f3"},
	    {"m", "02f67d30589c4297c5d83b8194f78ff8082d5206a7750e7ed9960cc45131cac8",
	     "f15b7679c7be33b57858e741272d10a2a59343148ccb55d6dec72799ee9459c1"},
	};
	char d[SFS_DIGEST_SIZE], m[SFS_DIGEST_SIZE];

	if (!s)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		const struct sfs_spec_vertex *v = vertex(s, want[i][0]);
		CHECK(strncmp(v->digest, "sha256:", 7) == 0);
		CHECK_EQ_STR(v->digest + 7, want[i][1]);
		CHECK_EQ_STR(map_text(v, m) + 7, want[i][2]);
		sfs_sha256_digest(v->op_bytes, v->op_len, d);
		CHECK_EQ_STR(d, v->digest);
	}
	CHECK_EQ_INT(vertex(s, "f")->ninputs, 1);
	CHECK_EQ_INT(vertex(s, "e")->ninputs, 4);
	CHECK_EQ_INT(vertex(s, "m")->ninputs, 4);
	CHECK_EQ_STR(vertex(s, "e")->name, "ex");
	CHECK(vertex(s, "f")->name == vertex(s, "f")->key); /* the default: one string */
	sfs_spec_free(s);
}

/* jansson values made outside a parse (on the heap, not in its arena) may be
 * made before and freed after one, or freed while one runs on another
 * thread: the parse's allocator hands them to malloc's free. */
static void *parse_in_thread(void *arg)
{
	sfs_spec_free(parse_ok(arg));
	return NULL;
}

static void test_json_outside_the_parse(void)
{
	json_t *before = json_pack("{s:[s,i]}", "k", "a string long enough to be its own block", 1);
	pthread_t t;

	CHECK(before != NULL);
	CHECK_EQ_INT(pthread_create(&t, NULL, parse_in_thread, (void *)golden_spec), 0);
	json_t *during = json_pack("{s:s}", "x", "made while another thread parses");
	json_decref(before);
	pthread_join(t, NULL);
	sfs_spec_free(parse_ok(golden_spec));
	CHECK_EQ_STR(json_string_value(json_object_get(during, "x")),
		     "made while another thread parses");
	json_decref(during);
}

static void test_golden_escaping(void)
{
	/* A control char as \u001f (lowercase, RFC 8785), \t short, "/" and UTF-8 as is. */
	struct sfs_spec *s =
	    parse_ok("{\"vertices\": {\"x\": {\"op\": \"exec\","
		     " \"args\": [\"echo\", \"\\u00e9\\u001f\\t\\\"\\\\\\/\"],"
		     " \"env\": {\"Z\": \"1\", \"A\": \"\xc3\xbc\"},"
		     " \"mounts\": [{\"dest\": \"o\", \"output\": true}]}}, \"outputs\": [\"x\"]}");
	if (!s)
		return;
	CHECK_EQ_STR(s->v[0].op_bytes,
		     "{\"args\":[\"echo\",\"\xc3\xa9\\u001f\\t\\\"\\\\/\"],\"cwd\":\"\","
		     "\"env\":{\"A\":\"\xc3\xbc\",\"Z\":\"1\"},\"mounts\":[{\"dest\":\"o\","
		     "\"input\":null,\"output\":true,\"readonly\":false,\"selector\":\"\"}],"
		     "\"network\":false,\"op\":\"exec\"}");
	CHECK_EQ_STR(s->v[0].digest,
		     "sha256:f1835b52717d0d65689aefa88720ba27d96161b431dd528582cc3c5264d6cfb1");
	sfs_spec_free(s);
}

static void test_canonical_json(void)
{
	json_t *j = json_pack("{s:i, s:[s, b, n], s:{}}", "b", -3, "a", "x\x01\x7f", 1, "A");
	size_t len = 0;
	char *c = sfs_canonical_json(j, &len);
	CHECK_EQ_STR(c, "{\"A\":{},\"a\":[\"x\\u0001\x7f\",true,null],\"b\":-3}");
	CHECK_EQ_INT(len, c ? strlen(c) : 0);
	free(c);
	json_decref(j);
}

/* ---- topology, inputs, selectors ---- */

static void test_topological_order(void)
{
	struct sfs_spec *s = parse_ok(golden_spec);
	if (!s)
		return;
	/* Ties broken bytewise by key: src first (the only root), then f, e, m, b. */
	const char *want[] = {"src", "f", "e", "m", "b"};
	CHECK_EQ_INT(s->n, 5);
	for (size_t i = 0; i < 5 && i < s->n; i++)
		CHECK_EQ_STR(s->v[i].key, want[i]);
	for (size_t i = 0; i < s->n; i++)
		for (size_t k = 0; k < s->v[i].ninputs; k++)
			CHECK(s->v[i].inputs[k].ref.vertex < i);
	CHECK_EQ_INT(s->noutputs, 1);
	CHECK_EQ_INT(s->outputs[0].vertex, 4);
	CHECK_EQ_STR(s->output_refs[0], "b");
	CHECK_EQ_INT(s->export_mode, SFS_EXPORT_NONE);

	/* Independent roots come out in key order. */
	struct sfs_spec *t = parse_ok("{\"vertices\": {\"z\": {\"op\": \"file\"},"
				      " \"a\": {\"op\": \"file\"}, \"m\": {\"op\": \"file\"}},"
				      " \"outputs\": [\"z\", \"a:0\"]}");
	if (t) {
		CHECK_EQ_STR(t->v[0].key, "a");
		CHECK_EQ_STR(t->v[1].key, "m");
		CHECK_EQ_STR(t->v[2].key, "z");
		CHECK_EQ_STR(t->output_refs[1], "a");
		CHECK_EQ_INT(t->outputs[1].vertex, 0);
		/* Identical content: same digest, both kept. */
		CHECK_EQ_STR(t->v[0].digest, t->v[2].digest);
	}
	sfs_spec_free(t);
	sfs_spec_free(s);
}

static void test_inputs_and_selectors(void)
{
	struct sfs_spec *s = parse_ok(golden_spec);
	if (!s)
		return;
	const struct sfs_spec_vertex *f = vertex(s, "f"), *e = vertex(s, "e"), *m = vertex(s, "m");
	/* base and copy share one input; the base makes it whole. */
	CHECK_EQ_INT(f->ninputs, 1);
	CHECK_EQ_STR(f->inputs[0].selector, "");
	CHECK_EQ_STR(f->inputs[0].selector_digest, "");
	CHECK(f->inputs[0].content_func);
	CHECK_EQ_INT(e->ninputs, 1);
	CHECK_EQ_STR(e->inputs[0].selector, "a/b");
	CHECK_EQ_STR(e->inputs[0].selector_digest,
		     "sha256:c14cddc033f64b9dea80ea675cf280a015e672516090a5626781153dc68fea11");
	CHECK_EQ_INT(e->noutputs, 1);
	CHECK_EQ_INT(m->ninputs, 2);
	CHECK_EQ_STR(s->v[m->inputs[0].ref.vertex].key, "f");
	CHECK_EQ_STR(s->v[m->inputs[1].ref.vertex].key, "e");
	CHECK_EQ_STR(vertex(s, "src")->summary, "local /src");
	CHECK_EQ_STR(f->summary,
		     "file mkdir /a, mkfile /a/b, copy /x /y, rm /z, symlink /l -> ../t");
	CHECK_EQ_STR(e->summary, "sh -c true");
	CHECK_EQ_STR(m->summary, "merge 2 inputs");
	CHECK_EQ_STR(vertex(s, "b")->summary, "build /solverfs.json");
	sfs_spec_free(s);

	/* Copies only: selectors sorted, NUL-joined, deduplicated; no base. */
	s = parse_ok("{\"vertices\": {\"g\": {\"op\": \"file\"}, \"h\": {\"op\": \"file\"},"
		     " \"f\": {\"op\": \"file\", \"actions\": ["
		     "  {\"copy\": {\"from\": \"h\", \"src\": \"x\"}},"
		     "  {\"copy\": {\"from\": \"g\", \"src\": \"q\"}},"
		     "  {\"copy\": {\"from\": \"h:0\", \"src\": \"a\"}},"
		     "  {\"copy\": {\"from\": \"h\", \"src\": \"x\", \"dest\": \"d\"}}]}},"
		     " \"outputs\": [\"f\"]}");
	if (!s)
		return;
	f = vertex(s, "f");
	/* g and h have the same digest: one input, used through a, q and x. */
	CHECK_EQ_INT(f->ninputs, 1);
	CHECK_EQ_INT(f->inputs[0].selector_len, 5);
	CHECK(memcmp(f->inputs[0].selector, "a\0q\0x", 5) == 0);
	sfs_spec_free(s);

	s = parse_ok("{\"vertices\": {\"g\": {\"op\": \"file\"},"
		     " \"h\": {\"op\": \"file\", \"actions\": [{\"mkdir\": {\"path\": \"d\"}}]},"
		     " \"f\": {\"op\": \"file\", \"actions\": ["
		     "  {\"copy\": {\"from\": \"h\", \"src\": \"x\"}},"
		     "  {\"copy\": {\"from\": \"g\", \"src\": \"q\"}},"
		     "  {\"copy\": {\"from\": \"h\", \"src\": \"a\"}}]}},"
		     " \"outputs\": [\"f\"]}");
	if (!s)
		return;
	f = vertex(s, "f");
	CHECK_EQ_INT(f->ninputs, 2);
	CHECK_EQ_STR(s->v[f->inputs[0].ref.vertex].key, "h");
	CHECK_EQ_INT(f->inputs[0].selector_len, 3);
	CHECK(memcmp(f->inputs[0].selector, "a\0x", 4) == 0);
	CHECK_EQ_STR(f->inputs[0].selector_digest,
		     "sha256:8b86bced10290476e3cbf7ec75ec99dc5afd02120997525be1c62db47aa5c524");
	CHECK_EQ_STR(s->v[f->inputs[1].ref.vertex].key, "g");
	CHECK_EQ_STR(f->inputs[1].selector, "q");
	sfs_spec_free(s);

	/* exec: one input per mount with an input, even for the same ref; an output
	 * mount starting from an input has no content function. */
	s = parse_ok("{\"vertices\": {\"g\": {\"op\": \"file\"},"
		     " \"e\": {\"op\": \"exec\", \"args\": [\"x\"], \"mounts\": ["
		     "  {\"dest\": \"a\", \"input\": \"g\"},"
		     "  {\"dest\": \"s\", \"output\": true},"
		     "  {\"dest\": \"b\", \"input\": \"g\", \"output\": true}]},"
		     " \"u\": {\"op\": \"merge\", \"inputs\": [\"e:0\", \"e:1\"]}},"
		     " \"outputs\": [\"u\"]}");
	if (!s)
		return;
	const struct sfs_spec_vertex *x = vertex(s, "e");
	CHECK_EQ_INT(x->ninputs, 2);
	CHECK_EQ_INT(x->noutputs, 2);
	CHECK(x->inputs[0].content_func);
	CHECK(!x->inputs[1].content_func);
	CHECK_EQ_STR(x->inputs[1].selector, "");
	const struct sfs_spec_vertex *u = vertex(s, "u");
	CHECK_EQ_INT(u->inputs[1].ref.output, 1);
	char *r0 = sfs_ref_string(s, u->inputs[0].ref), *r1 = sfs_ref_string(s, u->inputs[1].ref);
	CHECK_EQ_STR(r0, "e");
	CHECK_EQ_STR(r1, "e:1");
	free(r0);
	free(r1);
	CHECK(strstr(u->op_bytes, ":1\"]") != NULL);
	sfs_spec_free(s);
}

/* ---- what is and is not hashed ---- */

static void test_data_and_base64_hash_the_same(void)
{
	struct sfs_spec *a = parse_ok("{\"vertices\": {\"f\": {\"op\": \"file\", \"actions\": ["
				      "{\"mkfile\": {\"path\": \"p\", \"data\": \"hello\\n\"}}]}},"
				      " \"outputs\": [\"f\"]}");
	struct sfs_spec *b = parse_ok("{\"vertices\": {\"f\": {\"op\": \"file\", \"actions\": ["
				      "{\"mkfile\": {\"path\": \"p\", \"data_base64\": "
				      "\"aGVsbG8K\", \"mode\": \"644\"}}]}},"
				      " \"outputs\": [\"f\"]}");
	if (a && b) {
		CHECK_EQ_STR(a->v[0].digest, b->v[0].digest);
		CHECK(strstr(a->v[0].op_bytes, "\"data\"") == NULL);
	}
	sfs_spec_free(a);
	sfs_spec_free(b);
}

/* A NUL in mkfile data is a byte of the file, as in data_base64. */
static void test_data_with_nul(void)
{
	struct sfs_spec *a = parse_ok("{\"vertices\": {\"f\": {\"op\": \"file\", \"actions\": ["
				      "{\"mkfile\": {\"path\": \"p\", \"data\": \"a\\u0000b\"}}]}},"
				      " \"outputs\": [\"f\"]}");
	struct sfs_spec *b = parse_ok("{\"vertices\": {\"f\": {\"op\": \"file\", \"actions\": ["
				      "{\"mkfile\": {\"path\": \"p\", \"data_base64\": "
				      "\"YQBi\"}}]}}, \"outputs\": [\"f\"]}");
	if (a && b)
		CHECK_EQ_STR(a->v[0].digest, b->v[0].digest);
	sfs_spec_free(a);
	sfs_spec_free(b);
}

#define EXEC_SPEC(extra, arg)                                                                      \
	"{\"vertices\": {\"e\": {\"op\": \"exec\", \"args\": [\"sh\", \"" arg "\"],"               \
	" \"mounts\": [{\"dest\": \"o\", \"output\": true}]" extra "}}, \"outputs\": [\"e\"]}"

static void test_unhashed_fields(void)
{
	struct sfs_spec *a = parse_ok(EXEC_SPEC("", "x"));
	struct sfs_spec *b = parse_ok(EXEC_SPEC(", \"name\": \"compile\", \"timeout\": 30,"
						" \"description\": {\"k\": \"v\"},"
						" \"ignore_cache\": true, \"export_cache\": false,"
						" \"cache_from\": [\"/var/cache/x\"]",
						"x"));
	struct sfs_spec *c = parse_ok(EXEC_SPEC("", "y"));
	if (!a || !b || !c)
		goto out;
	CHECK_EQ_STR(a->v[0].digest, b->v[0].digest);
	CHECK(sfs_dgst_eq(&a->v[0].cache_map_digest, &b->v[0].cache_map_digest));
	CHECK(strcmp(a->v[0].digest, c->v[0].digest) != 0);
	CHECK(!sfs_dgst_eq(&a->v[0].cache_map_digest, &c->v[0].cache_map_digest));
	CHECK_EQ_STR(a->v[0].name, "e");
	CHECK_EQ_INT(a->v[0].export_cache, -1);
	CHECK(a->v[0].description == NULL);
	CHECK(a->v[0].cache_from == NULL);
	CHECK_EQ_STR(b->v[0].name, "compile");
	CHECK_EQ_INT(b->v[0].timeout, 30);
	CHECK(b->v[0].ignore_cache);
	CHECK_EQ_INT(b->v[0].export_cache, 0);
	CHECK_EQ_STR(json_string_value(json_object_get(b->v[0].description, "k")), "v");
	CHECK(b->v[0].cache_from && b->v[0].cache_from[0] && !b->v[0].cache_from[1]);
	CHECK_EQ_STR(b->v[0].cache_from[0], "/var/cache/x");
out:
	sfs_spec_free(a);
	sfs_spec_free(b);
	sfs_spec_free(c);
}

/* Selectors leave the cache map; an env variable named "selector" does not. */
static void test_cache_map_selector(void)
{
#define SEL_SPEC(sel, env)                                                                         \
	"{\"vertices\": {\"g\": {\"op\": \"file\"}, \"e\": {\"op\": \"exec\", \"args\": [\"x\"],"  \
	" \"env\": {\"selector\": \"" env "\"}, \"mounts\": [{\"dest\": \"i\", \"input\": \"g\","  \
	" \"selector\": \"" sel                                                                    \
	"\"}, {\"dest\": \"o\", \"output\": true}]}}, \"outputs\": [\"e\"]}"
	struct sfs_spec *a = parse_ok(SEL_SPEC("a", "1")), *b = parse_ok(SEL_SPEC("b", "1"));
	struct sfs_spec *c = parse_ok(SEL_SPEC("a", "2"));
	if (a && b && c) {
		CHECK(strcmp(digest_of(a, "e"), digest_of(b, "e")) != 0);
		CHECK(sfs_dgst_eq(&vertex(a, "e")->cache_map_digest,
				  &vertex(b, "e")->cache_map_digest));
		CHECK(!sfs_dgst_eq(&vertex(a, "e")->cache_map_digest,
				   &vertex(c, "e")->cache_map_digest));
		CHECK(strcmp(vertex(a, "e")->inputs[0].selector_digest,
			     vertex(b, "e")->inputs[0].selector_digest) != 0);
	}
	sfs_spec_free(a);
	sfs_spec_free(b);
	sfs_spec_free(c);
}

static void test_session(void)
{
	const char *j = "{\"vertices\": {\"s\": {\"op\": \"local\", \"path\": \"/x//y/\"}},"
			" \"outputs\": [\"s\"]}";
	struct sfs_spec_ctx c7 = ctx_default(), c8 = ctx_default();
	struct sfs_spec *a = NULL, *b = NULL;
	char *msg = NULL;
	c8.session = 8;
	CHECK_EQ_INT(parse_ctx(j, &c7, &a, &msg), 0);
	free(msg);
	CHECK_EQ_INT(parse_ctx(j, &c8, &b, &msg), 0);
	free(msg);
	if (a && b) {
		CHECK(strcmp(a->v[0].digest, b->v[0].digest) != 0);
		CHECK(sfs_dgst_eq(&a->v[0].cache_map_digest, &b->v[0].cache_map_digest));
		CHECK(strstr(b->v[0].op_bytes, "\"session\":\"8\"") != NULL);
		CHECK(strstr(b->v[0].op_bytes, "\"path\":\"/x/y\"") != NULL);
	}
	sfs_spec_free(a);
	sfs_spec_free(b);
}

static void test_job_options(void)
{
	struct sfs_spec *s =
	    parse_ok("{\"vertices\": {\"a\": {\"op\": \"file\"}}, \"outputs\": [\"a\"],"
		     " \"export\": {\"mode\": \"max\", \"form\": \"manifest-list\"},"
		     " \"cache_from\": [\"/c1\", \"/c2/\"], \"ignore_cache\": true}");
	if (s) {
		CHECK_EQ_INT(s->export_mode, SFS_EXPORT_MAX);
		CHECK_EQ_INT(s->export_form, SFS_FORM_MANIFEST_LIST);
		CHECK(s->ignore_cache);
		CHECK_EQ_STR(s->cache_from[0], "/c1");
		CHECK_EQ_STR(s->cache_from[1], "/c2");
		CHECK(s->cache_from[2] == NULL);
		CHECK(sfs_spec_ref(s) == s);
		CHECK_EQ_INT(s->refs, 2);
		sfs_spec_free(s);
		CHECK_EQ_INT(s->refs, 1);
	}
	sfs_spec_free(s);
	s = parse_ok("{\"vertices\": {\"a\": {\"op\": \"file\"}}, \"outputs\": [\"a\"],"
		     " \"export\": {}}");
	if (s) {
		CHECK_EQ_INT(s->export_mode, SFS_EXPORT_MIN);
		CHECK_EQ_INT(s->export_form, SFS_FORM_IMAGE);
	}
	sfs_spec_free(s);
	CHECK(sfs_spec_free(NULL) == NULL);
	CHECK_EQ_STR(sfs_op_kind_name(SFS_OP_MERGE), "merge");
}

static void test_context_allows(void)
{
	struct sfs_spec_ctx ctx = ctx_default();
	struct sfs_spec *s = NULL;
	char *msg = NULL;

	ctx.allow_network = true;
	CHECK_EQ_INT(
	    parse_ctx("{\"vertices\": {\"g\": {\"op\": \"file\"}, \"e\": {\"op\": \"exec\","
		      " \"args\": [\"x\"], \"network\": true, \"cwd\": \"a/b\", \"mounts\": ["
		      " {\"dest\": \"\", \"input\": \"g\", \"output\": true}]},"
		      " \"b\": {\"op\": \"build\", \"input\": \"e\", \"path\": \"d/s.json\","
		      " \"output\": \"out:1\"}}, \"outputs\": [\"b\"]}",
		      &ctx, &s, &msg),
	    0);
	if (s) {
		CHECK(strstr(vertex(s, "e")->op_bytes, "\"network\":true") != NULL);
		CHECK(strstr(vertex(s, "e")->op_bytes, "\"cwd\":\"a/b\"") != NULL);
		CHECK_EQ_STR(vertex(s, "b")->summary, "build /d/s.json");
		CHECK(strstr(vertex(s, "b")->op_bytes, "\"output\":\"out:1\"") != NULL);
	}
	sfs_spec_free(s);
	free(msg);
}

/* ---- rejections ---- */

struct bad {
	const char *json;
	const char *want1, *want2; /* substrings of the message */
};

#define V1(vjson) "{\"vertices\": {\"v\": " vjson "}, \"outputs\": [\"v\"]}"
#define FILEV(act) V1("{\"op\": \"file\", \"actions\": [" act "]}")
#define EXECV(mount) V1("{\"op\": \"exec\", \"args\": [\"x\"], \"mounts\": [" mount "]}")

static const struct bad bads[] = {
    {"{\"vertices\": ", "invalid JSON", "line 1"},
    {"[1, 2]", "JSON object", NULL},
    {"{\"vertices\": {\"a\": {\"op\": \"file\"}, \"a\": {\"op\": \"file\"}},"
     " \"outputs\": [\"a\"]}",
     "invalid JSON", "duplicate"},
    {V1("{\"op\": \"frobnicate\"}"), "vertex \"v\"", "field \"op\": unknown op"},
    {V1("[\"file\"]"), "vertex \"v\": a vertex must be an object", NULL},
    {V1("{\"path\": \"/x\"}"), "vertex \"v\"", "field \"op\": is required"},
    {V1("{\"op\": \"local\", \"path\": \"/x\", \"colour\": 1}"), "vertex \"v\"",
     "field \"colour\": unknown field"},
    {V1("{\"op\": \"local\", \"path\": \"/x\", \"args\": [\"a\"]}"), "vertex \"v\"",
     "field \"args\": unknown field"},
    {FILEV("{\"mkdir\": {\"path\": \"a\", \"owner\": 0}}"), "vertex \"v\"",
     "field \"actions[0].mkdir.owner\": unknown field"},
    {FILEV("{\"chmod\": {\"path\": \"a\"}}"), "vertex \"v\"",
     "field \"actions[0].chmod\": unknown action"},
    {FILEV("{\"mkdir\": {\"path\": \"a\"}, \"rm\": {\"path\": \"a\"}}"), "vertex \"v\"",
     "field \"actions[0]\""},
    {EXECV("{\"dest\": \"o\", \"output\": true, \"tmpfs\": true}"), "vertex \"v\"",
     "field \"mounts[0].tmpfs\": unknown field"},
    {"{\"vertices\": {\"v\": {\"op\": \"file\"}}, \"outputs\": [\"v\"], \"export\":"
     " {\"mode\": \"min\", \"ttl\": 1}}",
     "field \"export.ttl\": unknown field", NULL},
    {"{\"vertices\": {\"v\": {\"op\": \"file\"}}, \"outputs\": [\"v\"], \"extra\": 1}",
     "field \"extra\": unknown field", NULL},
    {V1("{\"op\": \"file\", \"actions\": {}}"), "vertex \"v\"", "field \"actions\""},
    {V1("{\"op\": \"file\", \"name\": 3}"), "vertex \"v\"", "field \"name\": must be a string"},
    {V1("{\"op\": \"file\", \"ignore_cache\": \"yes\"}"), "vertex \"v\"", "field \"ignore_cache\""},
    {V1("{\"op\": \"file\", \"description\": {\"a\": 1}}"), "vertex \"v\"",
     "field \"description.a\""},
    {FILEV("{\"mkdir\": {\"path\": \"a\", \"parents\": 1}}"), "vertex \"v\"",
     "field \"actions[0].mkdir.parents\""},
    {V1("{\"op\": \"exec\", \"mounts\": []}"), "vertex \"v\"", "field \"args\": is required"},
    {V1("{\"op\": \"exec\", \"args\": []}"), "vertex \"v\"", "field \"args\": must be a non-empty"},
    {V1("{\"op\": \"exec\", \"args\": [\"a\", 3]}"), "vertex \"v\"", "field \"args\""},
    {V1("{\"op\": \"exec\", \"args\": [\"a\"], \"env\": {\"A=B\": \"c\"}}"), "vertex \"v\"",
     "field \"env.A=B\""},
    {V1("{\"op\": \"exec\", \"args\": [\"a\"], \"timeout\": -1}"), "vertex \"v\"",
     "field \"timeout\""},
    {V1("{\"op\": \"local\"}"), "vertex \"v\"", "field \"path\": is required"},
    {FILEV("{\"mkdir\": {}}"), "vertex \"v\"", "field \"actions[0].mkdir.path\": is required"},
    {FILEV("{\"copy\": {\"src\": \"a\"}}"), "vertex \"v\"",
     "field \"actions[0].copy.from\": is required"},
    {"{\"vertices\": {\"bad key\": {\"op\": \"file\"}}, \"outputs\": [\"bad key\"]}",
     "vertex \"bad key\": invalid name", NULL},
    {"{\"vertices\": {\".dot\": {\"op\": \"file\"}}, \"outputs\": [\".dot\"]}",
     "vertex \".dot\": invalid name", NULL},
    {V1("{\"op\": \"file\", \"base\": \"nope\"}"), "vertex \"v\"",
     "field \"base\": no vertex \"nope\""},
    {V1("{\"op\": \"merge\", \"inputs\": [\"v2\", \"v2:1\"]}"), "vertex \"v\"", "no vertex \"v2\""},
    {"{\"vertices\": {\"a\": {\"op\": \"file\"}, \"v\": {\"op\": \"merge\","
     " \"inputs\": [\"a\", \"a:1\"]}}, \"outputs\": [\"v\"]}",
     "vertex \"v\": field \"inputs[1]\"", "no output 1"},
    {"{\"vertices\": {\"a\": {\"op\": \"file\"}}, \"outputs\": [\"a:2\"]}", "field \"outputs[0]\"",
     "no output 2"},
    {"{\"vertices\": {\"a\": {\"op\": \"file\"}}, \"outputs\": [\"b\"]}", "field \"outputs[0]\"",
     "no vertex \"b\""},
    {FILEV("{\"mkdir\": {\"path\": \"a/../b\"}}"), "field \"actions[0].mkdir.path\"", ".."},
    {FILEV("{\"mkdir\": {\"path\": \"./b\"}}"), "field \"actions[0].mkdir.path\"", "."},
    {FILEV("{\"mkdir\": {\"path\": \"a//b\"}}"), "field \"actions[0].mkdir.path\"", "empty"},
    {FILEV("{\"mkdir\": {\"path\": \"a/\"}}"), "field \"actions[0].mkdir.path\"", "empty"},
    {FILEV("{\"mkdir\": {\"path\": \"/abs\"}}"), "field \"actions[0].mkdir.path\"", "relative"},
    {FILEV("{\"mkdir\": {\"path\": \"\"}}"), "field \"actions[0].mkdir.path\"", "empty"},
    {EXECV("{\"dest\": \"../o\", \"output\": true}"), "vertex \"v\"", "field \"mounts[0].dest\""},
    {V1("{\"op\": \"exec\", \"args\": [\"x\"], \"cwd\": \"/tmp\"}"), "vertex \"v\"",
     "field \"cwd\""},
    {FILEV("{\"mkdir\": {\"path\": \"a\", \"mode\": \"0789\"}}"), "vertex \"v\"",
     "field \"actions[0].mkdir.mode\""},
    {FILEV("{\"mkdir\": {\"path\": \"a\", \"mode\": \"17777\"}}"), "vertex \"v\"",
     "field \"actions[0].mkdir.mode\""},
    {FILEV("{\"mkdir\": {\"path\": \"a\", \"mode\": 493}}"), "vertex \"v\"",
     "field \"actions[0].mkdir.mode\""},
    {FILEV("{\"mkfile\": {\"path\": \"a\", \"data_base64\": \"aGk\"}}"), "vertex \"v\"",
     "field \"actions[0].mkfile.data_base64\": is not valid base64"},
    {FILEV("{\"mkfile\": {\"path\": \"a\", \"data_base64\": \"a=Gk\"}}"), "vertex \"v\"",
     "field \"actions[0].mkfile.data_base64\""},
    {FILEV("{\"mkfile\": {\"path\": \"a\", \"data_base64\": \"aG k\"}}"), "vertex \"v\"",
     "field \"actions[0].mkfile.data_base64\""},
    {FILEV("{\"mkfile\": {\"path\": \"a\", \"data\": \"x\", \"data_base64\": \"eA==\"}}"),
     "vertex \"v\"", "field \"actions[0].mkfile.data\""},
    {FILEV("{\"symlink\": {\"path\": \"a\", \"target\": \"\"}}"), "vertex \"v\"",
     "field \"actions[0].symlink.target\""},
    {V1("{\"op\": \"local\", \"path\": \"rel/dir\"}"), "vertex \"v\"",
     "field \"path\": must be an absolute host path"},
    {V1("{\"op\": \"file\", \"cache_from\": [\"rel\"]}"), "vertex \"v\"",
     "field \"cache_from[0]\": must be an absolute"},
    {"{\"vertices\": {\"v\": {\"op\": \"file\"}}, \"outputs\": [\"v\"], \"cache_from\": [\"x\"]}",
     "field \"cache_from[0]\": must be an absolute", NULL},
    {EXECV("{\"dest\": \"o\", \"selector\": \"a\"}"), "vertex \"v\"",
     "field \"mounts[0].selector\": needs an input"},
    {EXECV("{\"dest\": \"o\", \"output\": true}, {\"dest\": \"o\"}"), "vertex \"v\"",
     "field \"mounts[1].dest\""},
    {EXECV("{\"dest\": \"o\", \"output\": true, \"readonly\": true}"), "vertex \"v\"",
     "field \"mounts[0].readonly\""},
    {"{\"vertices\": {\"v\": {\"op\": \"file\"}}, \"outputs\": [\"v\"], \"export\":"
     " {\"mode\": \"all\"}}",
     "field \"export.mode\"", NULL},
    {"{\"vertices\": {\"v\": {\"op\": \"file\"}}, \"outputs\": [\"v\"], \"export\":"
     " {\"form\": \"tarball\"}}",
     "field \"export.form\"", NULL},
    {"{\"vertices\": {\"a\": {\"op\": \"file\"}, \"v\": {\"op\": \"merge\","
     " \"inputs\": [\"a\"]}}, \"outputs\": [\"v\"]}",
     "vertex \"v\": field \"inputs\"", "2 or more"},
    {"{\"vertices\": {\"v\": {\"op\": \"file\"}}, \"outputs\": []}", "field \"outputs\"", NULL},
    {"{\"vertices\": {\"v\": {\"op\": \"file\"}}}", "field \"outputs\": is required", NULL},
    {"{\"outputs\": [\"v\"]}", "field \"vertices\": is required", NULL},
    {"{\"vertices\": {\"e\": {\"op\": \"exec\", \"args\": [\"x\"]}}, \"outputs\": [\"e\"]}",
     "field \"outputs[0]\"", "no output 0"},
    {V1("{\"op\": \"build\", \"input\": \"v\", \"output\": \"a b\"}"), "vertex \"v\"",
     "field \"output\""},
    {V1("{\"op\": \"exec\", \"args\": [\"x\"], \"network\": true}"), "vertex \"v\"",
     "field \"network\""},
    {V1("{\"op\": \"file\", \"base\": \"v\"}"), "vertex \"v\": field \"base\"", "cycle"},
    /* an output index is canonical decimal: "a:01" is not a second name of "a:1" */
    {"{\"vertices\": {\"a\": {\"op\": \"exec\", \"args\": [\"x\"], \"mounts\": ["
     "{\"dest\": \"o\", \"output\": true}, {\"dest\": \"p\", \"output\": true}]},"
     " \"v\": {\"op\": \"file\", \"base\": \"a:01\"}}, \"outputs\": [\"v\"]}",
     "vertex \"v\": field \"base\"", "reference"},
    {"{\"vertices\": {\"a\": {\"op\": \"file\"}}, \"outputs\": [\"a:00\"]}",
     "field \"outputs[0]\"", "reference"},
    /* NUL is data in mkfile.data only; anywhere else it would cut a C string */
    {FILEV("{\"mkdir\": {\"path\": \"a\\u0000b\"}}"),
     "vertex \"v\": field \"actions[0].mkdir.path\"", "NUL"},
    {V1("{\"op\": \"file\\u0000\"}"), "vertex \"v\": field \"op\"", "NUL"},
    {V1("{\"op\": \"exec\", \"args\": [\"x\", \"a\\u0000\"]}"), "vertex \"v\": field \"args[1]\"",
     "NUL"},
    {"{\"vertices\": {\"a\": {\"op\": \"file\"}}, \"outputs\": [\"a\\u0000:1\"]}",
     "field \"outputs[0]\"", "NUL"},
    {"{\"vertices\": {\"a\": {\"op\": \"file\", \"n\\u0000\": 1}}, \"outputs\": [\"a\"]}",
     "invalid JSON", "NUL"},
    {"{\"vertices\": {\"a\": {\"op\": \"file\", \"name\": \"\xff\"}}, \"outputs\": [\"a\"]}",
     "invalid JSON", "not valid UTF-8: unable to decode byte 0xff"},
};

static void check_bad(const char *json, const struct sfs_spec_ctx *ctx, int want_err,
		      const char *want1, const char *want2)
{
	struct sfs_spec *s = NULL;
	char *msg = NULL;
	int r = parse_ctx(json, ctx, &s, &msg);
	if (r != want_err || !msg || (want1 && !strstr(msg, want1)) ||
	    (want2 && !strstr(msg, want2))) {
		fprintf(stderr, "  spec: %s\n  got %d \"%s\", want %d \"%s\" \"%s\"\n", json, r,
			msg ? msg : "(null)", want_err, want1 ? want1 : "", want2 ? want2 : "");
		tap_fail(__FILE__, __LINE__, "rejection");
	}
	CHECK(s == NULL);
	sfs_spec_free(s);
	free(msg);
}

static void test_rejections(void)
{
	struct sfs_spec_ctx ctx = ctx_default();
	for (size_t i = 0; i < ARRAY_SIZE(bads); i++)
		check_bad(bads[i].json, &ctx, -EINVAL, bads[i].want1, bads[i].want2);
}

static void test_context_rejections(void)
{
	struct sfs_spec_ctx ctx = ctx_default();
	char *mp = tap_tmpdir(), *link = NULL, *json = NULL;

	ctx.allow_local = false;
	check_bad(V1("{\"op\": \"local\", \"path\": \"/x\"}"), &ctx, -EINVAL, "vertex \"v\"",
		  "field \"op\": local is not allowed");
	ctx = ctx_default();

	/* Host paths resolving into the mount point, directly or through a symlink. */
	ctx.mountpoint = mp;
	CHECK(asprintf(&json, V1("{\"op\": \"local\", \"path\": \"%s/results/x\"}"), mp) > 0);
	check_bad(json, &ctx, -EINVAL, "vertex \"v\": field \"path\"",
		  "path is inside the solverfs mount");
	free(json);
	CHECK(asprintf(&json, V1("{\"op\": \"local\", \"path\": \"%s/../%s\"}"), mp,
		       strrchr(mp, '/') + 1) > 0);
	check_bad(json, &ctx, -EINVAL, "field \"path\"", "inside the solverfs mount");
	free(json);
	char *other = tap_tmpdir();
	CHECK(asprintf(&link, "%s/ln", other) > 0);
	CHECK(symlink(mp, link) == 0);
	CHECK(asprintf(&json, V1("{\"op\": \"file\", \"cache_from\": [\"%s/sub/dir\"]}"), link) >
	      0);
	check_bad(json, &ctx, -EINVAL, "field \"cache_from[0]\"", "inside the solverfs mount");
	free(json);
	CHECK(asprintf(&json,
		       "{\"vertices\": {\"v\": {\"op\": \"file\"}}, \"outputs\": [\"v\"],"
		       " \"cache_from\": [\"%s\"]}",
		       link) > 0);
	check_bad(json, &ctx, -EINVAL, "field \"cache_from[0]\"", "inside the solverfs mount");
	free(json);
	/* Beside the mount is fine. */
	CHECK(asprintf(&json, V1("{\"op\": \"local\", \"path\": \"%s-not/x\"}"), mp) > 0);
	struct sfs_spec *ok = NULL;
	char *msg = NULL;
	CHECK_EQ_INT(parse_ctx(json, &ctx, &ok, &msg), 0);
	sfs_spec_free(ok);
	free(msg);
	free(json);
	free(link);
}

static void test_limits(void)
{
	struct sfs_spec_limits lim = {
	    .max_bytes = 100, .max_vertices = 2, .max_path = 8, .max_inline = 4};
	struct sfs_spec_ctx ctx = ctx_default();
	ctx.limits = &lim;
	check_bad("{\"vertices\": {\"a\": {\"op\": \"file\"}, \"b\": {\"op\": \"file\"},"
		  " \"c\": {\"op\": \"file\"}},           \"outputs\": [\"a\"]}",
		  &ctx, -EFBIG, "larger than 100 bytes", NULL);
	lim.max_bytes = 1 << 20;
	check_bad("{\"vertices\": {\"a\": {\"op\": \"file\"}, \"b\": {\"op\": \"file\"},"
		  " \"c\": {\"op\": \"file\"}}, \"outputs\": [\"a\"]}",
		  &ctx, -E2BIG, "more than 2 vertices", NULL);
	/* the count comes after the JSON and the job's fields, before the keys */
	check_bad("{\"vertices\": {\"a\": {}, \"b\": {}, \"-c\": {}}, \"outputs\": [\"a\"]}", &ctx,
		  -E2BIG, "field \"vertices\": more than 2 vertices", NULL);
	check_bad("{\"vertices\": {\"a\": {}, \"b\": {}, \"c\": {}}, \"zz\": 1}", &ctx, -EINVAL,
		  "field \"zz\": unknown field", NULL);
	check_bad("{\"vertices\": {\"a\": {}, \"b\": {}, \"c\": [1,]}}", &ctx, -EINVAL,
		  "invalid JSON: line 1 column 41: unexpected token near ']'", NULL);
	check_bad("{\"vertices\": {\"a\": {}, \"b\": {}, \"a\": {}}}", &ctx, -EINVAL,
		  "invalid JSON", "duplicate object key");
	check_bad(FILEV("{\"mkdir\": {\"path\": \"abcdefghi\"}}"), &ctx, -EINVAL,
		  "field \"actions[0].mkdir.path\"", "longer than 8");
	check_bad(FILEV("{\"mkfile\": {\"path\": \"a\", \"data\": \"12345\"}}"), &ctx, -EFBIG,
		  "field \"actions[0].mkfile.data\"", "larger than 4");
	check_bad(FILEV("{\"mkfile\": {\"path\": \"a\", \"data_base64\": \"MTIzNDU=\"}}"), &ctx,
		  -EFBIG, "field \"actions[0].mkfile.data_base64\"", "larger than 4");
	struct sfs_spec *s = NULL;
	char *msg = NULL;
	CHECK_EQ_INT(
	    parse_ctx(FILEV("{\"mkfile\": {\"path\": \"a\", \"data_base64\": \"MTIzNA==\"}}"), &ctx,
		      &s, &msg),
	    0);
	sfs_spec_free(s);
	free(msg);
}

static void test_cycles(void)
{
	struct sfs_spec_ctx ctx = ctx_default();
	check_bad("{\"vertices\": {\"r\": {\"op\": \"file\"},"
		  " \"a\": {\"op\": \"merge\", \"inputs\": [\"r\", \"b\"]},"
		  " \"b\": {\"op\": \"file\", \"base\": \"c\"},"
		  " \"c\": {\"op\": \"exec\", \"args\": [\"x\"], \"mounts\": ["
		  "   {\"dest\": \"i\", \"input\": \"a\"}, {\"dest\": \"o\", \"output\": true}]},"
		  " \"d\": {\"op\": \"file\", \"base\": \"a\"}}, \"outputs\": [\"d\"]}",
		  &ctx, -EINVAL, "dependency cycle: a -> b -> c -> a",
		  "vertex \"a\": field \"inputs\"");
}

/* The parse loads one vertex's JSON at a time (spec.c, pass 1 streamed) and
 * gives up on the first thing it would reject, to find it again on the
 * document loaded whole: the messages, jansson's positions in the document and
 * the order of the checks are those of a parse of the whole document. */
static void check_msg(const char *json, int want_err, const char *want)
{
	struct sfs_spec_ctx ctx = ctx_default();
	struct sfs_spec *s = NULL;
	char *msg = NULL;
	int r = parse_ctx(json, &ctx, &s, &msg);

	if (r != want_err || !msg || strcmp(msg, want) != 0) {
		fprintf(stderr, "  spec: %s\n  got %d \"%s\", want %d \"%s\"\n", json, r,
			msg ? msg : "(null)", want_err, want);
		tap_fail(__FILE__, __LINE__, "message");
	}
	CHECK(s == NULL);
	sfs_spec_free(s);
	free(msg);
}

#define GOOD2                                                                                      \
	"{\"vertices\": {\"a\": {\"op\": \"file\", \"actions\": [{\"mkfile\": {\"path\": \"f\","   \
	" \"data\": \"x\"}}]}, \"b\": {\"op\": \"file\", \"base\": \"a\", \"actions\": []}},"      \
	" \"outputs\": [\"b\"]}"

static void test_streamed_messages(void)
{
	/* jansson's own errors, placed in the whole document */
	check_msg(GOOD2 "x", -EINVAL,
		  "invalid JSON: line 1 column 156: end of file expected near 'x'");
	check_msg(GOOD2 " {}", -EINVAL,
		  "invalid JSON: line 1 column 157: end of file expected near '{'");
	check_msg("{\n \"vertices\": {\n  \"a\": {\n   \"op\": \"file\",\n   \"colour\": 1,\n  }\n"
		  " },\n \"outputs\": [\"a\"]\n}\n",
		  -EINVAL, "invalid JSON: line 6 column 3: string or '}' expected near '}'");
	check_msg("{\"vertices\": {\"a\": {\"op\": \"file\"}, \"b\": {\"op\": \"file\", \"op\": 1}},"
		  " \"outputs\": [\"a\"]}",
		  -EINVAL, "invalid JSON: line 1 column 59: duplicate object key near '\"op\"'");
	check_msg("{\"vertices\": {\"a\": {\"op\": \"file\"}}, \"outputs\": [\"a\"],"
		  " \"outputs\": [\"a\"]}",
		  -EINVAL, "invalid JSON: line 1 column 63: duplicate object key near '\"outputs\"'");
	/* a syntax error comes first wherever it is, after a wrong vertex or field */
	check_msg("{\"vertices\": {\"a\": {\"op\": \"nope\"}, \"b\": {\"op\": \"file\", \"x\": [1,]}},"
		  " \"outputs\": [\"a\"]}",
		  -EINVAL, "invalid JSON: line 1 column 64: unexpected token near ']'");
	check_msg("{\"vertices\": {\"a\": {\"op\": \"file\"}}, \"outputs\": [\"a\"], \"q\": [1 2]}",
		  -EINVAL, "invalid JSON: line 1 column 63: ']' expected near '2'");
	/* the job's fields before the vertices, wherever they are written */
	check_msg("{\"vertices\": {\"a\": {\"op\": \"nope\"}}, \"outputs\": [\"a\"], \"zz\": 1}",
		  -EINVAL, "field \"zz\": unknown field");
	check_msg("{\"vertices\": [{\"op\": \"file\"}], \"outputs\": [\"a\"]}", -EINVAL,
		  "field \"vertices\": must be an object of vertices");
	check_msg("[" GOOD2 "]", -EINVAL, "a spec must be a JSON object");
	/* vertices in key order; a ref to a later vertex's output checked all the same */
	check_msg("{\"vertices\": {\"z\": {\"op\": \"nope\"}, \"b\": {\"op\": \"file\", \"colour\": 1},"
		  " \"a\": {\"op\": \"file\"}}, \"outputs\": [\"a\"]}",
		  -EINVAL, "vertex \"b\": field \"colour\": unknown field");
	check_msg("{\"vertices\": {\"a\": {\"op\": \"file\", \"base\": \"z:1\"}, \"z\": {\"op\": \"file\"}},"
		  " \"outputs\": [\"a\"]}",
		  -EINVAL, "vertex \"a\": field \"base\": vertex \"z\" has 1 output(s), no output 1");
	check_msg("{\"vertices\": {\"a\": {\"op\": \"merge\", \"inputs\": [\"z:5\", \"nope\"]},"
		  " \"z\": {\"op\": \"file\"}}, \"outputs\": [\"a\"]}",
		  -EINVAL,
		  "vertex \"a\": field \"inputs[0]\": vertex \"z\" has 1 output(s), no output 5");
	check_msg("{\"vertices\": {\"a\": {\"op\": \"merge\", \"inputs\": [\"z:5\", \"z\"]},"
		  " \"b\": {\"op\": \"nope\"}, \"z\": {\"op\": \"file\"}}, \"outputs\": [\"a\"]}",
		  -EINVAL,
		  "vertex \"a\": field \"inputs[0]\": vertex \"z\" has 1 output(s), no output 5");
	check_msg("{\"vertices\": {\"\\u0061\": {\"op\": \"file\"}, \"a\": {\"op\": \"file\"}},"
		  " \"outputs\": [\"a\"]}",
		  -EINVAL, "invalid JSON: line 1 column 43: duplicate object key near '\"a\"'");

	/* nesting: jansson's limit is the document's, not a vertex's */
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "{\"vertices\": {\"a\": {\"op\": \"file\", \"x\": ");
	for (int i = 0; i < 2046; i++)
		strbuf_addch(&sb, '[');
	for (int i = 0; i < 2046; i++)
		strbuf_addch(&sb, ']');
	strbuf_addstr(&sb, "}}, \"outputs\": [\"a\"]}");
	CHECK(!sb.oom);
	check_msg(sb.buf, -EINVAL,
		  "invalid JSON: line 1 column 2085: nested too deep: maximum parsing depth "
		  "reached near '['");
	strbuf_release(&sb);
}

/* A spec the parse cannot walk plainly (blanks, escaped keys, deep values) is
 * the same spec: same vertices, same digests. */
static void test_streamed_same_spec(void)
{
	struct sfs_spec *a = parse_ok(GOOD2);
	struct sfs_spec *b = parse_ok(
	    " \r\n{\n\t\"\\u0076ertices\" : {\"\\u0061\":{\"op\":\"file\",\"actions\":[{\"mkfile\":"
	    "{\"path\":\"f\",\"data\":\"x\"}}]} ,\n\"b\" :\t{\"op\":\"file\",\"base\":\"a\","
	    "\"actions\":[ ]}} ,\"outputs\":[\"b\"]\n}\n ");
	struct sfs_spec *c = parse_ok(
	    "{\"outputs\": [\"b\"], \"vertices\": {\"b\": {\"op\": \"file\", \"base\": \"a\","
	    " \"actions\": [], \"description\": {\"k\": \"}]\\\"{[\"}}, \"a\": {\"op\": \"file\","
	    " \"actions\": [{\"mkfile\": {\"path\": \"f\", \"data\": \"x\"}}]}}}");

	CHECK(a && b && c);
	if (a && b && c) {
		CHECK_EQ_INT(b->n, 2);
		CHECK_EQ_INT(c->n, 2);
		CHECK_EQ_STR(digest_of(b, "a"), digest_of(a, "a"));
		CHECK_EQ_STR(digest_of(b, "b"), digest_of(a, "b"));
		CHECK_EQ_STR(digest_of(c, "b"), digest_of(a, "b"));
		CHECK_EQ_STR(json_string_value(json_object_get(vertex(c, "b")->description, "k")),
			     "}]\"{[");
	}
	sfs_spec_free(a);
	sfs_spec_free(b);
	sfs_spec_free(c);
}

static void test_chain_100k(void)
{
	struct strbuf sb = STRBUF_INIT;
	const size_t n = 100000;
	struct timespec t0, t1;

	strbuf_addstr(&sb, "{\"vertices\": {\"v0\": {\"op\": \"local\", \"path\": \"/src\"}");
	for (size_t i = 1; i < n; i++)
		strbuf_addf(&sb,
			    ", \"v%zu\": {\"op\": \"file\", \"base\": \"v%zu\", \"actions\": "
			    "[{\"mkdir\": {\"path\": \"d%zu\"}}]}",
			    i, i - 1, i);
	strbuf_addf(&sb, "}, \"outputs\": [\"v%zu\"]}", n - 1);
	CHECK(!sb.oom);

	struct sfs_spec_ctx ctx = ctx_default();
	struct sfs_spec *s = NULL;
	char *msg = NULL;
	struct timespec c0, c1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	int r = sfs_spec_parse(sb.buf, sb.len, &ctx, &s, &msg);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	fprintf(stderr, "  # %zu vertices (%zu bytes) parsed in %.3f s (%.3f s CPU)\n", n, sb.len,
		secs, cpu);
	CHECK_EQ_INT(r, 0);
	/* the time is printed, not asserted: bench/solve-scale.sh measures it */
	if (s) {
		CHECK_EQ_INT(s->n, n);
		CHECK_EQ_STR(s->v[0].key, "v0");
		CHECK_EQ_STR(s->v[n - 1].key, "v99999");
		CHECK_EQ_INT(s->outputs[0].vertex, n - 1);
		CHECK_EQ_INT(s->v[500].inputs[0].ref.vertex, 499);
	}
	sfs_spec_free(s);
	free(msg);
	strbuf_release(&sb);
}

int main(void)
{
	RUN(test_golden_bytes_and_digests);
	RUN(test_golden_refs_out_of_order);
	RUN(test_json_outside_the_parse);
	RUN(test_golden_escaping);
	RUN(test_canonical_json);
	RUN(test_topological_order);
	RUN(test_inputs_and_selectors);
	RUN(test_data_and_base64_hash_the_same);
	RUN(test_data_with_nul);
	RUN(test_unhashed_fields);
	RUN(test_cache_map_selector);
	RUN(test_session);
	RUN(test_job_options);
	RUN(test_context_allows);
	RUN(test_rejections);
	RUN(test_context_rejections);
	RUN(test_limits);
	RUN(test_cycles);
	RUN(test_streamed_messages);
	RUN(test_streamed_same_spec);
	RUN(test_chain_100k);
	return tap_done();
}
