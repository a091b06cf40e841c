/*
 * /v1/items/{id}: one item with its title, artist and playlist count.
 * (Similar items and co-occurrences of an item live in their own files.)
 */
#include <errno.h>

#include "api/api.h"
#include "api/server_internal.h"
#include "conf/app.h"
#include "storage/store.h"

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
    store_item_clear(&it);
    api_reply_json(req, 200, body);
}
