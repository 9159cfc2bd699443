/*
 * display.c — the tty progress display, drawn from a job's status.json.
 *
 * status.json is one BuildKit SolveStatus object a line (README "Progress
 * formats"): `vertexes` (each a vertex's whole state at that moment: digest,
 * name, started, completed, cached, error), `statuses` (progress of a long
 * step: id, vertex, name, current, total) and `logs` (vertex, base64 data).
 * The model keeps one record per vertex digest, replaced by each update, the
 * last LOG_TAIL lines of its log, and its newest status.
 *
 * The picture is drawn like `docker buildx build --progress=tty`:
 *
 *   [+] Building 12.3s (8/10)
 *    => CACHED [src] local /home/me/app                          0.0s
 *    => [compile] sh -c cc -O2 -o out/app src/main.c             3.1s
 *    => # src/main.c: In function 'main':
 *
 * on stderr, redrawn in place (cursor up, clear to end of line) at most every
 * 100 ms, each line cut to the terminal's width so the line count stays true,
 * and only as many vertices as fit the terminal's height (finished ones leave
 * first).  The final draw shows every vertex, then one summary line.  Colour
 * unless NO_COLOR is set (https://no-color.org) or TERM is dumb.
 *
 * Lookups by digest go through a small open-addressing hash table, so a job of
 * 100,000 vertices costs O(1) an update.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "solverctl.h"

#define LOG_TAIL 6
#define REDRAW_MS 100

struct vtx {
	char *digest;
	char *name;
	double started, completed; /* 0: not yet */
	bool cached;
	char *error;
	size_t order; /* first appearance */
	/* log tail: a ring of whole lines, then the line being written */
	char *tail[LOG_TAIL];
	size_t ntail, tail_head;
	struct ctl_buf partial;
	/* newest `statuses` entry */
	char *st_name;
	long long st_current, st_total;
	bool st_done;
};

struct ctl_display {
	struct vtx **v;
	size_t nv, cap;
	size_t *slots; /* hash table of indexes+1 into v */
	size_t nslots;
	struct ctl_buf line; /* an incomplete status.json line */
	double t0, last_draw;
	size_t drawn; /* lines on screen from the last draw */
	bool colour;
	unsigned spin;
};

static const char *const C_RESET = "\033[0m";
static const char *const C_BLUE = "\033[34m";
static const char *const C_CYAN = "\033[36m";
static const char *const C_RED = "\033[31m";
static const char *const C_YELLOW = "\033[33m";
static const char *const C_DIM = "\033[2m";
static const char *const C_BOLD = "\033[1m";

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct vtx *lookup(struct ctl_display *d, const char *digest, bool add)
{
	if (d->nslots) {
		for (size_t i = hash(digest) & (d->nslots - 1);; i = (i + 1) & (d->nslots - 1)) {
			size_t s = d->slots[i];
			if (!s)
				break;
			if (!strcmp(d->v[s - 1]->digest, digest))
				return d->v[s - 1];
		}
	}
	if (!add)
		return NULL;
	if ((d->nv + 1) * 2 > d->nslots) {
		size_t n = d->nslots ? d->nslots * 2 : 64;
		free(d->slots);
		d->slots = calloc(n, sizeof(*d->slots));
		if (!d->slots) {
			fputs("solverctl: out of memory\n", stderr);
			exit(CTL_EXIT_FAIL);
		}
		d->nslots = n;
		for (size_t k = 0; k < d->nv; k++) {
			size_t i = hash(d->v[k]->digest) & (n - 1);
			while (d->slots[i])
				i = (i + 1) & (n - 1);
			d->slots[i] = k + 1;
		}
	}
	if (d->nv == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 32;
		struct vtx **nvv = realloc(d->v, d->cap * sizeof(*nvv));
		if (!nvv) {
			fputs("solverctl: out of memory\n", stderr);
			exit(CTL_EXIT_FAIL);
		}
		d->v = nvv;
	}
	struct vtx *v = ctl_xmalloc(sizeof(*v));
	*v = (struct vtx){.digest = ctl_xstrdup(digest), .order = d->nv};
	d->v[d->nv++] = v;
	size_t i = hash(digest) & (d->nslots - 1);
	while (d->slots[i])
		i = (i + 1) & (d->nslots - 1);
	d->slots[i] = d->nv;
	return v;
}

static bool want_colour(void)
{
	const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
	return !(nc && *nc) && !(term && !strcmp(term, "dumb"));
}

struct ctl_display *ctl_display_new(bool tty)
{
	struct ctl_display *d = ctl_xmalloc(sizeof(*d));

