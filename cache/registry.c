/*
 * registry.c — the OCI distribution client of registry.h over http.h.
 *
 * Authentication follows the distribution spec: a request answered 401 with
 * "WWW-Authenticate: Basic" is sent again with the host's credentials; with
 * "Bearer realm=..,service=..,scope=.." a token is asked of the realm (with
 * the credentials, when there are any), and kept for the next requests.  The
 * credentials and tokens live only in this struct and in request headers.
 *
 * Pushes are chunked: POST /blobs/uploads/, then PATCHes of opts.chunk bytes
 * with Content-Range, then PUT ?digest=.  A PATCH that fails on the way (a
 * reset, a 5xx) is followed by a GET of the upload URL, whose Range says
 * what the registry kept; the upload goes on from there, up to
 * PUSH_RETRIES times.
 */
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "array.h"
#include "cas.h"
#include "clock.h"
#include "err.h"
#include "http.h"
#include "strbuf.h"

#define PUSH_RETRIES 5
#define AUTH_FILE_MAX (1u << 20)
#define TOKEN_MAX (64u << 10)

static const char *const manifest_accept =
    "Accept: application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

struct registry {
	struct http *http;
	struct registry_opts o;
	char *ca_file, *insecure;
	char host[IMAGEREF_HOST_MAX];
	char repo[IMAGEREF_REPO_MAX];
	char *base;	/* "https://HOST/v2/REPO" */
	char *origin;	/* "https://HOST" */
	char *basic;	/* "user:password" or NULL */
	char *authz;	/* "Authorization: ..." header in use, or NULL */
	bool asked_token;
	/* the blob moving now, for progress */
	const char *what;
	uint64_t what_total;
	int64_t last_progress;
};

