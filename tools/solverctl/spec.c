/*
 * spec.c — the spec a build submits: read, rewritten, serialised.
 *
 * The mount takes only absolute host paths (README "The spec": `local` path,
 * `cache_from`), so solverctl resolves relative ones against the directory of
 * the spec file, as `buildctl --local context=.` resolves against the caller:
 * a spec next to its sources runs from anywhere.  The other rewrites map
 * command-line options onto real spec fields and nothing else:
 *   --no-cache          `ignore_cache: true` on the job (which reaches the
 *                       vertices of sub-builds too) and on every vertex
 *   --export DIR        `export: {"mode": "min"}` when the spec has no export
 *   -o ignore_cache=B   the job's `ignore_cache`
 *   -o export.mode=M    `export.mode` (min, max, remote-only)
 *   -o export.form=F    `export.form` (image, manifest-list)
 *   -o cache_from=PATH  appended to the job's `cache_from` (relative to the cwd)
 * A spec that is not a JSON object with a `vertices` object is sent unchanged
 * when nothing has to be rewritten, so the daemon's own rejection (which
 * names vertex and field) is what the user sees.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "solverctl.h"

const char *const ctl_spec_option_keys[] = {"ignore_cache", "export.mode", "export.form",
					    "cache_from", NULL};

/* Lexically normalised "BASE/REL" (REL relative): "." and ".." components
 * folded, no trailing slash; symlinks are left for the daemon to see. */
static char *join_path(const char *base, const char *rel)
{
	char *all = ctl_xasprintf("%s/%s", base, rel);
	char *out = ctl_xmalloc(strlen(all) + 2);
	size_t len = 0;
	char *save = NULL;

	for (char *c = strtok_r(all, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--; /* the slash */
			continue;
		}
		out[len++] = '/';
		size_t n = strlen(c);
		memcpy(out + len, c, n);
		len += n;
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	free(all);
	return out;
}

static char *cwd_or_null(void)
{
	char *cwd = getcwd(NULL, 0);
	if (!cwd)
		ctl_err("cannot find the current directory: %s", strerror(errno));
	return cwd;
}

/* The directory a spec's relative paths are resolved against. */
static char *spec_base(const char *path)
{
	char *cwd = cwd_or_null();

	if (!cwd || !strcmp(path, "-"))
		return cwd;
	char *abs = path[0] == '/' ? ctl_xstrdup(path) : join_path(cwd, path);
	free(cwd);
	char *slash = strrchr(abs, '/');
	if (slash == abs)
		slash[1] = '\0';
	else
		*slash = '\0';
	return abs;
}

/* Makes the string S (member KEY of an object, or element IDX of an array)
 * absolute against BASE; returns whether it changed it. */
static bool resolve_str(json_t *parent_arr_or_obj, const char *key, size_t idx, json_t *s,
			const char *base)
{
	const char *v = json_string_value(s);

	if (!v || !*v || v[0] == '/')
		return false;
	char *abs = join_path(base, v);
	if (key)
		json_object_set_new(parent_arr_or_obj, key, json_string(abs));
	else
		json_array_set_new(parent_arr_or_obj, idx, json_string(abs));
	free(abs);
	return true;
}

/* cache_from is an array of paths (a lone string is resolved too: the daemon
 * says what is wrong with it). */
static bool resolve_cache_from(json_t *obj, const char *base)
{
	json_t *cf = json_object_get(obj, "cache_from"), *e;
	bool changed = false;
	size_t i;

	if (json_is_string(cf))
		changed = resolve_str(obj, "cache_from", 0, cf, base);
	json_array_foreach(cf, i, e) changed |= resolve_str(cf, NULL, i, e, base);
	return changed;
}

static int parse_bool(const char *v, bool *ret)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) {
		*ret = true;
		return 0;
	}
	if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) {
		*ret = false;
		return 0;
	}
	return -EINVAL;
}

static json_t *export_obj(json_t *root)
{
	json_t *e = json_object_get(root, "export");
	if (!json_is_object(e)) {
		e = json_object();
		json_object_set_new(root, "export", e);
	}
	return e;
}