	*d = (struct ctl_display){0};
	d->colour = tty && want_colour();
	d->t0 = ctl_now();
	return d;
}

static void vtx_free(struct vtx *v)
{
	free(v->digest);
	free(v->name);
	free(v->error);
	for (size_t i = 0; i < LOG_TAIL; i++)
		free(v->tail[i]);
	ctl_buf_release(&v->partial);
	free(v->st_name);
	free(v);
}

struct ctl_display *ctl_display_free(struct ctl_display *d)
{
	if (!d)
		return NULL;
	for (size_t i = 0; i < d->nv; i++)
		vtx_free(d->v[i]);
	free(d->v);
	free(d->slots);
	ctl_buf_release(&d->line);
	free(d);
	return NULL;
}

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? ctl_xstrdup(s) : NULL;
}

static void on_vertex(struct ctl_display *d, json_t *o)
{
	const char *dg = json_string_value(json_object_get(o, "digest"));
	if (!dg)
		return;
	struct vtx *v = lookup(d, dg, true);
	const char *name = json_string_value(json_object_get(o, "name"));
	if (name)
		set_str(&v->name, name);
	/* each update is the vertex's whole state: absent fields are empty */
	v->started = ctl_parse_time(json_string_value(json_object_get(o, "started")));
	v->completed = ctl_parse_time(json_string_value(json_object_get(o, "completed")));
	if (v->started < 0)
		v->started = 0;
	if (v->completed < 0)
		v->completed = 0;
	v->cached = json_is_true(json_object_get(o, "cached"));
	set_str(&v->error, json_string_value(json_object_get(o, "error")));
}

static void on_status(struct ctl_display *d, json_t *o)
{
	const char *dg = json_string_value(json_object_get(o, "vertex"));
	if (!dg)
		return;
	struct vtx *v = lookup(d, dg, true);
	const char *name = json_string_value(json_object_get(o, "name"));
	if (!name)
		name = json_string_value(json_object_get(o, "id"));
	set_str(&v->st_name, name ? name : "");
	v->st_current = json_integer_value(json_object_get(o, "current"));
	v->st_total = json_integer_value(json_object_get(o, "total"));
	v->st_done = json_object_get(o, "completed") != NULL;
}

static void tail_push(struct vtx *v, const char *s, size_t n)
{
	/* a line rewritten with \r shows as what it ends as */
	const char *cr = memrchr(s, '\r', n);
	if (cr) {
		n -= (size_t)(cr + 1 - s);
		s = cr + 1;
	}
	char *line = ctl_xmalloc(n + 1);
	memcpy(line, s, n);
	line[n] = '\0';
	size_t slot = (v->tail_head + v->ntail) % LOG_TAIL;
	if (v->ntail == LOG_TAIL) {
		slot = v->tail_head;
		v->tail_head = (v->tail_head + 1) % LOG_TAIL;
	} else {
		v->ntail++;
	}
	free(v->tail[slot]);
	v->tail[slot] = line;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static void on_log(struct ctl_display *d, json_t *o)
{
	const char *dg = json_string_value(json_object_get(o, "vertex"));
	const char *data = json_string_value(json_object_get(o, "data"));
	if (!dg || !data)
		return;
	struct vtx *v = lookup(d, dg, true);
	unsigned acc = 0;
	int bits = 0;
	for (const char *p = data; *p; p++) {
		int x = b64val((unsigned char)*p);
		if (x < 0)
			continue;
		acc = (acc << 6) | (unsigned)x;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			char c = (char)((acc >> bits) & 0xff);
			if (c == '\n') {
				tail_push(v, v->partial.s ? v->partial.s : "", v->partial.len);
				ctl_buf_reset(&v->partial);
			} else {
				ctl_buf_add(&v->partial, &c, 1);
			}
		}
	}
}

static void on_line(struct ctl_display *d, const char *s, size_t n)
{
	json_t *o = json_loadb(s, n, 0, NULL), *e;
	size_t i;

	if (!o)
		return;
	json_array_foreach(json_object_get(o, "vertexes"), i, e) on_vertex(d, e);
	json_array_foreach(json_object_get(o, "statuses"), i, e) on_status(d, e);
	json_array_foreach(json_object_get(o, "logs"), i, e) on_log(d, e);
	json_decref(o);
}

void ctl_display_feed(struct ctl_display *d, const char *p, size_t n)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		if (!nl) {
			ctl_buf_add(&d->line, p, n);
			return;
		}
		size_t k = (size_t)(nl - p);
		if (d->line.len) {
			ctl_buf_add(&d->line, p, k);
			on_line(d, d->line.s, d->line.len);
			ctl_buf_reset(&d->line);
		} else {
			on_line(d, p, k);
		}
		p += k + 1;
		n -= k + 1;
	}
}