void registry_opts_default(struct registry_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ns = REGISTRY_TIMEOUT_DEFAULT_NS;
	o->json_max = REGISTRY_MANIFEST_MAX_DEFAULT;
	o->chunk = REGISTRY_CHUNK_DEFAULT;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

struct registry *registry_close(struct registry *r)
{
	if (!r)
		return NULL;
	http_free(r->http);
	free(r->ca_file);
	free(r->insecure);
	free(r->base);
	free(r->origin);
	wipe_free(r->basic);
	wipe_free(r->authz);
	free(r);
	return NULL;
}

/* Is host in the comma-separated list? */
static bool in_list(const char *list, const char *host)
{
	size_t n = strlen(host);
	for (const char *p = list; p && *p;) {
		size_t l = strcspn(p, ",");
		if (l == n && strncmp(p, host, n) == 0)
			return true;
		p += l;
		if (*p == ',')
			p++;
	}
	return false;
}

static bool reg_cancelled(void *arg)
{
	struct registry *r = arg;
	return r->o.cancelled && r->o.cancelled(r->o.arg);
}

static void reg_progress(void *arg, uint64_t now, uint64_t total)
{
	struct registry *r = arg;
	int64_t t = sfs_now_ns();
	if (!r->o.progress || !r->what)
		return;
	if (t - r->last_progress < 100000000LL)
		return;
	r->last_progress = t;
	r->o.progress(r->o.arg, r->what, now, r->what_total ? r->what_total : total);
}

int registry_open(const struct imageref *ref, const struct registry_opts *o,
		  struct registry **ret, char **ret_msg)
{
	if (ref->kind != IMAGEREF_DOCKER)
		return sfs_errf(ret_msg, EINVAL, "not a docker:// reference");
	struct registry *r = calloc(1, sizeof(*r));
	int rc = 0;
	if (!r)
		return -ENOMEM;
	registry_opts_default(&r->o);
	if (o)
		r->o = *o;
	if (r->o.timeout_ns <= 0)
		r->o.timeout_ns = REGISTRY_TIMEOUT_DEFAULT_NS;
	if (!r->o.json_max)
		r->o.json_max = REGISTRY_MANIFEST_MAX_DEFAULT;
	if (!r->o.chunk)
		r->o.chunk = REGISTRY_CHUNK_DEFAULT;
	if ((o && o->ca_file && !(r->ca_file = strdup(o->ca_file))) ||
	    (o && o->insecure && !(r->insecure = strdup(o->insecure))))
		rc = -ENOMEM;
	r->o.ca_file = r->ca_file;
	r->o.insecure = r->insecure;
	sfs_copy_str(r->host, sizeof(r->host), ref->host);
	sfs_copy_str(r->repo, sizeof(r->repo), ref->repo);
	bool plain = in_list(r->insecure, r->host);
	if (rc == 0 && (asprintf(&r->origin, "%s://%s", plain ? "http" : "https", r->host) < 0 ||
			asprintf(&r->base, "%s/v2/%s", r->origin, r->repo) < 0))
		rc = -ENOMEM;
	struct http_opts ho = {.ca_file = r->ca_file,
			       .allow_http = plain,
			       .timeout_ns = r->o.timeout_ns,
			       .cancelled = reg_cancelled,
			       .progress = reg_progress,
			       .arg = r};
	if (rc == 0)
		rc = http_new(&ho, &r->http);
	if (rc == 0)
		rc = registry_auth_lookup(r->host, r->o.owner, &r->basic, ret_msg);
	if (rc < 0) {
		registry_close(r);
		return rc;
	}
	*ret = r;
	return 0;
}

/* ---- messages ---- */

static int reg_err(struct registry *r, char **ret_msg, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int reg_err(struct registry *r, char **ret_msg, int err, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return sfs_errf(ret_msg, err, "registry %s/%s: %s", r->host, r->repo, what);
}

static int status_err(struct registry *r, const char *what, long status, char **ret_msg)
{
	int e = status == 404		      ? ENOENT
		: status == 401 || status == 403 ? EACCES
		: status == 413		      ? EFBIG
		: status == 429 || status >= 500 ? EAGAIN
						 : EPROTO;
	const char *why = status == 404			? "not found"
			  : status == 401		? "authentication required or refused"
			  : status == 403		? "access denied"
			  : status == 429 || status >= 500 ? "the registry failed"
							   : "unexpected answer";
	return reg_err(r, ret_msg, e, "%s: %s (HTTP %ld)", what, why, status);
}

/* ---- authentication ---- */

static int b64_decode(const char *in, char **ret)
{
	size_t n = strlen(in);
	unsigned char *out = malloc(n / 4 * 3 + 4);
	if (!out)
		return -ENOMEM;
	int l = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (l < 0) {
		free(out);
		return -EINVAL;
	}
	/* EVP_DecodeBlock counts the '=' padding as zero bytes */
	while (n && in[n - 1] == '=') {
		n--;
		l--;
	}
	out[l < 0 ? 0 : l] = '\0';
	*ret = (char *)out;
	return 0;
}

/* The "auth" of host in one auth file; 1 when the file or entry is absent. */
static int auth_from_file(const char *path, const char *host, char **ret, char **ret_msg)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	if (fd < 0)
		return 1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > AUTH_FILE_MAX) {
		close(fd);
		return 1;
	}
	json_error_t je;
	json_t *root = json_loadfd(fd, 0, &je);
	close(fd);
	if (!root)
		return sfs_errf(ret_msg, EINVAL, "auth file %s: not JSON (line %d)", path,
				je.line);
	json_t *e = json_object_get(json_object_get(root, "auths"), host);
	const char *a = json_string_value(json_object_get(e, "auth"));
	int r = 1;
	if (a) {
		r = b64_decode(a, ret);
		if (r == 0 && !strchr(*ret, ':')) {
			wipe_free(*ret);
			*ret = NULL;
			r = -EINVAL;
		}
		if (r == -EINVAL)
			r = sfs_errf(ret_msg, EINVAL,
				     "auth file %s: the auth of %s is not base64 of user:password",
				     path, host);
	}
	json_decref(root);
	return r;
}

