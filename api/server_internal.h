/*
 * Helpers shared by api/ files that are not part of the handler interface
 * (libuv-style double-underscore names).
 */
#ifndef ITEMVEC_API_SERVER_INTERNAL_H
#define ITEMVEC_API_SERVER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

struct api_req;
struct store;

/* Percent-decodes len bytes into a new string (caller frees); '+' becomes
 * a space when plus_space. NULL on a bad escape or an encoded NUL. */
char *api__percent_decode(const char *s, size_t len, int plus_space);

/* Frees the reply headers and decoded query copies of a request. */
void api__headers_free(struct api_req *req);
void api__query_free(struct api_req *req);

/* Checks the Authorization header against the configured tokens. Returns
 * 0 when allowed; otherwise replies 401/403 and returns -EACCES. */
int api__auth_check(struct api_req *req);

/* Records a finished request in the metrics. */
void api__metrics_observe(struct api_req *req, int status, double seconds);

/* Queues a client write on the writer unless its queue is at
 * limits.max_writer_queue / max_writer_queue_bytes (bytes: the write set's
 * memory). Returns 0 (queued: done will run) or -EBUSY after replying 503
 * with Retry-After (done will not run). */
struct writer_op;
int api__writer_submit(struct api_req *req, struct writer_op *op, uint64_t bytes,
                       int (*fn)(struct store *, void *), void (*done)(void *, int), void *arg);

/* Replies 500/503 for a storage error code. */
void api__reply_storage_error(struct api_req *req, int rc);

/* The {id} path parameter after api_id_invalid; replies 400 and returns
 * NULL when invalid. */
const char *api__path_id(struct api_req *req);

/* Reads item id; replies 404 (or 500) and returns the error when it
 * fails. The caller clears *it on success. */
struct store_item;
int api__item_get(struct api_req *req, const char *id, struct store_item *it);

#endif
