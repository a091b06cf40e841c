/*
 * The in-memory write set of one upload (storage/batch.h). Built row by row
 * while the body streams through the parser, then applied by
 * store_batch_commit (commit.c) in one transaction.
 *
 * Memory: a row costs one uint32 (its item's batch index) in its playlist's
 * array; each distinct playlist id, item id, title and artist is stored
 * once (interned with open addressing, load factor <= 0.8). So a 3 M-row
 * upload with 300 k items needs ~60 MB rather than the ~125 MB of its
 * body. batch->memory counts every allocation, for batch_memory().
 *
 * Speed: batch_add runs on the loop thread for every row of an upload, so
 * it is the hot path of ingest (about half the parse time before this
 * layout). What it costs is cache misses, not instructions: per row one
 * probe of the item table (16-byte slots; ids of up to 8 bytes, such as
 * numeric ids, compare inside the slot without touching the string) and
 * one per-item record (struct batch__item). The title/artist of a row that
 * repeats its item's current one (the common case: a popular item's rows
 * all carry the same title) is recognised by its 64-bit hash alone, without
 * a lookup; see batch_text_set for what that implies.
 *
 * Hostile input: every string is hashed with SipHash-1-3 under a random
 * key of its own batch (batch_hash), so a client cannot know which of its
 * ids share a slot run, and a miss never walks more than BATCH_PROBE_MAX
 * slots (batch_intern). Hashing costs ~10-20 ns per string; measured in
 * docs/benchmarks.md ("Keyed hashing").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/siphash.h"
#include "storage/batch_internal.h"

#define BATCH_CHUNK_SIZE (256 * 1024)
#define BATCH_MAX_STRINGS (UINT32_MAX / 2)
#define BATCH_HUGE (2u << 20) /* transparent huge page size on x86-64 */
/* Longest run of occupied slots a miss may walk before the table grows
 * (batch_intern). Random keys at load 0.8 make runs of up to ~400 in the
 * largest tables (simulated: 12 M inserts); so honest data never reaches it
 * and crafted data costs at most this per row. */
#define BATCH_PROBE_MAX 512

static void *batch_realloc(struct batch *b, void *p, size_t old_bytes, size_t new_bytes)
{
    void *q = realloc(p, new_bytes);

    if (q)
        b->memory = b->memory - old_bytes + new_bytes;
    return q;
}

/* First min(len, 8) bytes of s, zero-padded, as one word. */
static inline uint64_t batch_word(const char *s, size_t len)
{
    uint64_t w = 0;

    memcpy(&w, s, len < 8 ? len : 8);
    return w;
}

/* The keyed 64-bit hash of s: SipHash-1-3 under the batch's own random
 * key (base/siphash.h). Every string a client sends goes through it before
 * it picks a slot, so which ids collide is unknowable without the key: a
 * crafted upload cannot turn the probes into a scan (issue 12, finding 2;
 * the fixed multiply-xorshift hash used before was invertible, and 60 k
 * ids built to collide took 6 s where random ones took 0.09 s). */
static inline uint64_t batch_hash(const struct batch *b, const char *s, size_t len)
{
    return siphash13(&b->key, s, len);
}

/* The slot tag of s: its bytes when they fit (exact), else its hash h. */
static inline uint64_t batch_tag(const char *s, size_t len, uint64_t h)
{
    return len <= 8 ? batch_word(s, len) : h;
}

static inline size_t batch_pos(uint64_t h, uint32_t mask)
{
    return (size_t)(h & mask);
}

/* The hash a slot was placed by: its tag for long strings; for short ones
 * (tag = the bytes, zero-padded) recomputed from the bytes, which only
 * growing the table needs. */