int registry_auth_lookup(const char *host, uid_t owner, char **ret, char **ret_msg)
{
	char path[4096];
	const char *env = getenv("REGISTRY_AUTH_FILE");
	int r;

	*ret = NULL;
	if (env && *env) {
		r = auth_from_file(env, host, ret, ret_msg);
		return r < 0 ? r : 0;
	}
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg && *xdg) {
		snprintf(path, sizeof(path), "%s/containers/auth.json", xdg);
		r = auth_from_file(path, host, ret, ret_msg);
		if (r <= 0)
			return r;
	}
	struct passwd pw, *pp = NULL;
	char buf[4096];
	if (getpwuid_r(owner, &pw, buf, sizeof(buf), &pp) != 0 || !pp || !pp->pw_dir)
		return 0;
	snprintf(path, sizeof(path), "%s/.docker/config.json", pp->pw_dir);
	r = auth_from_file(path, host, ret, ret_msg);
	return r < 0 ? r : 0;
}

/* The value of key in a challenge's comma-separated key="value" list. */
static char *challenge_param(const char *ch, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = ch; (p = strcasestr(p, key));) {
		if ((p == ch || p[-1] == ' ' || p[-1] == ',') && p[kl] == '=') {
			const char *v = p + kl + 1;
			if (*v == '"') {
				const char *end = strchr(v + 1, '"');
				return end ? strndup(v + 1, (size_t)(end - v - 1)) : NULL;
			}
			return strndup(v, strcspn(v, ", "));
		}
		p += kl;
	}
	return NULL;
}

static int set_authz(struct registry *r, const char *scheme, const char *cred)
{
	wipe_free(r->authz);
	r->authz = NULL;
	return asprintf(&r->authz, "Authorization: %s %s", scheme, cred) < 0 ? -ENOMEM : 0;
}

static int basic_authz(struct registry *r)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_add_base64(&sb, r->basic, strlen(r->basic));
	int rc = sb.oom ? -ENOMEM : set_authz(r, "Basic", sb.buf);
	explicit_bzero(sb.buf, sb.len);
	strbuf_release(&sb);
	return rc;
}

static int sink_strbuf(void *arg, const void *buf, size_t len)
{
	struct strbuf *sb = arg;
	strbuf_add(sb, buf, len);
	return sb->oom ? -ENOMEM : 0;
}

static int url_escape(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-_.~", c))
			strbuf_addch(sb, (char)c);
		else
			strbuf_addf(sb, "%%%02X", c);
	}
	return sb->oom ? -ENOMEM : 0;
}

