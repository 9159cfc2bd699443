/*
 * http.c — HTTP requests over libcurl with the limits of http.h.
 *
 * curl_global_init runs once (pthread_once) before the first handle.  The
 * headers this module reads are kept per response: a status line resets them,
 * so after redirects only the final response's are seen.
 */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "err.h"

#define SLOW_BYTES_PER_S 1024
#define REDIRECTS_MAX 5
#define HEADER_VALUE_MAX 8192

struct http {
	CURL *curl;
	char *ca_file;
	struct http_opts o;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_new(const struct http_opts *o, struct http **ret)
{
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return -EIO;
	struct http *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->o = *o;
	h->o.ca_file = NULL;
	if ((o->ca_file && !(h->ca_file = strdup(o->ca_file))) || !(h->curl = curl_easy_init())) {
		http_free(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

struct http *http_free(struct http *h)
{
	if (!h)
		return NULL;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	free(h->ca_file);
	free(h);
	return NULL;
}

void http_set_progress(struct http *h, void (*progress)(void *arg, uint64_t now, uint64_t total))
{
	h->o.progress = progress;
}

void http_resp_release(struct http_resp *r)
{
	if (!r)
		return;
	free(r->content_type);
	free(r->location);
	free(r->www_authenticate);
	free(r->docker_digest);
	free(r->range);
	free(r->effective_host);
	memset(r, 0, sizeof(*r));
}

char *http_url_for_msg(const char *url)
{
	size_t n = strcspn(url, "?#");
	return strndup(url, n);
}

/* One request in flight. */
struct xfer {
	struct http *h;
	const struct http_req *q;
	struct http_resp *resp;
	uint64_t received;
	int err; /* the reason a callback stopped the transfer */
	uint64_t sent;
};

static int set_header(char **slot, const char *v, size_t n)
{
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	if (n > HEADER_VALUE_MAX)
		return -EPROTO;
	free(*slot);
	return (*slot = strndup(v, n)) ? 0 : -ENOMEM;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nitems;
	static const struct {
		const char *name;
		size_t off;
	} known[] = {
		{"content-type:", offsetof(struct http_resp, content_type)},
		{"location:", offsetof(struct http_resp, location)},
		{"www-authenticate:", offsetof(struct http_resp, www_authenticate)},
		{"docker-content-digest:", offsetof(struct http_resp, docker_digest)},
		{"range:", offsetof(struct http_resp, range)},
	};

	if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* a new response (after a redirect or a 100): forget the last one's */
		char *host = x->resp->effective_host;
		x->resp->effective_host = NULL;
		http_resp_release(x->resp);
		x->resp->effective_host = host;
		return n;
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		size_t l = strlen(known[i].name);
		if (n > l && strncasecmp(buf, known[i].name, l) == 0) {
			char **slot = (char **)((char *)x->resp + known[i].off);
			int r = set_header(slot, buf + l, n - l);
			if (r < 0) {
				x->err = r;
				return 0;
			}
			return n;
		}
	}
	if (n > 15 && strncasecmp(buf, "content-length:", 15) == 0) {
		char tmp[32];
		size_t l = n - 15 < sizeof(tmp) - 1 ? n - 15 : sizeof(tmp) - 1;
		memcpy(tmp, buf + 15, l);
		tmp[l] = '\0';
		char *end;
		unsigned long long v = strtoull(tmp, &end, 10);
		x->resp->content_length = v;
		x->resp->has_length = true;
		/* Refuse a body announced too long before any of it arrives; a
		 * redirect's own body does not count (curl skips it). */
		long code = 0;
		curl_easy_getinfo(x->h->curl, CURLINFO_RESPONSE_CODE, &code);
		if (code / 100 == 2 && x->q->sink && v > x->q->body_max) {
			x->err = -EFBIG;
			return 0;
		}
	}
	return n;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	long code = 0;

	curl_easy_getinfo(x->h->curl, CURLINFO_RESPONSE_CODE, &code);
	if (!x->q->sink || code / 100 != 2) {
		/* error bodies are read and dropped, within the same bound */
		x->received += n;
		if (x->received > (64u << 10) + x->q->body_max) {
			x->err = -EFBIG;
			return 0;
		}
		return n;
	}
	if (x->received + n > x->q->body_max) {
		x->err = -EFBIG;
		return 0;
	}
	x->received += n;
	int r = x->q->sink(x->q->sink_arg, buf, n);
	if (r < 0) {
		x->err = r;
		return 0;
	}
	return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct xfer *x = arg;
	const struct http_req *q = x->q;
	size_t want = size * nitems;
	uint64_t left = q->body_len - x->sent;

	if (want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (q->body_fd < 0) {
		memcpy(buf, (const char *)q->body + x->sent, want);
		x->sent += want;
		return want;
	}
	ssize_t got;
	do
		got = pread(q->body_fd, buf, want, (off_t)(q->body_off + x->sent));
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		x->err = got < 0 ? -errno : -EIO;
		return CURL_READFUNC_ABORT;
	}
	x->sent += (size_t)got;
	return (size_t)got;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct xfer *x = arg;
	const struct http_opts *o = &x->h->o;

	if (o->cancelled && o->cancelled(o->arg)) {
		x->err = -ECANCELED;
		return 1;
	}
	if (o->progress) {
		if (ultotal > 0)
			o->progress(o->arg, (uint64_t)ulnow, (uint64_t)ultotal);
		else if (dltotal > 0 || dlnow > 0)
			o->progress(o->arg, (uint64_t)dlnow, (uint64_t)dltotal);
	}
	return 0;
}

static int curl_err(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_FILESIZE_EXCEEDED:
		return -EFBIG;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	default:
		return -EPROTO;
	}
}

static int setup(struct http *h, const struct http_req *q, struct xfer *x,
		 struct curl_slist **hdrs)
{
	CURL *c = h->curl;
	const char *protos = h->o.allow_http ? "http,https" : "https";
	long secs = (long)((h->o.timeout_ns + 999999999) / 1000000000);

