/*
 * blobrows.c — small blobs as rows of the blobs table (blobrows.h).
 *
 * Locking: the database lock around every statement; a put is one unit of work.
 */
#include "blobrows.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"

int blobrows_put(struct sfs_db *db, const char *hex, const void *buf, size_t len)
{
	sqlite3_stmt *st;
	int r;

	if (len > INT32_MAX)
		return -EFBIG;
	sfs_db_lock(db);
	if ((r = sfs_db_begin(db)) < 0) {
		sfs_db_unlock(db);
		return r;
	}
	if (!(st = sfs_db_stmt(db, STMT_BLOBROW_PUT))) {
		r = -EIO;
	} else {
		sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)len);
		/* a zero-length blob is "" and not NULL: data is NOT NULL */
		sqlite3_bind_blob(st, 3, len ? buf : "", (int)len, SQLITE_STATIC);
		r = sfs_db_step_done(db, STMT_BLOBROW_PUT, st);
	}
	r = sfs_db_end(db, r);
	sfs_db_unlock(db);
	return r;
}

int64_t blobrows_size(struct sfs_db *db, const char *hex)
{
	sqlite3_stmt *st;
	int64_t size = -ENOENT;

	sfs_db_lock(db);
	if (!(st = sfs_db_stmt(db, STMT_BLOBROW_SIZE))) {
		size = -EIO;
	} else {
		sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			size = sqlite3_column_int64(st, 0);
		else if (rc != SQLITE_DONE)
			size = sfs_db_error(db, STMT_BLOBROW_SIZE, rc);
		sqlite3_reset(st);
	}
	sfs_db_unlock(db);
	return size;
}

int blobrows_has(struct sfs_db *db, const char *hex)
{
	sqlite3_stmt *st;
	int r;

	sfs_db_lock(db);
	if (!(st = sfs_db_stmt(db, STMT_BLOBROW_HAS))) {
		r = -EIO;
	} else {
		sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sfs_db_error(db, STMT_BLOBROW_HAS, rc);
		sqlite3_reset(st);
	}
	sfs_db_unlock(db);
	return r;
}

int blobrows_has_all(struct sfs_db *db, const char *const *hex, size_t n)
{
	size_t rows = n > SFS_DB_BATCH_FEW ? SFS_DB_BATCH_ROWS : SFS_DB_BATCH_FEW;
	enum sfs_stmt id =
	    rows == SFS_DB_BATCH_ROWS ? STMT_BLOBROW_ABSENT_ROWS : STMT_BLOBROW_ABSENT_FEW;
	sqlite3_stmt *st;
	int r;

	if (n == 0 || n > SFS_DB_BATCH_ROWS)
		return -EINVAL;
	sfs_db_lock(db);
	if (!(st = sfs_db_stmt(db, id))) {
		r = -EIO;
	} else {
		/* fewer than the statement's: the last one again (db.h) */
		for (size_t i = 0; i < rows; i++)
			sqlite3_bind_text(st, (int)i + 1, hex[i < n ? i : n - 1], -1,
					  SQLITE_STATIC);
		int rc = sqlite3_step(st);
		r = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) == 0 : sfs_db_error(db, id, rc);
		sqlite3_reset(st);
	}
	sfs_db_unlock(db);
	return r;
}

int blobrows_read(struct sfs_db *db, const char *hex, char **ret_buf, size_t *ret_len)
{
	sqlite3_stmt *st;
	int r = -ENOENT;

	sfs_db_lock(db);
	if (!(st = sfs_db_stmt(db, STMT_BLOBROW_GET))) {
		r = -EIO;
	} else {
		sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			size_t len = (size_t)sqlite3_column_bytes(st, 0);
			const void *p = sqlite3_column_blob(st, 0);
			char *buf = malloc(len + 1);
			if (!buf) {
				r = -ENOMEM;
			} else {
				if (len)
					memcpy(buf, p, len);
				buf[len] = '\0';
				*ret_buf = buf;
				if (ret_len)
					*ret_len = len;
				r = 0;
			}
		} else if (rc != SQLITE_DONE) {
			r = sfs_db_error(db, STMT_BLOBROW_GET, rc);
		}
		sqlite3_reset(st);
	}
	sfs_db_unlock(db);
	return r;
}

int blobrows_delete(struct sfs_db *db, const char *hex)
{
	sqlite3_stmt *st;
	int r;

	sfs_db_lock(db);
	if ((r = sfs_db_begin(db)) < 0) {
		sfs_db_unlock(db);
		return r;
	}
	if (!(st = sfs_db_stmt(db, STMT_BLOBROW_DELETE))) {
		r = -EIO;
	} else {
		sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
		r = sfs_db_step_done(db, STMT_BLOBROW_DELETE, st);
		if (r == 0 && sqlite3_changes(sfs_db_handle(db)) == 0)
			r = -ENOENT;
	}
	/* a missing row is no failure of the unit */
	int e = sfs_db_end(db, r == -ENOENT ? 0 : r);
	sfs_db_unlock(db);
	return r == -ENOENT ? r : e;
}

int blobrows_names(struct sfs_db *db, char (**names)[SFS_HEX_SIZE], size_t *n, size_t *cap)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	sfs_db_lock(db);
	if (!(st = sfs_db_stmt(db, STMT_BLOBROW_NAMES))) {
		sfs_db_unlock(db);
		return -EIO;
	}
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *hex = (const char *)sqlite3_column_text(st, 0);
		if (!hex || !sfs_is_hex(hex))
			continue;
		if ((r = sfs_grow((void **)names, cap, *n + 1, sizeof(**names))) < 0)
			break;
		memcpy((*names)[*n], hex, SFS_HEX_SIZE);
		(*n)++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sfs_db_error(db, STMT_BLOBROW_NAMES, rc);
	sqlite3_reset(st);
	sfs_db_unlock(db);
	return r;
}

int blobrows_usage(struct sfs_db *db, uint64_t *ret_blobs, uint64_t *ret_bytes)
{
	sqlite3_stmt *st;
	int r = 0;

	sfs_db_lock(db);
	if (!(st = sfs_db_stmt(db, STMT_BLOBROW_USAGE))) {
		r = -EIO;
	} else {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*ret_blobs = (uint64_t)sqlite3_column_int64(st, 0);
			*ret_bytes = (uint64_t)sqlite3_column_int64(st, 1);
		} else {
			r = sfs_db_error(db, STMT_BLOBROW_USAGE, rc);
		}
		sqlite3_reset(st);
	}
	sfs_db_unlock(db);
	return r;
}
