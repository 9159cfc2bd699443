/*
 * cachectl_export.c — the `export` command of cache/ctl: the whole cache as an
 * OCI layout in cache/exports/<hex>/, cache/export pointing at it
 * (docs/export.md §12, cache/exports.h).
 *
 * fs_cachectl_export is slow work (it may gzip every result): cache/ctl's
 * command table runs it on the ctl thread, as it runs a prune; the check
 * (fs_cachectl_export_check) only parses, on the FUSE thread.  The unmount's
 * stop flag ends it between two keys or blobs, leaving no partial layout.  No state of
 * its own, no locks (cache/exports.c orders concurrent exports and prunes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "exports.h"
#include "fs.h"

int fs_cachectl_export_check(const char *args, char **ret_msg)
{
	enum cache_export_mode mode;
	enum cache_export_form form;
	return cache_exports_parse(args, &mode, &form, ret_msg);
}

int fs_cachectl_export(struct sfs_fs *fs, const char *args, const atomic_bool *stop,
		       struct strbuf *out, char **ret_msg)
{
	enum cache_export_mode mode;
	enum cache_export_form form;
	char hex[SFS_HEX_SIZE];
	int r = cache_exports_parse(args, &mode, &form, ret_msg);

	if (r == 0)
		r = cache_exports_make(fs->cache, mode, form, stop, hex, ret_msg);
	if (r < 0)
		return r;
	strbuf_addf(out, "exported cache/exports/%s mode=%s form=%s", hex,
		    cache_exports_mode_name(mode), cache_exports_form_name(form));
	return out->oom ? -ENOMEM : 0;
}