/* The registry token flow: GET realm?service=..&scope=.. for a token. */
static int bearer_token(struct registry *r, const char *challenge, char **ret_msg)
{
	char *realm = challenge_param(challenge, "realm");
	char *service = challenge_param(challenge, "service");
	char *scope = challenge_param(challenge, "scope");
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT, basic = STRBUF_INIT;
	const char *hdrs[2] = {NULL, NULL};
	struct http_resp resp = {0};
	int rc = 0;

	if (!realm || (strncmp(realm, "https://", 8) && strncmp(realm, "http://", 7)))
		rc = reg_err(r, ret_msg, EPROTO, "the token challenge names no http(s) realm");
	if (rc == 0) {
		strbuf_addstr(&url, realm);
		strbuf_addch(&url, strchr(realm, '?') ? '&' : '?');
		if (service) {
			strbuf_addstr(&url, "service=");
			url_escape(&url, service);
			strbuf_addch(&url, '&');
		}
		strbuf_addstr(&url, "scope=");
		if (scope) {
			url_escape(&url, scope);
		} else {
			char s[IMAGEREF_REPO_MAX + 32];
			snprintf(s, sizeof(s), "repository:%s:pull,push", r->repo);
			url_escape(&url, s);
		}
		if (url.oom)
			rc = -ENOMEM;
	}
	if (rc == 0 && r->basic) {
		strbuf_addstr(&basic, "Authorization: Basic ");
		strbuf_add_base64(&basic, r->basic, strlen(r->basic));
		hdrs[0] = basic.buf;
		rc = basic.oom ? -ENOMEM : 0;
	}
	struct http_req q = {.method = "GET",
			     .url = url.buf,
			     .headers = hdrs,
			     .body_fd = -1,
			     .sink = sink_strbuf,
			     .sink_arg = &body,
			     .body_max = TOKEN_MAX,
			     .small = true};
	if (rc == 0 && (rc = http_do(r->http, &q, &resp, ret_msg)) < 0)
		sfs_err_prefix(ret_msg, rc, "registry %s/%s: token", r->host, r->repo);
	if (rc == 0 && resp.status != 200)
		rc = status_err(r, "token request", resp.status, ret_msg);
	if (rc == 0) {
		json_t *j = json_loadb(body.buf ? body.buf : "", body.len, 0, NULL);
		const char *t = json_string_value(json_object_get(j, "token"));
		if (!t)
			t = json_string_value(json_object_get(j, "access_token"));
		if (!t || !*t || strpbrk(t, "\r\n"))
			rc = reg_err(r, ret_msg, EPROTO, "the token answer has no token");
		else
			rc = set_authz(r, "Bearer", t);
		json_decref(j);
	}
	if (body.buf)
		explicit_bzero(body.buf, body.len);
	if (basic.buf)
		explicit_bzero(basic.buf, basic.len);
	strbuf_release(&body);
	strbuf_release(&basic);
	strbuf_release(&url);
	http_resp_release(&resp);
	free(realm);
	free(service);
	free(scope);
	return rc;
}

/* After a 401: 1 when the request may be sent again with new credentials. */
static int answer_challenge(struct registry *r, const struct http_resp *resp, char **ret_msg)
{
	const char *ch = resp->www_authenticate;
	if (!ch)
		return 0;
	if (strncasecmp(ch, "Bearer", 6) == 0 && !r->asked_token) {
		r->asked_token = true;
		int rc = bearer_token(r, ch + 6, ret_msg);
		return rc < 0 ? rc : 1;
	}
	if (strncasecmp(ch, "Basic", 5) == 0 && r->basic && !r->authz) {
		int rc = basic_authz(r);
		return rc < 0 ? rc : 1;
	}
	return 0;
}

/*
 * One request with our Authorization and extra headers; a 401 is answered
 * once (Basic or a token) and the request sent again.
 */
static int reg_do(struct registry *r, struct http_req *q, const char *const *extra,
		  struct http_resp *ret, char **ret_msg)
{
	const char *hdrs[8];
	for (int attempt = 0;; attempt++) {
		size_t n = 0;
		if (r->authz)
			hdrs[n++] = r->authz;
		for (size_t i = 0; extra && extra[i] && n < 7; i++)
			hdrs[n++] = extra[i];
		hdrs[n] = NULL;
		q->headers = hdrs;
		struct http_resp resp = {0};
		int rc = http_do(r->http, q, &resp, ret_msg);
		if (rc < 0)
			return sfs_err_prefix(ret_msg, rc, "registry %s/%s", r->host, r->repo);
		if (resp.status == 401 && attempt == 0) {
			rc = answer_challenge(r, &resp, ret_msg);
			if (rc < 0) {
				http_resp_release(&resp);
				return rc;
			}
			if (rc == 1) {
				http_resp_release(&resp);
				continue;
			}
		}
		*ret = resp;
		return 0;
	}
}

/* ---- reading ---- */

static int check_digest_of(struct registry *r, const char *what, const char *want,
			   const void *buf, size_t len, char got[SFS_DIGEST_SIZE], char **ret_msg)
{
	sfs_sha256_digest(buf, len, got);
	if (want && strcmp(want, got) != 0)
		return reg_err(r, ret_msg, EBADMSG, "%s: content does not match its digest (got %s)",
			       what, got);
	return 0;
}