static inline uint64_t batch_slot_hash(const struct batch *b, const struct batch__slot *sl)
{
    return sl->len <= 8 ? batch_hash(b, (const char *)&sl->tag, sl->len) : sl->tag;
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

/* A zeroed table of bytes (slots, text hashes). Large ones are 2 MiB
 * aligned and advised to use transparent huge pages: the probes are
 * random, and with 4 KiB pages nearly every one would also miss the TLB. */
static void *batch_table_alloc(size_t bytes)
{
    void *p;

    if (bytes < BATCH_HUGE)
        return calloc(1, bytes);
    if (posix_memalign(&p, BATCH_HUGE, bytes) != 0)
        return NULL;
    (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice only: may be refused */
    memset(p, 0, bytes);
    return p;
}

static int batch_strtab_grow_slots(struct batch *b, struct batch__strtab *t)
{
    size_t n_slots = t->slots ? (size_t)t->mask + 1 : 0;
    size_t new_n = n_slots ? n_slots * 2 : 64;
    struct batch__slot *slots = batch_table_alloc(new_n * sizeof *slots);
    struct batch__texthash *aux = NULL;

    if (!slots)
        return -ENOMEM;
    if (t == &b->items) {
        aux = batch_table_alloc(new_n * sizeof *aux);
        if (!aux) {
            free(slots);
            return -ENOMEM;
        }
        b->memory += new_n * sizeof *aux;
    }
    b->memory += new_n * sizeof *slots;
    for (size_t i = 0; i < n_slots; i++) {
        size_t pos;
        if (!t->slots[i].idx1)
            continue;
        pos = batch_pos(batch_slot_hash(b, &t->slots[i]), (uint32_t)(new_n - 1));
        while (slots[pos].idx1)
            pos = (pos + 1) & (new_n - 1);
        slots[pos] = t->slots[i];
        if (aux)
            aux[pos] = t->aux[i];
    }
    free(t->slots);
    b->memory -= n_slots * sizeof *slots;
    if (aux) {
        free(t->aux);
        b->memory -= n_slots * sizeof *aux;
        t->aux = aux;
    }
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
        p = batch_realloc(b, b->item, t->cap * sizeof *b->item, cap * sizeof *b->item);
        if (!p)
            return -ENOMEM;
        b->item = p;
    }
    t->cap = cap;
    return 0;
}

/* Whether slot sl holds s (tag as batch_tag(s, len) computed). */
static inline int batch_slot_match(const struct batch__strtab *t, const struct batch__slot *sl,
                                   uint64_t tag, const char *s, size_t len)
{
    if (sl->tag != tag || sl->len != len)
        return 0;
    return len <= 8 || memcmp(t->str[sl->idx1 - 1], s, len) == 0;
}

uint32_t batch__find(const struct batch *b, const struct batch__strtab *t, const char *s,
                     size_t len)
{
    uint64_t h, tag;

    if (!t->slots || len > UINT32_MAX - 1)
        return UINT32_MAX;
    h = batch_hash(b, s, len);
    tag = batch_tag(s, len, h);
    for (size_t pos = batch_pos(h, t->mask); t->slots[pos].idx1; pos = (pos + 1) & t->mask)
        if (batch_slot_match(t, &t->slots[pos], tag, s, len))
            return t->slots[pos].idx1 - 1;
    return UINT32_MAX;
}

/* Whether t must grow before taking one more entry. The load factor stays
 * <= 0.8: with linear probing over four slots a cache line, a hit still
 * costs about one line, and the tables of a big upload stay within a few
 * MB. */
static inline int batch_full(const struct batch__strtab *t)
{
    return !t->slots || (size_t)(t->n + 1) * 5 > ((size_t)t->mask + 1) * 4;
}

/* Finds or adds s in t; h is batch_hash(s), tag batch_tag(s, len, h).
 * *out is its index and *at (when not NULL) its slot's position.
 *
 * Bounded probing: a miss whose run of occupied slots is longer than
 * BATCH_PROBE_MAX grows the table (which splits runs) instead of
 * extending the run; runs that long do not happen with a random key at
 * load <= 0.8 (the longest in 12 M random inserts was 385), so for honest
 * data this never fires. If the table is already sparse (load < 1/8,
 * i.e. two extra doublings) and the run is still that long, the hash is
 * not behaving as a random function (a leaked key): -EOVERFLOW rather
 * than quadratic time. */
static int batch_intern(struct batch *b, struct batch__strtab *t, const char *s, size_t len,
                        uint64_t tag, uint64_t h, uint32_t *out, size_t *at)
{
    uint32_t idx;
    size_t pos = 0, probes = 0;
    const char *copy;

    if (len > UINT32_MAX - 1)
        return -ENOMEM;
    if (t->slots) {
        for (pos = batch_pos(h, t->mask); t->slots[pos].idx1; pos = (pos + 1) & t->mask) {
            if (batch_slot_match(t, &t->slots[pos], tag, s, len)) {
                *out = t->slots[pos].idx1 - 1;
                if (at)
                    *at = pos;
                return 0;
            }
            probes++;
        }
    }
    while (batch_full(t) || probes > BATCH_PROBE_MAX) {
        if (!batch_full(t) && (size_t)t->n * 8 < (size_t)t->mask + 1)
            return -EOVERFLOW;
        if (batch_strtab_grow_slots(b, t) < 0)
            return -ENOMEM;
        probes = 0;
        for (pos = batch_pos(h, t->mask); t->slots[pos].idx1; pos = (pos + 1) & t->mask)
            probes++;
    }
    if (t->n == t->cap && batch_strtab_grow_entries(b, t) < 0)
        return -ENOMEM;
    copy = batch_arena_copy(b, s, len);
    if (!copy)
        return -ENOMEM;
    idx = t->n++;
    t->str[idx] = copy;
    t->len[idx] = (uint32_t)len;
    if (t == &b->items)
        memset(&b->item[idx], 0, sizeof b->item[idx]);
    t->slots[pos].tag = tag;
    t->slots[pos].len = (uint32_t)len;
    t->slots[pos].idx1 = idx + 1;
    if (t->aux)
        memset(&t->aux[pos], 0, sizeof t->aux[pos]);
    *out = idx;
    if (at)
        *at = pos;
    return 0;
}

struct batch *batch_create(void)
{
    struct batch *b = calloc(1, sizeof *b);

    if (!b)
        return NULL;
    b->memory = sizeof *b;
    (void)siphash_key_random(&b->key); /* a weak key on failure beats none */
    return b;
}

static void batch_strtab_deinit(struct batch__strtab *t)
{
    free(t->str);
    free(t->len);
    free(t->slots);
    free(t->aux);
}

void batch_destroy(struct batch *b)
{
    if (!b)
        return;
    for (uint32_t i = 0; i < b->playlists.n; i++)
        free(b->lists[i].idx);
    free(b->lists);
    free(b->item);
    batch_strtab_deinit(&b->playlists);
    batch_strtab_deinit(&b->items);
    batch_strtab_deinit(&b->texts);
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
    uint64_t h;
    int rc = batch_flush(b);

    if (rc < 0)
        return rc;
    if (playlist_len > UINT32_MAX - 1)
        return -ENOMEM;
    h = batch_hash(b, playlist, playlist_len);
    return batch_intern(b, &b->playlists, playlist, playlist_len,
                        batch_tag(playlist, playlist_len, h), h, &p, NULL);
}

/* A text's hash as kept in batch__texthash, where 0 means "none". */
static inline uint64_t batch_text_key(uint64_t h)
{
    return h | 1;
}

/* Sets an item's title or artist (*idx1, texts index + 1; *key, its
 * batch__texthash entry) to s unless it already is: "already is" means
 * equal 64-bit hashes (length mixed in), without comparing bytes, which
 * are a cache miss away. Two different texts given for the same item
 * whose hashes agree (in 63 bits) would keep the earlier one; for texts not
 * built to collide that happens with probability 2^-63 per pair. */
static int batch_text_set(struct batch *b, uint32_t item, int artist, uint64_t *key,
                          const char *s, size_t len, uint64_t h)
{
    uint32_t tx;

    if (*key == batch_text_key(h))
        return 0;
    int rc = batch_intern(b, &b->texts, s, len, batch_tag(s, len, h), h, &tx, NULL);

    if (rc < 0)
        return rc;
    if (artist)
        b->item[item].artist = tx + 1;
    else
        b->item[item].title = tx + 1;
    *key = batch_text_key(h);
    return 0;
}

/* Applies one row (staged or not): its playlist, its item, the item's
 * texts, the membership. The row's slots were prefetched when it was
 * staged, so the probes here mostly hit the cache. */
static int batch_apply(struct batch *b, const struct batch__pending *r, const char *pl,
                       const char *item, const char *title, const char *artist)
{
    struct batch__list *l;
    struct batch__texthash *th;
    uint32_t p, it;
    size_t pos;
    int rc;

    /* Every upload format groups a playlist's rows together: compare with
     * the previous row's playlist (hot in cache) before hashing. */
    if (r->same_playlist && b->last_playlist) {
        p = b->last_playlist - 1;
    } else if (b->last_playlist && b->playlists.len[b->last_playlist - 1] == r->pl_len &&
               memcmp(b->playlists.str[b->last_playlist - 1], pl, r->pl_len) == 0) {
        p = b->last_playlist - 1;
    } else {
        rc = batch_intern(b, &b->playlists, pl, r->pl_len, r->pl_tag, r->pl_hash, &p, NULL);
        if (rc < 0)
            return rc;
        b->last_playlist = p + 1;
    }
    rc = batch_intern(b, &b->items, item, r->item_len, r->item_tag, r->item_hash, &it, &pos);
    if (rc < 0)
        return rc;
    /* Latest given wins; absent leaves the batch's (and the store's) value. */
    th = &b->items.aux[pos];
    if (title &&
        (rc = batch_text_set(b, it, 0, &th->title, title, r->title_len, r->title_hash)) < 0)
        return rc;
    if (artist &&
        (rc = batch_text_set(b, it, 1, &th->artist, artist, r->artist_len, r->artist_hash)) < 0)
        return rc;
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
    return 0;
}

/* Applies the oldest staged row and drops it from the ring. */
static int batch_apply_oldest(struct batch *b)
{
    const struct batch__pending *r = &b->pending[b->pending_head];
    const char *pl = r->bytes, *item = pl + r->pl_len, *title = item + r->item_len;
    const char *artist = title + (r->title_len == UINT32_MAX ? 0 : r->title_len);
    int rc = batch_apply(b, r, pl, item, r->title_len == UINT32_MAX ? NULL : title,
                         r->artist_len == UINT32_MAX ? NULL : artist);

    b->pending_head = (b->pending_head + 1) % BATCH__LOOKAHEAD;
    b->pending_n--;
    if (rc < 0 && !b->error)
        b->error = rc;
    return rc;
}

int batch_flush(struct batch *b)
{
    while (b->pending_n > 0 && !b->error)
        batch_apply_oldest(b);
    return b->error;
}

/* Fills r's hashes and tags for the row, and starts fetching the slots
 * its application will probe. */
static void batch_stage(struct batch *b, struct batch__pending *r, const char *playlist,
                        const char *item, const char *title, const char *artist)
{
    r->item_hash = batch_hash(b, item, r->item_len);
    r->item_tag = batch_tag(item, r->item_len, r->item_hash);
    if (b->items.slots) {
        size_t pos = batch_pos(r->item_hash, b->items.mask);
        __builtin_prefetch(&b->items.slots[pos]);
        __builtin_prefetch(&b->items.aux[pos]);
    }
    if (!r->same_playlist) {
        r->pl_hash = batch_hash(b, playlist, r->pl_len);
        r->pl_tag = batch_tag(playlist, r->pl_len, r->pl_hash);
        if (b->playlists.slots)
            __builtin_prefetch(&b->playlists.slots[batch_pos(r->pl_hash, b->playlists.mask)]);
    }
    r->title_hash = title ? batch_hash(b, title, r->title_len) : 0;
    r->artist_hash = artist ? batch_hash(b, artist, r->artist_len) : 0;
}

/*
 * Rows are applied BATCH__LOOKAHEAD rows after they arrive. A row's cost
 * is the cache misses of its item's slot (the item table of a 3 M-row
 * upload is several MB, far beyond L2): applied at once, each row waits
 * for its own miss. Staged, its slot is prefetched on arrival and is in
 * cache when its turn comes, so the misses of 16 rows overlap; on the
 * 3 M-row benchmark this halved batch_add's time (docs/benchmarks.md).
 * Staging copies the row's strings (about 40 bytes) into the ring; a row
 * whose strings exceed BATCH__PENDING_BYTES is applied at once instead,
 * after the staged ones (order is kept: "latest title wins" holds).
 */
int batch_add(struct batch *b, const char *playlist, size_t playlist_len, const char *item,
              size_t item_len, const char *title, size_t title_len, const char *artist,
              size_t artist_len)
{
    struct batch__pending *r, direct;
    size_t need = playlist_len + item_len + (title ? title_len : 0) + (artist ? artist_len : 0);
    char *dst;

    if (b->error)
        return b->error;
    if (playlist_len > UINT32_MAX - 1 || item_len > UINT32_MAX - 1 ||
        (title && title_len > UINT32_MAX - 1) || (artist && artist_len > UINT32_MAX - 1))
        return -ENOMEM;
    if (need > BATCH__PENDING_BYTES) {
        int rc = batch_flush(b);
        if (rc < 0)
            return rc;
        memset(&direct, 0, sizeof direct);
        direct.pl_len = (uint32_t)playlist_len;
        direct.item_len = (uint32_t)item_len;
        direct.title_len = (uint32_t)title_len;
        direct.artist_len = (uint32_t)artist_len;
        batch_stage(b, &direct, playlist, item, title, artist);
        rc = batch_apply(b, &direct, playlist, item, title, artist);
        if (rc < 0)
            b->error = rc;
        else
            b->rows++;
        return rc;
    }
    if (b->pending_n == BATCH__LOOKAHEAD && batch_apply_oldest(b) < 0)
        return b->error;
    r = &b->pending[(b->pending_head + b->pending_n) % BATCH__LOOKAHEAD];
    r->same_playlist = 0;
    if (b->pending_n > 0) {
        const struct batch__pending *prev =
            &b->pending[(b->pending_head + b->pending_n - 1) % BATCH__LOOKAHEAD];
        r->same_playlist =
            prev->pl_len == playlist_len && memcmp(prev->bytes, playlist, playlist_len) == 0;
        if (r->same_playlist) {
            r->pl_tag = prev->pl_tag;
            r->pl_hash = prev->pl_hash;
        }
    }
    r->pl_len = (uint32_t)playlist_len;
    r->item_len = (uint32_t)item_len;
    r->title_len = title ? (uint32_t)title_len : UINT32_MAX;
    r->artist_len = artist ? (uint32_t)artist_len : UINT32_MAX;
    dst = r->bytes;
    memcpy(dst, playlist, playlist_len);
    dst += playlist_len;
    memcpy(dst, item, item_len);
    dst += item_len;
    if (title) {
        memcpy(dst, title, title_len);
        dst += title_len;
    }
    if (artist)
        memcpy(dst, artist, artist_len);
    batch_stage(b, r, playlist, item, title, artist);
    b->pending_n++;
    b->rows++;
    return 0;
}

size_t batch_rows(const struct batch *b)
{
    return b->rows;
}

size_t batch_playlists(struct batch *b)
{
    (void)batch_flush(b);
    return b->playlists.n;
}

size_t batch_items(struct batch *b)
{
    (void)batch_flush(b);
    return b->items.n;
}

size_t batch_memory(const struct batch *b)
{
    return b->memory;
}

void batch__set_key(struct batch *b, uint64_t k0, uint64_t k1)
{
    b->key.k0 = k0;
    b->key.k1 = k1;
}