/* ---- drawing ---- */

static void term_size(int *cols, int *rows)
{
	struct winsize ws;

	*cols = 80;
	*rows = 24;
	if (ioctl(2, TIOCGWINSZ, &ws) == 0) {
		if (ws.ws_col > 10)
			*cols = ws.ws_col;
		if (ws.ws_row > 4)
			*rows = ws.ws_row;
	}
}

/* Appends S cut to at most COLS columns (a UTF-8 code point a column), with
 * control characters shown as blanks; returns the columns used. */
static int add_cut(struct ctl_buf *b, const char *s, int cols)
{
	int used = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool starts = (*p & 0xc0) != 0x80;
		if (starts && used >= cols)
			break;
		if (*p < 0x20 || *p == 0x7f) {
			ctl_buf_add(b, " ", 1);
		} else {
			ctl_buf_add(b, p, 1);
		}
		if (starts)
			used++;
	}
	return used;
}

/* One screen line: COLOUR, LEFT (cut), then RIGHT aligned at the edge. */
static void add_row(struct ctl_display *d, struct ctl_buf *b, const char *colour, const char *left,
		    const char *right, int cols)
{
	int rlen = right ? (int)strlen(right) : 0;
	int room = cols - 1 - (rlen ? rlen + 1 : 0);

	ctl_buf_addstr(b, "\033[K");
	if (d->colour && colour)
		ctl_buf_addstr(b, colour);
	int used = add_cut(b, left, room > 0 ? room : 0);
	if (rlen) {
		for (; used < room + 1; used++)
			ctl_buf_add(b, " ", 1);
		ctl_buf_addstr(b, right);
	}
	if (d->colour && colour)
		ctl_buf_addstr(b, C_RESET);
	ctl_buf_add(b, "\n", 1);
}

/* Bytes as "12.3 MiB". */
static void human(char *out, size_t n, long long b)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = b < 0 ? 0 : (double)b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, n, "%lld B", b < 0 ? 0 : b);
	else
		snprintf(out, n, "%.1f %s", v, unit[u]);
}

static bool running(const struct vtx *v)
{
	return v->started > 0 && v->completed == 0 && !v->cached;
}

static bool shown(const struct vtx *v)
{
	return v->name && (v->started > 0 || v->cached || v->completed > 0 || v->error);
}

/* Rows vertex V takes. */
static size_t rows_of(const struct vtx *v)
{
	size_t n = 1;
	if (running(v)) {
		n += v->ntail + (v->partial.len ? 1 : 0);
		if (v->st_name && !v->st_done)
			n++;
	}
	return n;
}

static void add_vertex(struct ctl_display *d, struct ctl_buf *b, const struct vtx *v, double now,
		       int cols)
{
	static const char spinner[] = "|/-\\";
	char dur[32], left[64];
	const char *colour = C_BLUE;
	char *text;

	if (v->cached) {
		snprintf(dur, sizeof(dur), "0.0s");
		snprintf(left, sizeof(left), " => CACHED ");
		colour = C_CYAN;
	} else if (v->error) {
		bool cancel = strstr(v->error, "cancel") != NULL;
		ctl_fmt_duration(dur, sizeof(dur), v->completed - v->started);
		snprintf(left, sizeof(left), " => %s ", cancel ? "CANCELED" : "ERROR");
		colour = cancel ? C_YELLOW : C_RED;
	} else if (running(v)) {
		char t[24];
		ctl_fmt_duration(t, sizeof(t), now - v->started);
		snprintf(dur, sizeof(dur), "%c %s", spinner[d->spin % 4], t);
		snprintf(left, sizeof(left), " => ");
		colour = C_BOLD;
	} else {
		ctl_fmt_duration(dur, sizeof(dur), v->completed - v->started);
		snprintf(left, sizeof(left), " => ");
	}
	text = ctl_xasprintf("%s%s", left, v->name);
	add_row(d, b, colour, text, dur, cols);
	free(text);
	if (!running(v))
		return;
	if (v->st_name && !v->st_done) {
		char right[96], cur[24], tot[24], bar[21];
		human(cur, sizeof(cur), v->st_current);
		if (v->st_total > 0) {
			long long fill = v->st_current * 20 / v->st_total;
			human(tot, sizeof(tot), v->st_total);
			for (int i = 0; i < 20; i++)
				bar[i] = i < fill ? '=' : ' ';
			bar[20] = '\0';
			snprintf(right, sizeof(right), "[%s] %s / %s", bar, cur, tot);
		} else {
			snprintf(right, sizeof(right), "%s", cur);
		}
		text = ctl_xasprintf(" => => %s", v->st_name);
		add_row(d, b, C_BLUE, text, right, cols);
		free(text);
	}
	for (size_t i = 0; i < v->ntail; i++) {
		text = ctl_xasprintf(" => # %s", v->tail[(v->tail_head + i) % LOG_TAIL]);
		add_row(d, b, C_DIM, text, NULL, cols);
		free(text);
	}
	if (v->partial.len) {
		text = ctl_xasprintf(" => # %s", v->partial.s);
		add_row(d, b, C_DIM, text, NULL, cols);
		free(text);
	}
}

