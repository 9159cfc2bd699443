/*
 * http.h — one HTTP request at a time over libcurl, bounded in every way the
 * far end controls (registry.c is its user).
 *
 * A struct http owns a curl easy handle (connections are reused between
 * requests) and the TLS and time settings; it is used by one thread at a time.
 * The response body goes to a sink the caller gives, never past body_max
 * bytes: a Content-Length above it stops the request before any body byte,
 * a body that grows past it stops there (-EFBIG).  A request that receives
 * fewer than 1 KiB/s for timeout_ns fails with -ETIMEDOUT, and one of
 * small bodies (small_timeout) must end within timeout_ns altogether.
 * Redirects (at most 5) may go to another host but never to another scheme
 * than the request's allowed ones (https; http only for an insecure host);
 * libcurl does not carry an Authorization header to another host.
 */
#ifndef SFS_HTTP_H
#define SFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_opts {
	const char *ca_file; /* extra CA bundle; NULL: the system's only */
	bool allow_http;     /* plain http allowed (insecure registry) */
	int64_t timeout_ns;
	/* Polled during transfers; true aborts with -ECANCELED. */
	bool (*cancelled)(void *arg);
	/* Bytes moved so far of this request (down or up). */
	void (*progress)(void *arg, uint64_t now, uint64_t total);
	void *arg;
};

struct http;
int http_new(const struct http_opts *o, struct http **ret); /* o's strings are copied */
struct http *http_free(struct http *h); /* accepts NULL, returns NULL */
/* Changes the progress callback for the next requests (NULL: none). */
void http_set_progress(struct http *h, void (*progress)(void *arg, uint64_t now, uint64_t total));

/* Returns 0 or -errno; the request is aborted. */
typedef int (*http_sink_fn)(void *arg, const void *buf, size_t len);

struct http_req {
	const char *method; /* GET HEAD POST PUT PATCH */
	const char *url;
	const char *const *headers; /* "Name: value", NULL-terminated; may be NULL */
	/* Request body: a buffer, or len bytes of fd from off (fd -1: the buffer). */
	const void *body;
	int body_fd;
	uint64_t body_off, body_len;
	/* Response body: to sink (NULL: dropped), at most body_max bytes. */
	http_sink_fn sink;
	void *sink_arg;
	uint64_t body_max;
	bool small; /* whole request bounded by timeout_ns */
};

struct http_resp {
	long status;
	/* Headers of the last response (after redirects), malloc'd or NULL. */
	char *content_type, *location, *www_authenticate, *docker_digest, *range;
	uint64_t content_length;
	bool has_length;
	char *effective_host; /* host[:port] of the last URL */
};
void http_resp_release(struct http_resp *r);

/*
 * Performs the request.  A response of any status is 0 (look at ret->status);
 * transport failures are -errno with a sentence: -ECONNREFUSED, -EHOSTUNREACH,
 * -ETIMEDOUT, -EFBIG (body_max), -ECANCELED, -EPROTO (TLS, redirects, a
 * malformed response), or the sink's error.
 */
int http_do(struct http *h, const struct http_req *q, struct http_resp *ret, char **ret_msg);

/* "scheme://host/path" of url without its query and fragment (for messages), malloc'd. */
char *http_url_for_msg(const char *url);

#endif
