/*
 * Item keys for imported results (POST /v1/pmi/import, /v1/models/import).
 * A co-occurrence matrix or a model file refers to items by key, in
 * ascending key order; ids an import names that are not stored yet become
 * items (no title, no playlists). The file is prepared off the writer
 * with keys predicted from a snapshot (store_items_lookup); the writer
 * then inserts the new items and the result's record in one transaction
 * (store_items_import), which fails with -EAGAIN when items were added
 * meanwhile (the prediction would be wrong), so keys stay dense and the
 * file and the database always agree.
 */
#ifndef ITEMVEC_STORAGE_ITEMS_IMPORT_H
#define ITEMVEC_STORAGE_ITEMS_IMPORT_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* In one read transaction: keys[i] = the key of item ids[i] (lens[i]
 * bytes, borrowed) or 0 when it is not stored, and *max_key = the largest
 * item key (0 when there are none). Returns 0 or a negative errno
 * (-EOVERFLOW when a key does not fit 32 bits). Any thread, own handle. */
int store_items_lookup(struct store *s, const char *const *ids, const uint32_t *lens, uint32_t n,
                       uint32_t *keys, uint32_t *max_key);

/* In one write transaction: checks that the largest item key is still
 * expect_max (else -EAGAIN, nothing written), inserts ids[0..n_new) as new
 * items with keys expect_max + 1, + 2, ... in that order (title and
 * artist NULL, no playlists), adds them to the item counter, runs then(s,
 * arg) when not NULL (inserting the record that refers to them), and
 * commits. All or nothing: any error rolls everything back. Returns 0,
 * -EAGAIN, -EOVERFLOW (keys beyond 32 bits), then's error, or a storage
 * error. Writer thread. */
int store_items_import(struct store *s, uint32_t expect_max, const char *const *ids,
                       const uint32_t *lens, uint32_t n_new,
                       int (*then)(struct store *s, void *arg), void *arg);

#endif
