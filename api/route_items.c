/*
 * /v1/items/{id}: one item with its title, artist and playlist count, and
 * /v1/items?q=PREFIX: the search by id, title or artist prefix
 * (storage/items_search.c), paginated. Loop thread, the loop's store; when
 * the search table lags the items (after an upload), the request first
 * waits, suspended, for the writer to bring it up to date, so a search
 * never misses a stored item and uploads never pay for the search.
 * (Similar items and co-occurrences of an item live in their own files.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/server_internal.h"
#include "conf/app.h"
#include "storage/store.h"
#include "storage/writer.h"

int api__item_get(struct api_req *req, const char *id, struct store_item *it)
{
    int rc = store_item_get(req->app->store, id, it);
    if (rc == -ENOENT)
        api_reply_problem(req, 404, "not-found", "Not Found", NULL, "no item with this id");
    else if (rc != 0)
        api__reply_storage_error(req, rc);
    return rc;
}

void api_item_get(struct api_req *req)
{
    const char *id = api__path_id(req);
    struct store_item it;
    if (!id || api__item_get(req, id, &it) != 0)
        return;
    json_t *body = json_pack("{s:o,s:o,s:o,s:I}", "id", api_json_str(it.id), "title",
                             api_json_str(it.title), "artist", api_json_str(it.artist),
                             "playlists", (json_int_t)it.playlists);
    store_item_deinit(&it);
    api_reply_json(req, 200, body);
}

/* ---- GET /v1/items?q= ---- */

/* Page tokens: one letter for the phase (i id, t title, a artist, k all)
 * and the key to resume after; opaque to users. */
static const char search_phase_letter[] = {'i', 't', 'a', 'k'};

static int search_token_parse(struct api_req *req, const char *q, struct store_search_pos *pos)
{
    const char *t = api_query(req, "page_token");
    store_items_search_start(q, pos);
    if (!t || !*t)
        return 0;
    const char *l = memchr(search_phase_letter, t[0], sizeof search_phase_letter);
    char *end = NULL;
    long long key = l && t[1] >= '0' && t[1] <= '9' ? strtoll(t + 1, &end, 10) : -1;
    if (!l || !end || *end || key < 0 || key > INT64_MAX / 2) {
        api_reply_problem(req, 400, "bad-page-token", "Bad Request",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "page_token",
                                    "detail", "not a token from next_page_token"),
                          "page_token is not valid");
        return -EINVAL;
    }
    pos->field = (enum store_search_field)(l - search_phase_letter);
    pos->key = key;
    return 0;
}

static int search_cb(void *ud, const struct store_item *it)
{
    json_t *arr = ud;
    json_t *o = json_pack("{s:o,s:o,s:o,s:I}", "id", api_json_str(it->id), "title",
                          api_json_str(it->title), "artist", api_json_str(it->artist),
                          "playlists", (json_int_t)it->playlists);
    return json_array_append_new(arr, o) == 0 ? 0 : -ENOMEM;
}

struct search_req {
    struct api_req *req;
    struct writer_op op;
    const char *q; /* request-owned (api_query) */
    struct store_search_pos pos;
    int size;
};

static void search_reply(struct api_req *req, struct search_req *sr)
{
    json_t *arr = json_array();
    int rc = arr ? store_items_search(req->app->store, sr->q, &sr->pos, sr->size, search_cb, arr)
                 : -ENOMEM;
    if (rc == -EINVAL) {
        json_decref(arr);
        api_reply_problem(req, 400, "bad-page-token", "Bad Request",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "page_token",
                                    "detail", "not a token from this search's next_page_token"),
                          "page_token does not belong to this search (q)");
        return;
    }
    if (rc != 0) {
        json_decref(arr);
        if (rc == -ENOMEM)
            api_reply_oom(req);
        else
            api__reply_storage_error(req, rc);
        return;
    }
    json_t *next = json_null();
    if (sr->pos.field != STORE_SEARCH_DONE) {
        char tok[32];
        snprintf(tok, sizeof tok, "%c%lld", search_phase_letter[sr->pos.field],
                 (long long)sr->pos.key);
        json_decref(next);
        next = json_string(tok);
    }
    api_reply_json(req, 200, json_pack("{s:o,s:o}", "items", arr, "next_page_token", next));
}

static int search_sync_fn(struct store *s, void *arg)
{
    return store_items_search_sync(s);
}

static void search_synced(void *arg, int rc)
{
    struct search_req *sr = arg;
    if (rc != 0)
        api__reply_storage_error(sr->req, rc);
    else
        search_reply(sr->req, sr);
    api_req_resume(sr->req);
}

void api_items_search(struct api_req *req)
{
    const char *q = api_query(req, "q");
    int64_t size;
    if (!q)
        q = "";
    if (strlen(q) > STORE_SEARCH_PREFIX_MAX) {
        api_reply_problem(req, 400, "bad-parameter", "Bad Request",
                          json_pack("{s:[{s:s,s:s}]}", "errors", "pointer", "q", "detail",
                                    "at most 256 bytes"),
                          "q must be at most %d bytes", STORE_SEARCH_PREFIX_MAX);
        return;
    }
    struct search_req *sr = NULL;
    struct store_search_pos pos;
    if (api_query_int(req, "page_size", 100, 1, 1000, &size) != 0 ||
        search_token_parse(req, q, &pos) != 0 || !(sr = api_state_create(req, sizeof *sr, NULL)))
        return;
    *sr = (struct search_req){.req = req, .q = q, .pos = pos, .size = (int)size};
    /* Listing every item reads items itself; a prefix search reads the
     * search table, which may lag the items. */
    int stale = *q ? store_items_search_stale(req->app->store) : 0;
    if (stale < 0) {
        api__reply_storage_error(req, stale);
    } else if (stale) {
        api_req_suspend(req);
        writer_submit(req->app->writer, &sr->op, search_sync_fn, search_synced, sr);
    } else {
        search_reply(req, sr);
    }
}
