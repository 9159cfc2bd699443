/*
 * sandbox.c — bubblewrap support.  For now only the probe run at mount
 * (sandbox=auto picks bwrap when it works); execs run without a sandbox.
 *
 * The probe runs `bwrap --ro-bind / / --dev /dev --proc /proc --unshare-all true`:
 * binaries exist in many places where user namespaces or mounts are refused
 * (containers, hardened kernels), so only a real run says whether it works.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#include "op.h"

extern char **environ;

bool sfs_sandbox_probe(void)
{
	char *argv[] = {"bwrap", "--ro-bind",	  "/",	  "/", "--dev", "/dev", "--proc",
			"/proc", "--unshare-all", "true", NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, r;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return false;
	for (int fd = 0; fd <= 2; fd++)
		posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
	r = posix_spawnp(&pid, "bwrap", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return false;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