int registry_get_manifest(struct registry *r, const char *tag_or_digest, char **ret_buf,
			  size_t *ret_len, char **ret_mt, char ret_digest[SFS_DIGEST_SIZE],
			  char **ret_msg)
{
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	struct http_resp resp = {0};
	char what[160], got[SFS_DIGEST_SIZE];
	const char *extra[] = {manifest_accept, NULL};
	int rc;

	snprintf(what, sizeof(what), "manifest %s", tag_or_digest);
	strbuf_addf(&url, "%s/manifests/%s", r->base, tag_or_digest);
	if (url.oom) {
		strbuf_release(&url);
		return -ENOMEM;
	}
	struct http_req q = {.method = "GET",
			     .url = url.buf,
			     .body_fd = -1,
			     .sink = sink_strbuf,
			     .sink_arg = &body,
			     .body_max = r->o.json_max,
			     .small = true};
	rc = reg_do(r, &q, extra, &resp, ret_msg);
	if (rc == 0 && resp.status != 200)
		rc = status_err(r, what, resp.status, ret_msg);
	if (rc == 0)
		rc = check_digest_of(r, what, sfs_is_digest(tag_or_digest) ? tag_or_digest : NULL,
				     body.buf ? body.buf : "", body.len, got, ret_msg);
	if (rc == 0 && ret_mt && !(*ret_mt = strdup(resp.content_type ? resp.content_type : "")))
		rc = -ENOMEM;
	if (rc == 0) {
		if (!body.buf)
			strbuf_addstr(&body, "");
		size_t len;
		*ret_buf = strbuf_detach(&body, &len);
		if (ret_len)
			*ret_len = len;
		memcpy(ret_digest, got, SFS_DIGEST_SIZE);
	}
	strbuf_release(&body);
	strbuf_release(&url);
	http_resp_release(&resp);
	return rc;
}

int registry_resolve(struct registry *r, const char *tag, char ret_digest[SFS_DIGEST_SIZE],
		     char **ret_msg)
{
	char *buf = NULL;
	int rc = registry_get_manifest(r, tag, &buf, NULL, NULL, ret_digest, ret_msg);
	free(buf);
	return rc;
}

/* A blob body hashed as it arrives, to memory or to a file. */
struct blob_sink {
	struct sfs_sha256 h;
	struct strbuf *mem;
	int fd;
	uint64_t n;
};

