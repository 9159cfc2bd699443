/* oci.c — see oci.h.  No state, no locks. */
#include "oci.h"

#include <stdio.h>
#include <string.h>

void oci_blob_path(const char *digest, char ret[OCI_BLOB_PATH_SIZE])
{
	snprintf(ret, OCI_BLOB_PATH_SIZE, "blobs/sha256/%s", digest + 7);
}

void oci_desc_json_open(struct strbuf *sb, const char *media_type, const char *digest,
			uint64_t size)
{
	strbuf_addstr(sb, "{\"mediaType\":");
	strbuf_add_json_str(sb, media_type);
	strbuf_addstr(sb, ",\"digest\":");
	strbuf_add_json_str(sb, digest);
	strbuf_addf(sb, ",\"size\":%llu", (unsigned long long)size);
}

static const char *str_of(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

const char *oci_desc_digest(const json_t *d)
{
	const char *s = str_of(d, "digest");
	return sfs_is_digest(s) ? s : NULL;
}

const char *oci_desc_media_type(const json_t *d)
{
	return str_of(d, "mediaType");
}

bool oci_desc_is_tagged(const json_t *d, const char *tag)
{
	const char *name = str_of(json_object_get(d, "annotations"), OCI_REF_NAME);
	return name && strcmp(name, tag) == 0;
}

bool oci_desc_is(const json_t *d, const char *mt)
{
	const char *m = oci_desc_media_type(d);
	return m && strcmp(m, mt) == 0 && oci_desc_digest(d);
}