/* One -o key=value.  0, or -EINVAL after a message. */
static int apply_set(json_t *root, const char *set)
{
	const char *eq = strchr(set, '=');
	char key[64];
	const char *val;

	if (!eq || eq == set || (size_t)(eq - set) >= sizeof(key)) {
		ctl_err("-o %s: expected key=value", set);
		return -EINVAL;
	}
	memcpy(key, set, (size_t)(eq - set));
	key[eq - set] = '\0';
	val = eq + 1;
	if (!strcmp(key, "ignore_cache")) {
		bool b;
		if (parse_bool(val, &b) < 0) {
			ctl_err("-o ignore_cache=%s: expected true or false", val);
			return -EINVAL;
		}
		json_object_set_new(root, "ignore_cache", json_boolean(b));
	} else if (!strcmp(key, "export.mode")) {
		if (strcmp(val, "min") && strcmp(val, "max") && strcmp(val, "remote-only")) {
			ctl_err("-o export.mode=%s: expected min, max or remote-only", val);
			return -EINVAL;
		}
		json_object_set_new(export_obj(root), "mode", json_string(val));
	} else if (!strcmp(key, "export.form")) {
		if (strcmp(val, "image") && strcmp(val, "manifest-list")) {
			ctl_err("-o export.form=%s: expected image or manifest-list", val);
			return -EINVAL;
		}
		json_object_set_new(export_obj(root), "form", json_string(val));
	} else if (!strcmp(key, "cache_from")) {
		char *cwd = cwd_or_null();
		if (!cwd)
			return -EINVAL;
		char *abs = val[0] == '/' ? ctl_xstrdup(val) : join_path(cwd, val);
		json_t *cf = json_object_get(root, "cache_from");
		if (!json_is_array(cf)) {
			cf = json_array();
			json_object_set_new(root, "cache_from", cf);
		}
		json_array_append_new(cf, json_string(abs));
		free(abs);
		free(cwd);
	} else {
		struct ctl_buf known = {0};
		for (const char *const *k = ctl_spec_option_keys; *k; k++)
			ctl_buf_addf(&known, "%s%s", known.len ? ", " : "", *k);
		ctl_err("-o %s: unknown option (solverctl knows %s)", key, known.s);
		ctl_buf_release(&known);
		return -EINVAL;
	}
	return 0;
}

static int read_spec(const char *path, struct ctl_buf *ret)
{
	int r;

	if (!strcmp(path, "-"))
		r = ctl_read_fd(0, ret);
	else
		r = ctl_read_file(path, ret);
	if (r < 0)
		ctl_err("%s: %s", strcmp(path, "-") ? path : "stdin", strerror(-r));
	return r;
}

char *ctl_spec_prepare(const char *path, const struct ctl_spec_opts *opts, bool *ret_usage)
{
	struct ctl_buf raw = {0};
	json_error_t jerr;
	json_t *root, *vertices, *v;
	const char *key;
	char *base = NULL, *out = NULL;
	bool must_rewrite = opts->no_cache || opts->export_dir || (opts->sets && opts->sets[0]);

	*ret_usage = false;
	if (read_spec(path, &raw) < 0)
		return NULL;
	/* duplicates rejected: a re-serialised spec must not silently drop one */
	root = json_loadb(raw.s, raw.len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	vertices = json_object_get(root, "vertices");
	if (!json_is_object(root) || !json_is_object(vertices)) {
		json_decref(root);
		if (!must_rewrite)
			return raw.s; /* the daemon says what is wrong with it */
		ctl_err("%s: not a spec (a JSON object with \"vertices\")%s%s; cannot apply the "
			"options to it",
			strcmp(path, "-") ? path : "stdin", root ? "" : ": ",
			root ? "" : jerr.text);
		*ret_usage = true;
		ctl_buf_release(&raw);
		return NULL;
	}
	if (!(base = spec_base(path)))
		goto out;
	json_object_foreach(vertices, key, v)
	{
		if (!json_is_object(v))
			continue; /* the daemon rejects it, naming the vertex */
		const char *op = json_string_value(json_object_get(v, "op"));
		json_t *p = json_object_get(v, "path");
		if (op && !strcmp(op, "local") && json_is_string(p))
			must_rewrite |= resolve_str(v, "path", 0, p, base);
		must_rewrite |= resolve_cache_from(v, base);
		if (opts->no_cache)
			json_object_set_new(v, "ignore_cache", json_true());
	}
	must_rewrite |= resolve_cache_from(root, base);
	if (opts->no_cache)
		json_object_set_new(root, "ignore_cache", json_true());
	if (opts->export_dir && !json_is_object(json_object_get(root, "export")))
		json_object_set_new(root, "export", json_pack("{s:s}", "mode", "min"));
	for (char **s = opts->sets; s && *s; s++) {
		if (apply_set(root, *s) < 0) {
			*ret_usage = true;
			goto out;
		}
	}
	if (!must_rewrite) {
		/* nothing to change: jobs/N/spec shows the user's own bytes */
		out = raw.s;
		raw = (struct ctl_buf){0};
		goto out;
	}
	out = json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT);
	if (!out)
		ctl_err("cannot serialise the spec");
out:
	ctl_buf_release(&raw);
	free(base);
	json_decref(root);
	return out;
}
