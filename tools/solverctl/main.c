/*
 * main.c — solverctl's command line: global options, then one subcommand.
 *
 *   solverctl [-m MOUNT] COMMAND [ARG...]
 *
 * The subcommands are in build.c and jobs.c; solverctl(1) documents them.
 */
#include <stdio.h>
#include <string.h>

#include "solverctl.h"

static const struct {
	const char *name;
	int (*run)(struct ctl_cmd *);
	const char *args;
	const char *help;
} cmds[] = {
    {"build", ctl_cmd_build,
     "SPEC [--progress=auto|tty|plain|rawjson] [--no-cache] "
     "[--export DIR] [-o key=value]",
     "submit SPEC (- for stdin), follow it, print its outputs' paths"},
    {"ls", ctl_cmd_ls, "", "list the jobs"},
    {"status", ctl_cmd_status, "N [--json]", "job N's progress (follows while it runs)"},
    {"logs", ctl_cmd_logs, "N VERTEX", "the log of a vertex, by spec key or name"},
    {"why", ctl_cmd_why, "N", "why each vertex was cached or executed"},
    {"cancel", ctl_cmd_cancel, "N", "cancel a pending or running job"},
    {"graph", ctl_cmd_graph, "N", "job N's graph in DOT"},
    {"export", ctl_cmd_export, "N DIR", "copy job N's cache export to DIR"},
    {"du", ctl_cmd_du, "[-v]", "disk use of the cache (-v: every result)"},
};

static void usage(FILE *f)
{
	fputs("usage: solverctl [-m MOUNT] COMMAND [ARG...]\n\n"
	      "The mount is -m MOUNT, else $SOLVERFS_MOUNT, else the only solverfs mount.\n\n"
	      "commands:\n",
	      f);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %s%s%s\n          %s\n", cmds[i].name, *cmds[i].args ? " " : "",
			cmds[i].args, cmds[i].help);
	fputs("\nexit status: 0 success, 1 a failed or cancelled job or another error,\n"
	      "2 a rejected spec or a bad command line, 130 interrupted (build cancels its job)\n",
	      f);
}

int main(int argc, char **argv)
{
	struct ctl_cmd c = {0};
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "-m") && i + 1 < argc) {
			c.mount = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "-m", 2) && argv[i][2]) {
			c.mount = argv[i] + 2;
			i++;
		} else if (!strncmp(argv[i], "--mount=", 8)) {
			c.mount = argv[i] + 8;
			i++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return CTL_EXIT_OK;
		} else if (!strcmp(argv[i], "--version")) {
			printf("solverctl %s\n", SFS_VERSION);
			return CTL_EXIT_OK;
		} else {
			ctl_err("unknown option %s", argv[i]);
			usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		if (!strcmp(argv[i], cmds[k].name)) {
			c.argc = argc - i;
			c.argv = argv + i;
			return cmds[k].run(&c);
		}
	}
	ctl_err("unknown command '%s' (solverctl --help lists them)", argv[i]);
	return CTL_EXIT_USAGE;
}
