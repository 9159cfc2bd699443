/*
 * specpath.c — the paths a spec names (spec.h "Limits", "Host paths"): paths
 * inside a tree (relative, no empty, "." or ".." component, none longer than
 * 255 bytes), and host paths (local.path, cache_from), cleaned lexically and
 * refused when they resolve into the solverfs mount.
 *
 * Stateless; the host path check reads the host file system (lstat, readlink)
 * but never below the mount point.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strbuf.h"
#include "specint.h"

#define SYMLINK_HOPS 40

/* Why a path inside a tree is bad, or NULL when it is fine. */
const char *sfs_spec_tree_path_problem(const char *s, size_t len, bool allow_root)
{
	if (len == 0)
		return allow_root ? NULL : "must not be empty";
	if (memchr(s, '\0', len))
		return "must not contain NUL";
	if (s[0] == '/')
		return "must be relative (no leading /)";
	for (size_t i = 0; i <= len;) {
		const char *e = memchr(s + i, '/', len - i);
		size_t clen = (e ? (size_t)(e - s) : len) - i;
		if (clen == 0)
			return "must not have an empty component";
		if ((clen == 1 && s[i] == '.') || (clen == 2 && s[i] == '.' && s[i + 1] == '.'))
			return "must not have a . or .. component";
		if (clen > SFS_SPEC_COMPONENT_MAX)
			return "has a component longer than 255 bytes";
		i += clen + 1;
	}
	return NULL;
}

/* "/a//b/./c/" -> "/a/b/c"; ".." is kept (it depends on symlinks). */
char *sfs_spec_clean_host_path(const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	while (*s) {
		size_t l = strcspn(s, "/");
		if (l && !(l == 1 && s[0] == '.')) {
			strbuf_addch(&sb, '/');
			strbuf_add(&sb, s, l);
		}
		s += l;
		s += *s == '/';
	}
	if (sb.len == 0)
		strbuf_addch(&sb, '/');
	if (sb.oom) {
		strbuf_release(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}

static bool under(const char *p, const char *mp, size_t mplen)
{
	if (mplen == 0) /* the mount point is "/" */
		return true;
	return strncmp(p, mp, mplen) == 0 && (p[mplen] == '\0' || p[mplen] == '/');
}

/*
 * Does host path p resolve into the mount point mp?  Symlinks are followed as far
 * as the path exists; the rest is taken literally.  Every prefix is compared with
 * mp BEFORE it is lstat'ed, so the check never stats anything inside the mount:
 * the daemon must not call into itself through the kernel.  mp must be canonical.
 */
int sfs_spec_host_path_inside(const char *p, const char *mp, bool *ret_inside)
{
	struct strbuf res = STRBUF_INIT, rest = STRBUF_INIT;
	size_t mplen = strlen(mp);
	bool missing = false, inside = false;
	int hops = 0;

	while (mplen > 0 && mp[mplen - 1] == '/')
		mplen--;
	strbuf_addstr(&rest, p);
	for (size_t at = 0; at < rest.len && !inside && !res.oom && !rest.oom;) {
		char comp[SFS_SPEC_COMPONENT_MAX + 1 + 1];
		size_t l = strcspn(rest.buf + at, "/");
		size_t keep = res.len;
		struct stat st;

		if (l >= sizeof(comp))
			l = sizeof(comp) - 1; /* only for a component we will not find anyway */
		memcpy(comp, rest.buf + at, l);
		comp[l] = '\0';
		at += strcspn(rest.buf + at, "/");
		at += rest.buf[at] == '/';
		if (l == 0 || strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *slash = res.len ? strrchr(res.buf, '/') : NULL;
			res.len = slash ? (size_t)(slash - res.buf) : 0;
			if (res.buf)
				res.buf[res.len] = '\0';
			continue;
		}
		strbuf_addch(&res, '/');
		strbuf_addstr(&res, comp);
		if (res.oom)
			break;
		inside = under(res.buf, mp, mplen);
		if (inside || missing)
			continue;
		if (lstat(res.buf, &st) < 0) {
			missing = true; /* not there (or not readable): the rest is literal */
			continue;
		}
		if (S_ISLNK(st.st_mode) && ++hops <= SYMLINK_HOPS) {
			char target[PATH_MAX];
			ssize_t tl = readlink(res.buf, target, sizeof(target) - 1);
			if (tl <= 0) {
				missing = true;
				continue;
			}
			target[tl] = '\0';
			res.len = target[0] == '/' ? 0 : keep;
			res.buf[res.len] = '\0';
			struct strbuf nr = STRBUF_INIT;
			strbuf_addstr(&nr, target);
			strbuf_addch(&nr, '/');
			strbuf_addstr(&nr, rest.buf + at);
			strbuf_release(&rest);
			rest = nr;
			at = 0;
		}
	}
	if (!inside && !res.oom)
		inside = under(res.len ? res.buf : "/", mp, mplen);
	int r = res.oom || rest.oom ? -ENOMEM : 0;
	strbuf_release(&res);
	strbuf_release(&rest);
	if (r == 0)
		*ret_inside = inside;
	return r;
}
