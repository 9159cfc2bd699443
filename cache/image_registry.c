/*
 * image_registry.c — the image source of a registry (docker://..., image.h),
 * on the OCI distribution client of cache/registry.h.
 */
#include "err.h"
#include "image.h"

int image_source_registry_new(const struct imageref *ref, const struct image_source_opts *o,
			      struct image_source **ret, char **ret_msg)
{
	(void)ref;
	(void)o;
	(void)ret;
	return sfs_errf(ret_msg, EOPNOTSUPP, "docker:// images are not supported yet");
}
