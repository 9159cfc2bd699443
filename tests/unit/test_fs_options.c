/* test_fs_options.c — the solverfs command line (fs/options.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "tap.h"

static int parse(int argc, char **argv, struct fs_opts *o, char **msg)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	int r = fs_opts_parse(&args, o, msg);

	fuse_opt_free_args(&args);
	return r;
}

static void test_sizes(void)
{
	uint64_t v = 0;

	CHECK_EQ_INT(fs_parse_size("0", &v), 0);
	CHECK_EQ_INT(v, 0);
	CHECK_EQ_INT(fs_parse_size("512", &v), 0);
	CHECK_EQ_INT(v, 512);
	CHECK_EQ_INT(fs_parse_size("4K", &v), 0);
	CHECK_EQ_INT(v, 4096);
	CHECK_EQ_INT(fs_parse_size("16M", &v), 0);
	CHECK_EQ_INT(v, 16 << 20);
	CHECK_EQ_INT(fs_parse_size("2G", &v), 0);
	CHECK_EQ_INT(v, 2ll << 30);
	CHECK_EQ_INT(fs_parse_size("1T", &v), 0);
	CHECK_EQ_INT(v, 1ll << 40);
	CHECK(fs_parse_size("", &v) < 0);
	CHECK(fs_parse_size("-1", &v) < 0);
	CHECK(fs_parse_size("1X", &v) < 0);
	CHECK(fs_parse_size("M", &v) < 0);
	CHECK(fs_parse_size("99999999999T", &v) < 0);
}

static void test_durations(void)
{
	uint64_t v = 0;

	CHECK_EQ_INT(fs_parse_duration("0", &v), 0);
	CHECK_EQ_INT(v, 0);
	CHECK_EQ_INT(fs_parse_duration("45", &v), 0);
	CHECK_EQ_INT(v, 45);
	CHECK_EQ_INT(fs_parse_duration("2s", &v), 0);
	CHECK_EQ_INT(v, 2);
	CHECK_EQ_INT(fs_parse_duration("10m", &v), 0);
	CHECK_EQ_INT(v, 600);
	CHECK_EQ_INT(fs_parse_duration("1h", &v), 0);
	CHECK_EQ_INT(v, 3600);
	CHECK_EQ_INT(fs_parse_duration("2d", &v), 0);
	CHECK_EQ_INT(v, 172800);
	CHECK(fs_parse_duration("", &v) < 0);
	CHECK(fs_parse_duration("-1s", &v) < 0);
	CHECK(fs_parse_duration("1w", &v) < 0);
	CHECK(fs_parse_duration("h", &v) < 0);
	CHECK(fs_parse_duration("1hs", &v) < 0);
	CHECK(fs_parse_duration("99999999999d", &v) < 0);
}

static void test_pending_timeout(void)
{
	char *argv[] = {"solverfs", "-o", "pending_timeout=2s", "st", "mnt", NULL};
	char *bad[] = {"solverfs", "-o", "pending_timeout=0", "st", "mnt", NULL};
	struct fs_opts o;
	char *msg = NULL;

	CHECK_EQ_INT(parse(5, argv, &o, &msg), 0);
	CHECK_EQ_INT(o.pending_timeout, 2);
	fs_opts_release(&o);
	CHECK(parse(5, bad, &o, &msg) < 0);
	CHECK(msg && strstr(msg, "pending_timeout=0"));
	free(msg);
	fs_opts_release(&o);
}

static void test_operands_and_options_anywhere(void)
{
	char *argv[] = {"solverfs", "/s", "/m", "-o", "workers=3,spec_max=1K,allow_other", "-f"};
	struct fs_opts o;
	char *msg = NULL;

	CHECK_EQ_INT(parse(6, argv, &o, &msg), 0);
	CHECK_EQ_STR(o.state_dir, "/s");
	CHECK_EQ_STR(o.mountpoint, "/m");
	CHECK_EQ_INT(o.workers, 3);
	CHECK_EQ_INT(o.spec_max, 1024);
	CHECK(o.foreground);
	CHECK_EQ_INT(o.jobs_keep, 1000);
	CHECK_EQ_INT(o.sandbox, FS_SANDBOX_AUTO);
	fs_opts_release(&o);
	free(msg);
}

static void test_kept_for_fuse(void)
{
	char *argv[] = {"solverfs", "-o", "sandbox=none,allow_other,cache_max=10G", "/s", "/m"};
	struct fuse_args args = FUSE_ARGS_INIT(5, argv);
	struct fs_opts o;
	char *msg = NULL;
	bool allow_other = false, always = false;

	CHECK_EQ_INT(fs_opts_parse(&args, &o, &msg), 0);
	CHECK_EQ_INT(o.sandbox, FS_SANDBOX_NONE);
	CHECK_EQ_INT(o.cache_max, 10ll << 30);
	for (int i = 0; i < args.argc; i++) {
		CHECK(!strstr(args.argv[i], "sandbox"));
		CHECK(!strstr(args.argv[i], "cache_max"));
		allow_other |= strstr(args.argv[i], "allow_other") != NULL;
		always |= strstr(args.argv[i], "default_permissions,nosuid,nodev") != NULL;
	}
	CHECK(allow_other);
	CHECK(always);
	fuse_opt_free_args(&args);
	fs_opts_release(&o);
	free(msg);
}

static void test_errors(void)
{
	char *single[] = {"solverfs", "-s", "/s", "/m"};
	char *bad[] = {"solverfs", "-o", "sandbox=maybe", "/s", "/m"};
	char *three[] = {"solverfs", "/s", "/m", "/x"};
	char *none[] = {"solverfs"};
	struct fs_opts o;
	char *msg = NULL;

	CHECK(parse(4, single, &o, &msg) < 0);
	CHECK(msg && strstr(msg, "-s"));
	fs_opts_release(&o);
	free(msg), msg = NULL;
	CHECK(parse(5, bad, &o, &msg) < 0);
	CHECK(msg && strstr(msg, "sandbox"));
	fs_opts_release(&o);
	free(msg), msg = NULL;
	CHECK(parse(4, three, &o, &msg) < 0);
	fs_opts_release(&o);
	free(msg), msg = NULL;
	CHECK(parse(1, none, &o, &msg) < 0);
	fs_opts_release(&o);
	free(msg);
}

static void test_import_limits(void)
{
	char *argv[] = {"solverfs", "-o",
			"import_layer_max=1M,import_entries_max=500,import_config_max=2K", "/s", "/m"};
	char *dflt[] = {"solverfs", "/s", "/m"};
	char *bad[] = {"solverfs", "-o", "import_entries_max=0", "/s", "/m"};
	struct fs_opts o;
	char *msg = NULL;

	CHECK_EQ_INT(parse(3, dflt, &o, &msg), 0);
	CHECK_EQ_INT(o.import_layer_max, 16ll << 30);
	CHECK_EQ_INT(o.import_entries_max, 1000000);
	CHECK_EQ_INT(o.import_config_max, 64 << 20);
	fs_opts_release(&o);
	CHECK_EQ_INT(parse(5, argv, &o, &msg), 0);
	CHECK_EQ_INT(o.import_layer_max, 1 << 20);
	CHECK_EQ_INT(o.import_entries_max, 500);
	CHECK_EQ_INT(o.import_config_max, 2048);
	fs_opts_release(&o);
	CHECK(parse(5, bad, &o, &msg) == -EINVAL);
	CHECK(msg && strstr(msg, "import_entries_max"));
	fs_opts_release(&o);
	free(msg);
}

static void test_status_max(void)
{
	char *set[] = {"solverfs", "-o", "status_max=64K", "/s", "/m"};
	char *small[] = {"solverfs", "-o", "status_max=100", "/s", "/m"};
	char *dflt[] = {"solverfs", "/s", "/m"};
	struct fs_opts o;
	char *msg = NULL;

	CHECK_EQ_INT(parse(3, dflt, &o, &msg), 0);
	CHECK_EQ_INT(o.status_max, 16 << 20);
	fs_opts_release(&o);
	CHECK_EQ_INT(parse(5, set, &o, &msg), 0);
	CHECK_EQ_INT(o.status_max, 64 << 10);
	fs_opts_release(&o);
	CHECK(parse(5, small, &o, &msg) < 0);
	CHECK(msg && strstr(msg, "status_max"));
	fs_opts_release(&o);
	free(msg);
}

static void test_spec_limits(void)
{
	char *set[] = {"solverfs", "-o", "path_max=100,name_max=10,inline_max=2K", "/s", "/m"};
	char *dflt[] = {"solverfs", "/s", "/m"};
	char *zero[] = {"solverfs", "-o", "inline_max=0", "/s", "/m"};
	struct fs_opts o;
	char *msg = NULL;

	CHECK_EQ_INT(parse(3, dflt, &o, &msg), 0);
	CHECK_EQ_INT(o.path_max, 4096);
	CHECK_EQ_INT(o.name_max, 1024);
	CHECK_EQ_INT(o.inline_max, 16 << 20);
	fs_opts_release(&o);
	CHECK_EQ_INT(parse(5, set, &o, &msg), 0);
	CHECK_EQ_INT(o.path_max, 100);
	CHECK_EQ_INT(o.name_max, 10);
	CHECK_EQ_INT(o.inline_max, 2048);
	fs_opts_release(&o);
	CHECK(parse(5, zero, &o, &msg) < 0);
	CHECK(msg && strstr(msg, "inline_max"));
	fs_opts_release(&o);
	free(msg);
}

int main(void)
{
	RUN(test_sizes);
	RUN(test_durations);
	RUN(test_pending_timeout);
	RUN(test_operands_and_options_anywhere);
	RUN(test_kept_for_fuse);
	RUN(test_errors);
	RUN(test_import_limits);
	RUN(test_status_max);
	RUN(test_spec_limits);
	return tap_done();
}