static size_t count_done(const struct ctl_display *d)
{
	size_t n = 0;
	for (size_t i = 0; i < d->nv; i++)
		n += d->v[i]->cached || d->v[i]->completed > 0;
	return n;
}

/* Draws everything (ALL) or what fits the terminal, over the last picture. */
static void draw(struct ctl_display *d, bool all, const char *final_word)
{
	struct ctl_buf b = {0};
	int cols, rows;
	double now = ctl_now();
	char t[32], *hdr;
	size_t need = 1, skip = 0;

	term_size(&cols, &rows);
	if (d->drawn)
		ctl_buf_addf(&b, "\r\033[%zuA", d->drawn);
	for (size_t i = 0; i < d->nv; i++)
		if (shown(d->v[i]))
			need += rows_of(d->v[i]);
	/* finished vertices leave the top first when the picture is too tall */
	size_t max = rows > 2 ? (size_t)rows - 1 : 1;
	for (size_t i = 0; !all && need > max && i < d->nv; i++) {
		if (shown(d->v[i]) && !running(d->v[i])) {
			need -= rows_of(d->v[i]);
			skip = i + 1;
		}
	}
	ctl_fmt_duration(t, sizeof(t), now - d->t0);
	hdr = ctl_xasprintf("[+] Building %s (%zu/%zu)%s%s", t, count_done(d), d->nv,
			    final_word ? " " : "", final_word ? final_word : "");
	add_row(d, &b, C_BLUE, hdr, NULL, cols);
	free(hdr);
	size_t lines = 1;
	for (size_t i = 0; i < d->nv; i++) {
		const struct vtx *v = d->v[i];
		if (!shown(v) || (i < skip && !running(v)))
			continue;
		add_vertex(d, &b, v, now, cols);
		lines += rows_of(v);
	}
	ctl_buf_addstr(&b, "\033[J");
	sfs_write_all(2, b.s, b.len);
	ctl_buf_release(&b);
	d->drawn = lines;
	d->last_draw = now;
	d->spin++;
}

void ctl_display_tick(struct ctl_display *d)
{
	if ((ctl_now() - d->last_draw) * 1000 >= REDRAW_MS)
		draw(d, false, NULL);
}

void ctl_display_finish(struct ctl_display *d, const char *state)
{
	size_t executed = 0, cached = 0, failed = 0, cancelled = 0;
	bool ok = state && !strcmp(state, "done");
	char t[32];

	for (size_t i = 0; i < d->nv; i++) {
		const struct vtx *v = d->v[i];
		if (v->cached)
			cached++;
		else if (v->error && strstr(v->error, "cancel"))
			cancelled++;
		else if (v->error)
			failed++;
		else if (v->completed > 0)
			executed++;
	}
	const char *word = ok					  ? "FINISHED"
			   : state && !strcmp(state, "cancelled") ? "CANCELED"
								  : "ERROR";
	draw(d, true, word);
	ctl_fmt_duration(t, sizeof(t), ctl_now() - d->t0);
	struct ctl_buf b = {0};
	if (d->colour)
		ctl_buf_addstr(&b, ok ? C_BLUE : C_RED);
	ctl_buf_addf(&b, "%s in %s: %zu executed, %zu cached, %zu failed", word, t, executed,
		     cached, failed);
	if (cancelled)
		ctl_buf_addf(&b, ", %zu cancelled", cancelled);
	if (d->colour)
		ctl_buf_addstr(&b, C_RESET);
	ctl_buf_add(&b, "\n", 1);
	sfs_write_all(2, b.s, b.len);
	ctl_buf_release(&b);
	d->drawn = 0;
}

void ctl_display_on_data(void *d, const char *p, size_t n)
{
	ctl_display_feed(d, p, n);
	ctl_display_tick(d);
}

void ctl_display_on_tick(void *d)
{
	ctl_display_tick(d);
}
