/*
 * Fuzz target for the upload batch (storage/batch.c), differential: the
 * input is read as a sequence of operations on a batch and on a naive
 * model (plain arrays, no hashing, no look-ahead), and at the end the two
 * must agree on every playlist's member list (in row order), every item's
 * latest title and artist, and the counts. What it guards is the
 * look-ahead: rows staged and applied later, rows too long to stage
 * applied at once, batch_add_playlist and batch_flush in between, tables
 * growing while rows are staged.
 *
 * Input: each operation takes 3 bytes (op, a, b). Ids come from small
 * alphabets so that rows repeat items and playlists; a few of the texts
 * are longer than a staged row can hold.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/batch.h"
#include "storage/batch_internal.h"

#define FB_MAX_OPS 4096
#define FB_PLAYLISTS 64
#define FB_ITEMS 4096

struct fb_model {
    /* per playlist: member item numbers in row order */
    uint16_t members[FB_PLAYLISTS][FB_MAX_OPS];
    unsigned n_members[FB_PLAYLISTS];
    int declared[FB_PLAYLISTS];
    int title[FB_ITEMS], artist[FB_ITEMS]; /* text number + 1, 0 = none */
    int seen[FB_ITEMS];
};

static char fb_long[3][400];

/* Text number t (0..7): short ones, an empty one, and long ones. */
static const char *fb_text(int t, size_t *len)
{
    static const char *shorts[] = {"A", "Bee", "", "same text", "Queen"};
    if (t < 5) {
        *len = strlen(shorts[t]);
        return shorts[t];
    }
    *len = 150 + 100 * (size_t)(t - 5); /* 150, 250, 350 bytes */
    return fb_long[t - 5];
}

/* Playlist number p: short ids, and every 16th a 120-byte one. */
static size_t fb_playlist(int p, char *buf)
{
    if (p % 16 == 15) {
        memset(buf, 'p', 120);
        snprintf(buf, 16, "long%02d", p);
        buf[strlen(buf)] = 'p';
        return 120;
    }
    return (size_t)snprintf(buf, 16, "p%d", p);
}

static size_t fb_item(int i, char *buf)
{
    return (size_t)snprintf(buf, 16, "%d", i);
}

static void fb_check(struct batch *b, const struct fb_model *m)
{
    char id[128];
    size_t n_items = 0, n_pls = 0;

    if (batch_flush(b) != 0)
        abort();
    for (int i = 0; i < FB_ITEMS; i++) {
        size_t len;
        uint32_t k;
        if (!m->seen[i])
            continue;
        n_items++;
        k = batch__find(b, &b->items, id, fb_item(i, id));
        if (k == UINT32_MAX)
            abort();
        for (int f = 0; f < 2; f++) {
            int want = f ? m->artist[i] : m->title[i];
            uint32_t got = f ? b->item[k].artist : b->item[k].title;
            if (!want != !got)
                abort();
            if (want) {
                const char *t = fb_text(want - 1, &len);
                if (b->texts.len[got - 1] != len || memcmp(b->texts.str[got - 1], t, len) != 0)
                    abort();
            }
        }
    }
    for (int p = 0; p < FB_PLAYLISTS; p++) {
        uint32_t k;
        if (!m->n_members[p] && !m->declared[p])
            continue;
        n_pls++;
        k = batch__find(b, &b->playlists, id, fb_playlist(p, id));
        if (k == UINT32_MAX || b->lists[k].n != m->n_members[p])
            abort();
        for (unsigned r = 0; r < m->n_members[p]; r++) {
            size_t len = fb_item(m->members[p][r], id);
            uint32_t it = b->lists[k].idx[r];
            if (b->items.len[it] != len || memcmp(b->items.str[it], id, len) != 0)
                abort();
        }
    }
    if (batch_items(b) != n_items || batch_playlists(b) != n_pls)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fb_model m;
    struct batch *b = batch_create();
    char pl[128], it[16];
    size_t rows = 0;

    if (!b)
        abort();
    for (int t = 0; t < 3; t++)
        for (size_t k = 0; k < sizeof fb_long[t]; k++)
            fb_long[t][k] = (char)('a' + (k * 7 + (size_t)t) % 26);
    memset(&m, 0, sizeof m);
    for (size_t o = 0; o + 3 <= size && o / 3 < FB_MAX_OPS; o += 3) {
        int op = data[o], p = data[o + 1] % FB_PLAYLISTS;
        /* items 0..4095; popular ones more often */
        int item = (data[o + 2] | (op & 0x0f) << 8) % FB_ITEMS;
        if ((op & 0x30) == 0)
            item %= 8;
        if (op >= 0xf8) {
            if (batch_add_playlist(b, pl, fb_playlist(p, pl)) != 0)
                abort();
            m.declared[p] = 1;
            continue;
        }
        if (op >= 0xf0) {
            if (batch_flush(b) != 0)
                abort();
            continue;
        }
        int title = (op >> 4) % 9 - 1;        /* -1 = none, else 0..7 */
        int artist = (data[o + 1] >> 6) * 2 - 1; /* -1, 1, 3, 5 */
        size_t tl = 0, al = 0;
        const char *ts = title >= 0 ? fb_text(title, &tl) : NULL;
        const char *as = artist >= 0 ? fb_text(artist, &al) : NULL;
        size_t pn = fb_playlist(p, pl), in = fb_item(item, it);
        if (batch_add(b, pl, pn, it, in, ts, tl, as, al) != 0)
            abort();
        rows++;
        m.members[p][m.n_members[p]++] = (uint16_t)item;
        m.seen[item] = 1;
        if (ts)
            m.title[item] = title + 1;
        if (as)
            m.artist[item] = artist + 1;
    }
    if (batch_rows(b) != rows)
        abort();
    fb_check(b, &m);
    batch_destroy(b);
    return 0;
}