	curl_easy_reset(c);
	for (size_t i = 0; q->headers && q->headers[i]; i++) {
		struct curl_slist *n = curl_slist_append(*hdrs, q->headers[i]);
		if (!n)
			return -ENOMEM;
		*hdrs = n;
	}
	/* curl adds "Expect: 100-continue" to big uploads; registries do not
	 * all answer it */
	struct curl_slist *n = curl_slist_append(*hdrs, "Expect:");
	if (!n)
		return -ENOMEM;
	*hdrs = n;
	if (secs < 1)
		secs = 1;
	curl_easy_setopt(c, CURLOPT_URL, q->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protos);
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protos);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, strcmp(q->method, "GET") == 0 ||
							     strcmp(q->method, "HEAD") == 0
							 ? 1L
							 : 0L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)REDIRECTS_MAX);
	curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, secs);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)SLOW_BYTES_PER_S);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, secs);
	if (q->small)
		curl_easy_setopt(c, CURLOPT_TIMEOUT, secs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "solverfs/" SFS_VERSION);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	if (strcmp(q->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(q->method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
	} else if (strcmp(q->method, "PUT") == 0 || strcmp(q->method, "PATCH") == 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		if (strcmp(q->method, "PATCH") == 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PATCH");
	}
	return 0;
}

static void effective_host(CURL *c, struct http_resp *resp)
{
	char *url = NULL;
	if (curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || !url)
		return;
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	free(resp->effective_host);
	resp->effective_host = strndup(p, strcspn(p, "/?#"));
}

int http_do(struct http *h, const struct http_req *q, struct http_resp *ret, char **ret_msg)
{
	struct http_resp resp = {0};
	struct xfer x = {.h = h, .q = q, .resp = &resp};
	struct curl_slist *hdrs = NULL;
	int r = setup(h, q, &x, &hdrs);

	if (r < 0) {
		curl_slist_free_all(hdrs);
		return r;
	}
	CURLcode cc = curl_easy_perform(h->curl);
	curl_slist_free_all(hdrs);
	effective_host(h->curl, &resp);
	if (cc != CURLE_OK) {
		char *u = http_url_for_msg(q->url);
		r = x.err ? x.err : curl_err(cc);
		if (r == -EFBIG)
			sfs_errf(ret_msg, r, "%s %s: the response is longer than the %llu bytes allowed",
				 q->method, u ? u : "?", (unsigned long long)q->body_max);
		else if (cc == CURLE_OPERATION_TIMEDOUT)
			sfs_errf(ret_msg, r,
				 q->small ? "%s %s: timed out (not answered within %lld s)"
					  : "%s %s: timed out (under 1 KiB/s for %lld s)",
				 q->method, u ? u : "?", (long long)((h->o.timeout_ns + 999999999) / 1000000000));
		else if (r == -ECANCELED)
			sfs_errf(ret_msg, r, "%s %s: context canceled", q->method, u ? u : "?");
		else if (x.err)
			sfs_errf(ret_msg, r, "%s %s: %s", q->method, u ? u : "?", strerror(-r));
		else
			sfs_errf(ret_msg, r, "%s %s: %s", q->method, u ? u : "?",
				 curl_easy_strerror(cc));
		free(u);
		http_resp_release(&resp);
		return r;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp.status);
	*ret = resp;
	return 0;
}