static int sink_blob(void *arg, const void *buf, size_t len)
{
	struct blob_sink *b = arg;
	sfs_sha256_update(&b->h, buf, len);
	b->n += len;
	if (b->mem)
		return sink_strbuf(b->mem, buf, len);
	const char *p = buf;
	while (len) {
		ssize_t w = write(b->fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* GET /blobs/<digest> into b, at most max bytes, then the digest checked. */
static int get_blob(struct registry *r, const char *digest, uint64_t max, struct blob_sink *b,
		    char **ret_msg)
{
	struct strbuf url = STRBUF_INIT;
	struct http_resp resp = {0};
	char what[160], hex[SFS_HEX_SIZE];
	int rc;

	snprintf(what, sizeof(what), "blob %s", digest);
	strbuf_addf(&url, "%s/blobs/%s", r->base, digest);
	if (url.oom)
		return -ENOMEM;
	if ((rc = sfs_sha256_init(&b->h)) < 0) {
		strbuf_release(&url);
		return rc;
	}
	struct http_req q = {.method = "GET",
			     .url = url.buf,
			     .body_fd = -1,
			     .sink = sink_blob,
			     .sink_arg = b,
			     .body_max = max};
	r->what = what;
	r->what_total = max;
	rc = reg_do(r, &q, NULL, &resp, ret_msg);
	r->what = NULL;
	if (rc == 0 && resp.status != 200)
		rc = status_err(r, what, resp.status, ret_msg);
	if (rc < 0) {
		sfs_sha256_abort(&b->h);
	} else {
		sfs_sha256_final_hex(&b->h, hex);
		if (strcmp(hex, digest + 7) != 0)
			rc = reg_err(r, ret_msg, EBADMSG,
				     "%s: content does not match its digest (%llu bytes received)",
				     what, (unsigned long long)b->n);
	}
	if (rc == 0 && resp.effective_host && strcmp(resp.effective_host, r->host) != 0)
		sfs_log(SFS_LOG_DEBUG, "registry %s/%s: %s came from %s", r->host, r->repo, what,
			resp.effective_host);
	strbuf_release(&url);
	http_resp_release(&resp);
	return rc;
}

int registry_get_blob_buf(struct registry *r, const char *digest, uint64_t max, char **ret_buf,
			  size_t *ret_len, char **ret_msg)
{
	struct strbuf mem = STRBUF_INIT;
	struct blob_sink b = {.mem = &mem, .fd = -1};
	if (!sfs_is_digest(digest))
		return reg_err(r, ret_msg, EINVAL, "bad digest \"%.80s\"", digest);
	int rc = get_blob(r, digest, max, &b, ret_msg);
	if (rc == 0) {
		if (!mem.buf)
			strbuf_addstr(&mem, "");
		*ret_buf = strbuf_detach(&mem, ret_len);
		if (!*ret_buf)
			rc = -ENOMEM;
	}
	strbuf_release(&mem);
	return rc;
}

int registry_fetch_blob(struct registry *r, const char *digest, uint64_t size, struct cas *cas,
			char **ret_msg)
{
	char *tmp = NULL, hex[SFS_HEX_SIZE];
	uint64_t stored = 0;
	int rc;

	if (!sfs_is_digest(digest))
		return reg_err(r, ret_msg, EINVAL, "bad digest \"%.80s\"", digest);
	if (cas_has(cas, digest + 7))
		return 0;
	if (asprintf(&tmp, "%s/pull-XXXXXX", cas_tmp_dir(cas)) < 0)
		return -ENOMEM;
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		free(tmp);
		return reg_err(r, ret_msg, rc, "temporary file: %s", strerror(-rc));
	}
	unlink(tmp);
	free(tmp);
	struct blob_sink b = {.fd = fd};
	rc = get_blob(r, digest, size, &b, ret_msg);
	if (rc == 0 && b.n != size)
		rc = reg_err(r, ret_msg, EBADMSG, "blob %s: %llu bytes received, %llu expected",
			     digest, (unsigned long long)b.n, (unsigned long long)size);
	if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
		rc = -errno;
	if (rc == 0)
		rc = cas_put_fd(cas, fd, hex, &stored);
	if (rc == 0 && strcmp(hex, digest + 7) != 0)
		rc = reg_err(r, ret_msg, EIO, "blob %s changed on its way into the store", digest);
	if (rc == 0 && r->o.progress)
		r->o.progress(r->o.arg, "pull", size, size);
	close(fd);
	return rc;
}

/* ---- writing ---- */

int registry_has_blob(struct registry *r, const char *digest, bool *ret_has, char **ret_msg)
{
	struct strbuf url = STRBUF_INIT;
	struct http_resp resp = {0};
	int rc;

	strbuf_addf(&url, "%s/blobs/%s", r->base, digest);
	if (url.oom)
		return -ENOMEM;
	struct http_req q = {.method = "HEAD", .url = url.buf, .body_fd = -1, .small = true};
	rc = reg_do(r, &q, NULL, &resp, ret_msg);
	if (rc == 0) {
		if (resp.status == 200)
			*ret_has = true;
		else if (resp.status == 404)
			*ret_has = false;
		else
			rc = status_err(r, "blob check", resp.status, ret_msg);
	}
	strbuf_release(&url);
	http_resp_release(&resp);
	return rc;
}

/* An upload URL from a Location header: absolute, or a path on our origin. */
static int upload_url(struct registry *r, const struct http_resp *resp, char **ret, char **ret_msg)
{
	const char *l = resp->location;
	if (!l || !*l)
		return reg_err(r, ret_msg, EPROTO, "upload: the answer has no Location");
	if (l[0] == '/')
		return asprintf(ret, "%s%s", r->origin, l) < 0 ? -ENOMEM : 0;
	size_t ol = strlen(r->origin);
	/* the upload must stay on the registry: our Authorization goes with it */
	if (strncmp(l, r->origin, ol) != 0 || (l[ol] != '/' && l[ol] != '\0'))
		return reg_err(r, ret_msg, EPROTO, "upload: Location points to another host");
	return (*ret = strdup(l)) ? 0 : -ENOMEM;
}

/* POST /blobs/uploads/ (with mount=&from= when mount_from): 1 when the
 * mount made the blob exist, else *ret_url is the upload session. */
static int upload_start(struct registry *r, const char *digest, const char *mount_from,
			char **ret_url, char **ret_msg)
{
	struct strbuf url = STRBUF_INIT;
	struct http_resp resp = {0};
	int rc;

	strbuf_addf(&url, "%s/blobs/uploads/", r->base);
	if (mount_from)
		strbuf_addf(&url, "?mount=%s&from=%s", digest, mount_from);
	if (url.oom)
		return -ENOMEM;
	struct http_req q = {.method = "POST", .url = url.buf, .body_fd = -1, .small = true};
	rc = reg_do(r, &q, NULL, &resp, ret_msg);
	if (rc == 0 && resp.status == 201 && mount_from)
		rc = 1;
	else if (rc == 0 && resp.status != 202)
		rc = status_err(r, "upload start", resp.status, ret_msg);
	else if (rc == 0)
		rc = upload_url(r, &resp, ret_url, ret_msg);
	strbuf_release(&url);
	http_resp_release(&resp);
	return rc;
}

/* GET of the upload session: the offset the registry has, from its Range. */
static int upload_offset(struct registry *r, char **url, uint64_t *ret, char **ret_msg)
{
	struct http_resp resp = {0};
	struct http_req q = {.method = "GET", .url = *url, .body_fd = -1, .small = true};
	int rc = reg_do(r, &q, NULL, &resp, ret_msg);
	if (rc == 0 && resp.status != 204 && resp.status != 200)
		rc = status_err(r, "upload status", resp.status, ret_msg);
	if (rc == 0) {
		unsigned long long a = 0, b = 0;
		/* "0-0" is both nothing and one byte (distribution writes it for
		 * both): start over rather than skip one; the digest checks the end */
		*ret = resp.range && sscanf(resp.range, "%llu-%llu", &a, &b) == 2 && b ? b + 1 : 0;
		if (resp.location) {
			char *n = NULL;
			if (upload_url(r, &resp, &n, NULL) == 0) {
				free(*url);
				*url = n;
			}
		}
	}
	http_resp_release(&resp);
	return rc;
}

static bool transient(int rc)
{
	return rc == -EAGAIN || rc == -ECONNRESET || rc == -ETIMEDOUT || rc == -EPROTO;
}

/* One PATCH of [off, off+len); the session URL moves to the answer's Location. */
static int upload_chunk(struct registry *r, char **url, int fd, uint64_t off, uint64_t len,
			char **ret_msg)
{
	char range[64];
	struct http_resp resp = {0};
	snprintf(range, sizeof(range), "Content-Range: %llu-%llu", (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
	const char *extra[] = {range, "Content-Type: application/octet-stream", NULL};
	struct http_req q = {.method = "PATCH",
			     .url = *url,
			     .body_fd = fd,
			     .body_off = off,
			     .body_len = len};
	int rc = reg_do(r, &q, extra, &resp, ret_msg);
	if (rc == 0 && resp.status != 202)
		rc = status_err(r, "upload chunk", resp.status, ret_msg);
	if (rc == 0) {
		char *n = NULL;
		rc = upload_url(r, &resp, &n, ret_msg);
		if (rc == 0) {
			free(*url);
			*url = n;
		}
	}
	http_resp_release(&resp);
	return rc;
}

static int upload_finish(struct registry *r, const char *url, const char *digest, char **ret_msg)
{
	struct strbuf u = STRBUF_INIT;
	struct http_resp resp = {0};
	strbuf_addf(&u, "%s%cdigest=%s", url, strchr(url, '?') ? '&' : '?', digest);
	if (u.oom)
		return -ENOMEM;
	const char *extra[] = {"Content-Type: application/octet-stream", NULL};
	struct http_req q = {.method = "PUT", .url = u.buf, .body_fd = -1, .small = true};
	int rc = reg_do(r, &q, extra, &resp, ret_msg);
	if (rc == 0 && resp.status != 201)
		rc = status_err(r, "upload end", resp.status, ret_msg);
	strbuf_release(&u);
	http_resp_release(&resp);
	return rc;
}

static int upload(struct registry *r, char **url, const char *digest, uint64_t size, int fd,
		  uint64_t *sent, char **ret_msg)
{
	uint64_t off = 0;
	int retries = 0, rc = 0;
	while (off < size) {
		uint64_t len = size - off < r->o.chunk ? size - off : r->o.chunk;
		char *msg = NULL;
		rc = upload_chunk(r, url, fd, off, len, &msg);
		if (rc == 0) {
			off += len;
			*sent += len;
			free(msg);
			continue;
		}
		if (!transient(rc) || ++retries > PUSH_RETRIES) {
			if (ret_msg && !*ret_msg)
				*ret_msg = msg;
			else
				free(msg);
			return rc;
		}
		sfs_log(SFS_LOG_WARN, "%s; resuming the upload", msg);
		free(msg);
		struct timespec ts = {0, 200000000L * retries};
		nanosleep(&ts, NULL);
		uint64_t have = 0;
		if ((rc = upload_offset(r, url, &have, ret_msg)) < 0)
			return rc;
		off = have > size ? size : have;
	}
	return upload_finish(r, *url, digest, ret_msg);
}

int registry_push_blob(struct registry *r, const char *digest, uint64_t size, int fd,
		       const char *mount_from, uint64_t *ret_sent, char **ret_msg)
{
	bool has = false;
	char *url = NULL;
	uint64_t sent = 0;
	char what[160];
	int rc = registry_has_blob(r, digest, &has, ret_msg);

	if (ret_sent)
		*ret_sent = 0;
	if (rc < 0 || has)
		return rc;
	if (mount_from && strcmp(mount_from, r->repo) == 0)
		mount_from = NULL;
	rc = upload_start(r, digest, mount_from, &url, ret_msg);
	if (rc == 1)
		return 0;
	snprintf(what, sizeof(what), "push %s", digest);
	r->what = what;
	r->what_total = size;
	r->last_progress = 0;
	if (rc == 0)
		rc = upload(r, &url, digest, size, fd, &sent, ret_msg);
	r->what = NULL;
	if (rc == 0 && r->o.progress)
		r->o.progress(r->o.arg, what, size, size);
	free(url);
	if (rc == 0 && ret_sent)
		*ret_sent = sent;
	return rc;
}

int registry_push_manifest(struct registry *r, const char *tag, const char *mt, const void *buf,
			   size_t len, char **ret_msg)
{
	struct strbuf url = STRBUF_INIT, ct = STRBUF_INIT;
	struct http_resp resp = {0};
	strbuf_addf(&url, "%s/manifests/%s", r->base, tag);
	strbuf_addf(&ct, "Content-Type: %s", mt);
	int rc = url.oom || ct.oom ? -ENOMEM : 0;
	const char *extra[] = {ct.buf, NULL};
	struct http_req q = {.method = "PUT",
			     .url = url.buf,
			     .body = buf,
			     .body_fd = -1,
			     .body_len = len,
			     .small = true};
	if (rc == 0)
		rc = reg_do(r, &q, extra, &resp, ret_msg);
	if (rc == 0 && resp.status != 201 && resp.status != 200)
		rc = status_err(r, "manifest push", resp.status, ret_msg);
	strbuf_release(&url);
	strbuf_release(&ct);
	http_resp_release(&resp);
	return rc;
}
