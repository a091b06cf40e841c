/*
 * The in-memory write set of one upload (storage/batch.h). Built row by row
 * while the body streams through the parser, then applied by
 * store_batch_commit (commit.c) in one transaction.
 *
 * Memory: a row costs one uint32 (its item's batch index) in its playlist's
 * array; each distinct playlist id, item id, title and artist is stored
 * once (interned with FNV-1a and open addressing, load factor <= 1/2). So a
 * 3 M-row upload with 300 k items needs ~25 MB rather than the ~200 MB of
 * its body. batch->memory counts every allocation, for batch_memory().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/batch_internal.h"

#define BATCH_CHUNK_SIZE (256 * 1024)
#define BATCH_MAX_STRINGS (UINT32_MAX / 2)

static void *batch_realloc(struct batch *b, void *p, size_t old_bytes, size_t new_bytes)
{
    void *q = realloc(p, new_bytes);

    if (q)
        b->memory = b->memory - old_bytes + new_bytes;
    return q;
}

static uint32_t batch_hash(const char *s, size_t len)
{
    /* FNV-1a, 64-bit, folded: cheap and good enough for ids. */
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return (uint32_t)(h ^ (h >> 32));
}

/* Copies len bytes + NUL into the arena; the copy never moves. */
static const char *batch_arena_copy(struct batch *b, const char *s, size_t len)
{
    struct batch__chunk *c = b->chunks;
    char *dst;

    if (!c || c->size - c->used < len + 1) {
        size_t size = len + 1 > BATCH_CHUNK_SIZE ? len + 1 : BATCH_CHUNK_SIZE;
        c = malloc(sizeof *c + size);
        if (!c)
            return NULL;
        b->memory += sizeof *c + size;
        c->next = b->chunks;
        c->used = 0;
        c->size = size;
        b->chunks = c;
    }
    dst = c->data + c->used;
    if (len > 0)
        memcpy(dst, s, len);
    dst[len] = '\0';
    c->used += len + 1;
    return dst;
}

static int batch_strtab_grow_slots(struct batch *b, struct batch__strtab *t)
{
    size_t n_slots = t->slots ? (size_t)t->mask + 1 : 0;
    size_t new_n = n_slots ? n_slots * 2 : 64;
    struct batch__slot *slots = calloc(new_n, sizeof *slots);

    if (!slots)
        return -ENOMEM;
    b->memory += new_n * sizeof *slots;
    for (size_t i = 0; i < n_slots; i++) {
        size_t pos;
        if (!t->slots[i].idx1)
            continue;
        pos = t->slots[i].hash & (new_n - 1);
        while (slots[pos].idx1)
            pos = (pos + 1) & (new_n - 1);
        slots[pos] = t->slots[i];
    }
    free(t->slots);
    b->memory -= n_slots * sizeof *slots;
    t->slots = slots;
    t->mask = (uint32_t)(new_n - 1);
    return 0;
}

/* Grows the per-entry arrays of t (and the per-playlist / per-item arrays
 * that parallel it) to hold at least one more entry. */
static int batch_strtab_grow_entries(struct batch *b, struct batch__strtab *t)
{
    uint32_t cap = t->cap ? t->cap + t->cap / 2 : 64;
    void *p;

    if (t->cap >= BATCH_MAX_STRINGS)
        return -ENOMEM;
    p = batch_realloc(b, t->str, t->cap * sizeof *t->str, cap * sizeof *t->str);
    if (!p)
        return -ENOMEM;
    t->str = p;
    p = batch_realloc(b, t->len, t->cap * sizeof *t->len, cap * sizeof *t->len);
    if (!p)
        return -ENOMEM;
    t->len = p;
    if (t == &b->playlists) {
        p = batch_realloc(b, b->lists, t->cap * sizeof *b->lists, cap * sizeof *b->lists);
        if (!p)
            return -ENOMEM;
        b->lists = p;
        memset(b->lists + t->cap, 0, (cap - t->cap) * sizeof *b->lists);
    } else if (t == &b->items) {
        p = batch_realloc(b, b->title, t->cap * sizeof *b->title, cap * sizeof *b->title);
        if (!p)
            return -ENOMEM;
        b->title = p;
        p = batch_realloc(b, b->artist, t->cap * sizeof *b->artist, cap * sizeof *b->artist);
        if (!p)
            return -ENOMEM;
        b->artist = p;
    }
    t->cap = cap;
    return 0;
}

