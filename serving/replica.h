/*
 * Read replicas (issue 14): `itemvecd --replica-of URL` mirrors the
 * primary's active model. Every second the loop polls the primary's
 * GET /v1/replication/active with If-None-Match (its ETag names the model,
 * its checksum and whether it has an ANN index); on a change a worker
 * downloads the model file, the item names and the ANN index files into
 * <state>/replica/, verifies every checksum (model file CRCs, the names'
 * trailer CRC, the index manifest's CRCs against the model), builds the
 * served model there (reading the downloaded index, never rebuilding it)
 * and the loop swaps it in with serving_install_active. A failed poll or
 * download is counted and retried on the next tick; the last model keeps
 * being served, so a primary outage only grows the lag.
 *
 * HTTP client: libcurl (TLS to a remote primary, timeouts, redirects)
 * on the libuv pool with blocking transfers; a worker touches only its
 * sync record. Loop thread for everything exported here.
 */
#ifndef ITEMVEC_SERVING_REPLICA_H
#define ITEMVEC_SERVING_REPLICA_H

#include <stddef.h>
#include <stdint.h>

struct app;

struct replica_status {
    const char *of;         /* the primary's URL (borrowed from the replica) */
    const char *model;      /* the mirrored model id, "" before the first */
    double lag_seconds;     /* since the replica last confirmed it serves the
                               primary's active model (-1: never) */
    uint64_t syncs;         /* models installed */
    uint64_t failures;      /* failed polls and downloads */
    const char *last_error; /* "" when the last attempt succeeded */
};

/* Starts mirroring url (its base, e.g. http://10.0.0.1:8080) with the
 * bearer token in token_file (NULL: none; first line of the file). Stores
 * the replica in app. Returns 0, -EINVAL (bad URL or unreadable token
 * file), -ENOMEM. */
int replica_start(struct app *app, const char *url, const char *token_file);

/* Stops polling and aborts a transfer in flight (shutdown). */
void replica_stop(struct app *app);

/* Frees the replica once the loop has ended. */
void replica_destroy(struct app *app);

/* 0 and *out filled (borrowed strings, valid until the loop runs on)
 * when this daemon is a replica, else -ENOENT. */
int replica_status_get(struct app *app, struct replica_status *out);

/* The names blob a primary sends for a model and a replica decodes:
 * "IVNAMES1", u32 count, per item u32 key and three u16-length strings
 * (id, title, artist; length 0xFFFF = null), then the CRC32 of all bytes
 * before it. Little-endian. */
struct served_model;
int replica_names_encode(const struct served_model *m, unsigned char **out, size_t *len);

#endif
