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
void api__headers_deinit(struct api_req *req);
void api__query_deinit(struct api_req *req);

/* Checks the Authorization header of a request to a protected path (/v1,
 * /metrics when closed) against the loaded tokens, before routing. Returns
 * 0 when the path is open or the token is valid (req->auth_read_only set
 * for a read-only one); otherwise replies 401 and returns -EACCES. */
int api__auth_authenticate(struct api_req *req);

/* After routing: a read-only token on a route that writes gets 403
 * (returns -EACCES); 0 otherwise. */
int api__auth_authorize(struct api_req *req);

/* The server's queue of request work on the pool (api/work.h). */
struct app;
struct api_work_queue *api__work_queue(struct app *app);

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

/* The {id} path parameter after text_id_invalid; replies 400 and returns
 * NULL when invalid. */
const char *api__path_id(struct api_req *req);

/* Reads item id; replies 404 (or 500) and returns the error when it
 * fails. The caller clears *it on success. */
struct store_item;
int api__item_get(struct api_req *req, const char *id, struct store_item *it);

/* Gets the matrix of pmi job `job` (NULL or "": the newest succeeded pmi
 * job) through serving/pmi_cache: resolves the job here (serving/ does
 * not know the job system), then as pmi_cache_get. cb gets -ENOENT at
 * once when there is no such succeeded job. (route_pmi.c) */
struct pmi_matrix;
void api__pmi_get(struct api_req *req, const char *job,
                  void (*cb)(void *arg, struct pmi_matrix *m, int rc), void *arg);

/* The "index" object of a served model for GET /v1/models/{id} and
 * /v1/info: kind exact|ann, and for ann the library, build/load time,
 * memory, build-time recall@10 and parameters. New reference.
 * (route_models.c) */
struct served_model;
json_t *api__index_json(const struct served_model *sm);

/* On a replica, answers a write (not GET/HEAD) with 403 naming the
 * primary and returns -EPERM; else 0. (route_replication.c) */
int api__replica_refuse(struct api_req *req);

#endif