/* Finds or adds s in t; *out is its index. */
static int batch_intern(struct batch *b, struct batch__strtab *t, const char *s, size_t len,
                        uint32_t *out)
{
    uint32_t h, idx;
    size_t pos;
    const char *copy;

    if (len > UINT32_MAX - 1)
        return -ENOMEM;
    h = batch_hash(s, len);
    if (t->slots) {
        for (pos = h & t->mask; t->slots[pos].idx1; pos = (pos + 1) & t->mask) {
            if (t->slots[pos].hash != h)
                continue;
            idx = t->slots[pos].idx1 - 1;
            if (t->len[idx] == len && memcmp(t->str[idx], s, len) == 0) {
                *out = idx;
                return 0;
            }
        }
    }
    /* Keep the load factor <= 1/2 so probes stay short. */
    if (!t->slots || (size_t)(t->n + 1) * 2 > (size_t)t->mask + 1) {
        if (batch_strtab_grow_slots(b, t) < 0)
            return -ENOMEM;
    }
    if (t->n == t->cap && batch_strtab_grow_entries(b, t) < 0)
        return -ENOMEM;
    copy = batch_arena_copy(b, s, len);
    if (!copy)
        return -ENOMEM;
    idx = t->n++;
    t->str[idx] = copy;
    t->len[idx] = (uint32_t)len;
    if (t == &b->items) {
        b->title[idx] = 0;
        b->artist[idx] = 0;
    }
    for (pos = h & t->mask; t->slots[pos].idx1; pos = (pos + 1) & t->mask)
        ;
    t->slots[pos].hash = h;
    t->slots[pos].idx1 = idx + 1;
    *out = idx;
    return 0;
}

struct batch *batch_create(void)
{
    struct batch *b = calloc(1, sizeof *b);

    if (b)
        b->memory = sizeof *b;
    return b;
}

static void batch_strtab_free(struct batch__strtab *t)
{
    free(t->str);
    free(t->len);
    free(t->slots);
}

void batch_destroy(struct batch *b)
{
    if (!b)
        return;
    for (uint32_t i = 0; i < b->playlists.n; i++)
        free(b->lists[i].idx);
    free(b->lists);
    free(b->title);
    free(b->artist);
    batch_strtab_free(&b->playlists);
    batch_strtab_free(&b->items);
    batch_strtab_free(&b->texts);
    while (b->chunks) {
        struct batch__chunk *next = b->chunks->next;
        free(b->chunks);
        b->chunks = next;
    }
    free(b);
}

int batch_add_playlist(struct batch *b, const char *playlist, size_t playlist_len)
{
    uint32_t p;

    return batch_intern(b, &b->playlists, playlist, playlist_len, &p);
}

/* Sets *slot (a title or artist of an item) to s, interning it unless it
 * already is the item's value: a popular item's rows repeat the same title,
 * and one comparison is cheaper than a hash probe. */
static int batch_text_set(struct batch *b, uint32_t *slot, const char *s, size_t len)
{
    uint32_t tx;

    if (*slot && b->texts.len[*slot - 1] == len && memcmp(b->texts.str[*slot - 1], s, len) == 0)
        return 0;
    if (batch_intern(b, &b->texts, s, len, &tx) < 0)
        return -ENOMEM;
    *slot = tx + 1;
    return 0;
}

int batch_add(struct batch *b, const char *playlist, size_t playlist_len, const char *item,
              size_t item_len, const char *title, size_t title_len, const char *artist,
              size_t artist_len)
{
    struct batch__list *l;
    uint32_t p, it;

    /* Every upload format groups a playlist's rows together: compare with
     * the previous row's playlist before hashing. */
    if (b->last_playlist && b->playlists.len[b->last_playlist - 1] == playlist_len &&
        memcmp(b->playlists.str[b->last_playlist - 1], playlist, playlist_len) == 0) {
        p = b->last_playlist - 1;
    } else {
        if (batch_intern(b, &b->playlists, playlist, playlist_len, &p) < 0)
            return -ENOMEM;
        b->last_playlist = p + 1;
    }
    if (batch_intern(b, &b->items, item, item_len, &it) < 0)
        return -ENOMEM;
    /* Latest given wins; NULL leaves the batch's (and the store's) value. */
    if (title && batch_text_set(b, &b->title[it], title, title_len) < 0)
        return -ENOMEM;
    if (artist && batch_text_set(b, &b->artist[it], artist, artist_len) < 0)
        return -ENOMEM;
    l = &b->lists[p];
    if (l->n == l->cap) {
        /* Start small (most playlists are short), then grow by 1.5x. */
        uint32_t cap = l->cap ? l->cap + l->cap / 2 + 1 : 4;
        uint32_t *q;
        if (l->cap >= UINT32_MAX / 2)
            return -ENOMEM;
        q = batch_realloc(b, l->idx, l->cap * sizeof *q, (size_t)cap * sizeof *q);
        if (!q)
            return -ENOMEM;
        l->idx = q;
        l->cap = cap;
    }
    l->idx[l->n++] = it;
    b->rows++;
    return 0;
}

size_t batch_rows(const struct batch *b)
{
    return b->rows;
}

size_t batch_playlists(const struct batch *b)
{
    return b->playlists.n;
}

size_t batch_items(const struct batch *b)
{
    return b->items.n;
}

size_t batch_memory(const struct batch *b)
{
    return b->memory;
}
