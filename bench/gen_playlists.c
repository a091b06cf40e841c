/*
 * gen_playlists: seeded, deterministic synthetic playlists shaped like the
 * seed's table (bigquery-samples.playlists after its cleaning SELECT), for
 * benchmarks and for hold-out evaluation with a known planted structure.
 *
 *   gen_playlists --rows N [--seed S] [--format tsv|csv|ndjson] [--gzip]
 *                 [--out FILE|-] [--items M] [--playlists P] [--stats]
 *
 * What --rows counts: N is the number of distinct, valid (playlist, item)
 * rows, i.e. the size of the seed's cleaned `playlist` table (its SELECT
 * DISTINCT ... WHERE title IS NOT NULL AND id > 0 LIMIT N). So --rows 3000000
 * is the seed's 3 M-row sample and --rows 12304975 its whole-table preset. On
 * top of those N rows the output carries, per valid row, an exact duplicate
 * with probability 2 % and a row the seed's cleaning skips with probability
 * 1 % (half item_id <= 0, half an empty title on an item that is not in that
 * playlist), so an ingest reports rows_received ~ 1.03 N, rows_stored = N,
 * rows_duplicate ~ 0.02 N, rows_skipped ~ 0.01 N.
 *
 * Model (the defaults were calibrated with --stats so that the 3 M preset
 * lands near the targets; table in docs/benchmarks.md):
 * - a catalogue of M items ranked by popularity, weight (rank + q)^-s
 *   (Zipf-Mandelbrot, s = 1.25, q = 100 at 3 M). Each item is in a playlist
 *   at most once, so the most popular items saturate: the realised
 *   rank-frequency curve is flat in the head (top item in ~2 % of the
 *   playlists, as in the seed's exploration query where top items have
 *   freq 1000-1700) and falls with slope ~1.1 over ranks 1e3..2e4, the
 *   issue's "Zipf exponent ~1.05". Item ids are a scattered bijection of
 *   the rank into 1..P (P prime), as the seed's track ids are not dense;
 * - items are split at random into clusters ("genres", 150 at 3 M); each
 *   has 3..8 artists, an item's artist is one of its cluster's;
 * - playlist sizes are lognormal (median 13, sigma 0.87, so the mean is
 *   N / playlists ~ 19);
 * - a playlist picks a cluster, and with probability 0.3 a second one, by
 *   drawing an item from the global popularity and taking its cluster; it
 *   then draws 87.5 % of its items popularity-weighted inside its
 *   cluster(s), the rest from the global popularity. Choosing the cluster
 *   that way keeps each item's marginal popularity equal to its global
 *   weight, while co-occurrence concentrates inside clusters: the signal
 *   that PMI and WALS should find and a hold-out evaluation can score.
 * Scaling from N unless given: playlists = N * 158000 / 3e6; the catalogue
 * grows sub-linearly (Heaps' law, 500000 * (N / 3e6)^0.75); the cluster
 * count and the offset q grow with the catalogue, so clusters keep their
 * size and the head's flattening spans the same share of the catalogue.
 *
 * Generation streams playlist by playlist (memory O(M)). --stats keeps the
 * N distinct rows (8 bytes each) and computes, exactly, what the seed's
 * sp_ComputePMI(15, 100) would keep: valid items, valid groups, valid rows
 * and the item_cooc row count (2 x distinct unordered pairs + diagonal).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/clock.h"

/* The seed's 3 M-row preset and the shape targets at that size. */
#define BASE_ROWS 3000000.0
#define BASE_PLAYLISTS 158000.0
#define BASE_ITEMS 500000.0
#define BASE_CLUSTERS 150.0
#define BASE_ZIPF_OFFSET 100.0
#define HEAPS_EXPONENT 0.75

#define MAX_PLAYLIST_SIZE 5000u
#define GLOBAL_HEAD 8192u
#define OUT_BUF_SIZE (1u << 20)

enum out_format {
    FMT_TSV,
    FMT_CSV,
    FMT_NDJSON,
};

struct params {
    uint64_t rows;
    uint64_t seed;
    enum out_format format;
    int gzip;
    int gzip_level;
    const char *out;
    uint64_t items;
    uint64_t playlists;
    int stats;
    double zipf_s;
    double zipf_q;
    uint64_t clusters;
    double cluster_share;
    double second_cluster;
    double size_sigma;
    double dup_share;
    double skip_share;
    uint32_t min_freq;
    uint32_t max_group;
};

/* xoshiro256** (Blackman & Vigna): fast, and its output is fixed for a
 * seed on every platform, which is what makes the output reproducible. */
struct rng {
    uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_init(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static inline double rng_unif(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Lemire's multiply-shift: unbiased enough for n << 2^32 and branch-free. */
static inline uint32_t rng_below(struct rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static double rng_normal(struct rng *r)
{
    double u1 = rng_unif(r), u2 = rng_unif(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* A stateless hash of an index, for per-item attributes (cluster, title
 * variant) that must not depend on the order in which items are drawn. */
static inline uint64_t hash64(uint64_t x, uint64_t seed)
{
    uint64_t s = x * 0x9e3779b97f4a7c15ull ^ seed;
    return splitmix64(&s);
}

/* One slot of a Walker/Vose alias table. prob, the item and its alias sit
 * in one 12-byte entry: a draw is a random slot, i.e. a cache miss, and the
 * generator makes ~3.7 draws per row (distinctness rejections), so one miss
 * per draw instead of three is what keeps a 12 M-row run in seconds. */
struct alias_entry {
    float prob;
    uint32_t self;  /* catalogue rank of this slot */
    uint32_t alias; /* catalogue rank drawn when u >= prob */
};

/* Builds the alias table of weights w[0..n) into t[0..n) (caller-owned);
 * slot i stands for rank[i] (or i when rank is NULL). work is scratch of n. */
static void alias_build(const double *w, const uint32_t *rank, uint32_t n, struct alias_entry *t,
                        uint32_t *work, double *p)
{
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++)
        sum += w[i];
    /* small slots are pushed at the front of work, large ones at the back */
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        t[i].self = rank ? rank[i] : i;
        p[i] = w[i] * n / sum;
        if (p[i] < 1.0)
            work[ns++] = i;
        else
            work[n - 1 - nl++] = i;
    }
    while (ns > 0 && nl > 0) {
        uint32_t s = work[--ns];
        uint32_t l = work[n - nl];
        t[s].prob = (float)p[s];
        t[s].alias = rank ? rank[l] : l;
        p[l] = (p[l] + p[s]) - 1.0;
        if (p[l] < 1.0) {
            nl--;
            work[ns++] = l;
        }
    }
    /* leftovers are 1 up to rounding */
    while (nl > 0) {
        uint32_t l = work[n - nl--];
        t[l].prob = 1.0f;
        t[l].alias = t[l].self;
    }
    while (ns > 0) {
        uint32_t s = work[--ns];
        t[s].prob = 1.0f;
        t[s].alias = t[s].self;
    }
}

/* One draw: the high 32 bits pick the slot, the low 32 bits are the coin. */
static inline uint32_t alias_draw(struct rng *r, const struct alias_entry *t, uint32_t n)
{
    uint64_t x = rng_next(r);
    const struct alias_entry *e = &t[((x >> 32) * (uint64_t)n) >> 32];
    return (float)(uint32_t)x * 0x1.0p-32f < e->prob ? e->self : e->alias;
}

static int is_prime(uint64_t n)
{
    if (n < 2)
        return 0;
    for (uint64_t d = 2; d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return 1;
}

static uint64_t next_prime(uint64_t n)
{
    while (!is_prime(n))
        n++;
    return n;
}

/* ---- output ---------------------------------------------------------- */

struct out {
    FILE *f;
    gzFile gz;
    char *buf;
    size_t len;
    int failed;
};

static void out_flush(struct out *o)
{
    if (o->len == 0 || o->failed)
        goto done;
    if (o->gz) {
        if (gzwrite(o->gz, o->buf, (unsigned)o->len) != (int)o->len)
            o->failed = 1;
    } else if (fwrite(o->buf, 1, o->len, o->f) != o->len) {
        o->failed = 1;
    }
done:
    o->len = 0;
}

static inline void out_put(struct out *o, const char *s, size_t n)
{
    if (o->len + n > OUT_BUF_SIZE)
        out_flush(o);
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static inline void out_ch(struct out *o, char c)
{
    if (o->len + 1 > OUT_BUF_SIZE)
        out_flush(o);
    o->buf[o->len++] = c;
}

static inline void out_i64(struct out *o, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)(-v) : (uint64_t)v;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[sizeof(tmp) - 1 - n++] = '-';
    out_put(o, tmp + sizeof(tmp) - n, (size_t)n);
}

/* Writes one text field with the quoting its format needs: RFC 4180 for CSV
 * (and for TSV, whose parser accepts the same quoting: a field containing a
 * quote must be quoted or it would be misread), JSON string escapes for
 * NDJSON. Titles here never hold control characters. */
static void out_field(struct out *o, enum out_format fmt, const char *s, size_t n)
{
    if (fmt == FMT_NDJSON) {
        out_ch(o, '"');
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '"' || s[i] == '\\')
                out_ch(o, '\\');
            out_ch(o, s[i]);
        }
        out_ch(o, '"');
        return;
    }
    char sep = fmt == FMT_CSV ? ',' : '\t';
    int quote = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == sep || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
            quote = 1;
    if (!quote) {
        out_put(o, s, n);
        return;
    }
    out_ch(o, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            out_ch(o, '"');
        out_ch(o, s[i]);
    }
    out_ch(o, '"');
}

/* ---- the catalogue --------------------------------------------------- */

struct catalog {
    uint32_t n; /* items, by popularity rank */
    uint32_t nclusters;
    uint64_t id_prime, id_mul, id_add;
    uint64_t seed;
    /* global popularity, split into the head (top GLOBAL_HEAD ranks, ~3/4
     * of the draws, a table small enough to stay in L2) and the tail */
    struct alias_entry *ghead;
    struct alias_entry *gtail;
    uint32_t nhead;
    double head_mass;
    uint32_t *cluster_of; /* rank -> cluster */
    uint32_t *cstart;     /* cluster c's members: members[cstart[c]..cstart[c+1]) */
    uint32_t *members;
    struct alias_entry *calias; /* per-cluster popularity, aligned with members */
    uint32_t *ids;              /* rank -> item id */
    uint32_t *attr;             /* rank -> artist number << 3 | ATTR_* bits */
};

/* Per-item name variants, precomputed so the hot loop does no division. */
#define ATTR_TITLE_COMMA 1u
#define ATTR_TITLE_QUOTE 2u
#define ATTR_ARTIST_COMMA 4u

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "gen_playlists: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "gen_playlists: out of memory\n");
        exit(1);
    }
    return p;
}

static void catalog_init(struct catalog *c, const struct params *prm)
{
    uint32_t n = (uint32_t)prm->items;
    uint32_t nc = (uint32_t)prm->clusters;
    struct rng r;
    rng_init(&r, prm->seed ^ 0x6361746c6f67ull);

    c->n = n;
    c->nclusters = nc;
    c->seed = prm->seed;
    c->id_prime = next_prime(n * 8ull > 9000000ull ? n * 8ull : 9000000ull);
    c->id_mul = 1 + rng_next(&r) % (c->id_prime - 1);
    c->id_add = rng_next(&r) % c->id_prime;

    double *w = xmalloc(sizeof(*w) * n);
    for (uint32_t i = 0; i < n; i++)
        w[i] = pow((double)i + 1.0 + prm->zipf_q, -prm->zipf_s);
    uint32_t *work = xmalloc(sizeof(*work) * n);
    double *scratch = xmalloc(sizeof(*scratch) * n);
    c->nhead = n < GLOBAL_HEAD ? n : GLOBAL_HEAD;
    double head = 0, all = 0;
    for (uint32_t i = 0; i < n; i++) {
        all += w[i];
        if (i < c->nhead)
            head += w[i];
    }
    c->head_mass = head / all;
    uint32_t *tail_rank = xmalloc(sizeof(*tail_rank) * (n - c->nhead + 1));
    for (uint32_t i = c->nhead; i < n; i++)
        tail_rank[i - c->nhead] = i;
    c->ghead = xmalloc(sizeof(*c->ghead) * c->nhead);
    c->gtail = xmalloc(sizeof(*c->gtail) * (n - c->nhead + 1));
    alias_build(w, NULL, c->nhead, c->ghead, work, scratch);
    if (n > c->nhead)
        alias_build(w + c->nhead, tail_rank, n - c->nhead, c->gtail, work, scratch);
    free(tail_rank);

    /* random genre per item, independent of rank: each genre gets its own
     * head and tail */
    c->cluster_of = xmalloc(sizeof(*c->cluster_of) * n);
    c->cstart = xcalloc(nc + 1, sizeof(*c->cstart));
    for (uint32_t i = 0; i < n; i++) {
        c->cluster_of[i] = (uint32_t)(hash64(i, c->seed ^ 0x67656e7265ull) % nc);
        c->cstart[c->cluster_of[i] + 1]++;
    }
    for (uint32_t k = 0; k < nc; k++)
        c->cstart[k + 1] += c->cstart[k];
    c->members = xmalloc(sizeof(*c->members) * n);
    uint32_t *fill = xmalloc(sizeof(*fill) * nc);
    memcpy(fill, c->cstart, sizeof(*fill) * nc);
    for (uint32_t i = 0; i < n; i++)
        c->members[fill[c->cluster_of[i]]++] = i;
    free(fill);

    double *cw = xmalloc(sizeof(*cw) * n);
    for (uint32_t i = 0; i < n; i++)
        cw[i] = w[c->members[i]];
    c->calias = xmalloc(sizeof(*c->calias) * n);
    for (uint32_t k = 0; k < nc; k++) {
        uint32_t b = c->cstart[k], e = c->cstart[k + 1];
        if (e > b)
            alias_build(cw + b, c->members + b, e - b, c->calias + b, work, scratch);
    }
    /* ids scattered over 1..P: the seed's track ids are 7-digit and sparse;
     * rank -> (rank * mul + add) mod P is a bijection since P is prime */
    c->ids = xmalloc(sizeof(*c->ids) * n);
    c->attr = xmalloc(sizeof(*c->attr) * n);
    for (uint32_t i = 0; i < n; i++) {
        c->ids[i] = (uint32_t)(1 + ((uint64_t)i * c->id_mul + c->id_add) % c->id_prime);
        /* titles: ~2 % "Song <id>, Pt. 2", ~1 % `Song <id> "Live"`; artists:
         * one of the genre's 3..8, ~3 % "Artist <n>, Jr.": enough commas and
         * quotes to exercise CSV quoting */
        uint32_t k = c->cluster_of[i];
        uint32_t nart = (uint32_t)(3 + hash64(k, c->seed ^ 0x617274ull) % 6);
        uint32_t a = (uint32_t)(hash64(i, c->seed ^ 0x617274697374ull) % nart);
        uint32_t num = k * 8 + a + 1;
        uint64_t h = hash64(i, c->seed ^ 0x7469746c65ull) % 100;
        uint32_t bits = h < 2 ? ATTR_TITLE_COMMA : h < 3 ? ATTR_TITLE_QUOTE : 0;
        if (hash64(num, c->seed) % 100 < 3)
            bits |= ATTR_ARTIST_COMMA;
        c->attr[i] = num << 3 | bits;
    }
    free(cw);
    free(scratch);
    free(work);
    free(w);
}

static void catalog_deinit(struct catalog *c)
{
    free(c->ghead);
    free(c->gtail);
    free(c->cluster_of);
    free(c->cstart);
    free(c->members);
    free(c->calias);
    free(c->ids);
    free(c->attr);
}

static inline uint64_t catalog_id(const struct catalog *c, uint32_t rank)
{
    return c->ids[rank];
}

static inline uint32_t catalog_draw_global(const struct catalog *c, struct rng *r)
{
    if (rng_unif(r) < c->head_mass)
        return alias_draw(r, c->ghead, c->nhead);
    return alias_draw(r, c->gtail, c->n - c->nhead);
}

static inline uint32_t catalog_draw_cluster(const struct catalog *c, struct rng *r, uint32_t k)
{
    uint32_t b = c->cstart[k], n = c->cstart[k + 1] - b;
    return alias_draw(r, c->calias + b, n);
}

/* Appends the decimal form of v at buf; returns the length. snprintf was
 * a third of the run time at 3 M rows. */
static size_t fmt_u64(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/* Copies a literal and a number and a suffix into buf (cap >= 64). */
static size_t fmt_name(char *buf, const char *prefix, size_t plen, uint64_t num, const char *suffix)
{
    memcpy(buf, prefix, plen);
    size_t n = plen + fmt_u64(buf + plen, num);
    size_t sl = strlen(suffix);
    memcpy(buf + n, suffix, sl);
    return n + sl;
}

/* Title of an item into buf (>= 64 bytes); returns its length. */
static size_t item_title(const struct catalog *c, uint32_t rank, char *buf)
{
    uint32_t a = c->attr[rank];
    const char *suffix = a & ATTR_TITLE_COMMA ? ", Pt. 2" : a & ATTR_TITLE_QUOTE ? " \"Live\"" : "";
    return fmt_name(buf, "Song ", 5, c->ids[rank], suffix);
}

/* Artist of an item into buf (>= 64 bytes); returns its length. */
static size_t item_artist(const struct catalog *c, uint32_t rank, char *buf)
{
    uint32_t a = c->attr[rank];
    return fmt_name(buf, "Artist ", 7, a >> 3, a & ATTR_ARTIST_COMMA ? ", Jr." : "");
}

/* ---- generation ------------------------------------------------------ */

enum row_kind {
    ROW_VALID,
    ROW_DUP,
    ROW_SKIP_ID,
    ROW_SKIP_TITLE,
};

struct row {
    uint32_t kind;
    uint32_t rank; /* catalogue rank; for ROW_SKIP_ID the negated id */
};

struct gen_counts {
    uint64_t lines;
    uint64_t valid;
    uint64_t dup;
    uint64_t skip_id;
    uint64_t skip_title;
    uint64_t playlists;
    uint64_t distinct_items;
    uint64_t size_hist[MAX_PLAYLIST_SIZE + 1]; /* distinct rows per playlist */
};

/* What --stats keeps: the distinct valid rows in generation order (rows of
 * one playlist are contiguous). */
struct stats_rows {
    uint32_t *pl;
    uint32_t *item;
    uint64_t n;
};

static void emit_row(struct out *o, const struct params *prm, const struct catalog *c, uint64_t pid,
                     const struct row *rw, int first)
{
    char title[64], artist[64];
    size_t tn, an;
    int64_t id;
    if (rw->kind == ROW_SKIP_ID) {
        id = -(int64_t)rw->rank;
        tn = (size_t)snprintf(title, sizeof(title), "Song %" PRId64, id);
        an = fmt_name(artist, "Artist ", 7, 0, "");
    } else {
        id = (int64_t)catalog_id(c, rw->rank);
        tn = rw->kind == ROW_SKIP_TITLE ? 0 : item_title(c, rw->rank, title);
        an = item_artist(c, rw->rank, artist);
    }
    if (prm->format == FMT_NDJSON) {
        if (!first)
            out_ch(o, ',');
        out_put(o, "{\"id\":\"", 7);
        out_i64(o, id);
        out_put(o, "\",\"title\":", 10);
        out_field(o, prm->format, title, tn);
        out_put(o, ",\"artist\":", 10);
        out_field(o, prm->format, artist, an);
        out_ch(o, '}');
        return;
    }
    char sep = prm->format == FMT_CSV ? ',' : '\t';
    out_i64(o, (int64_t)pid);
    out_ch(o, sep);
    out_i64(o, id);
    out_ch(o, sep);
    out_field(o, prm->format, title, tn);
    out_ch(o, sep);
    out_field(o, prm->format, artist, an);
    out_ch(o, '\n');
}

/* Generates and writes the whole data set. Streams: memory is O(catalogue)
 * plus, with st != NULL, 8 bytes per distinct valid row. */
static void generate(const struct params *prm, const struct catalog *c, struct out *o,
                     struct gen_counts *gc, struct stats_rows *st)
{
    struct rng r;
    rng_init(&r, prm->seed);
    uint32_t *stamp = xcalloc(c->n, sizeof(*stamp));
    uint32_t *pitems = xmalloc(sizeof(*pitems) * MAX_PLAYLIST_SIZE);
    struct row *rows = xmalloc(sizeof(*rows) * MAX_PLAYLIST_SIZE * 3);
    uint32_t *seen = xcalloc(c->n, sizeof(*seen));

    /* playlist ids scattered over 1..P2 like the seed's list ids */
    uint64_t pprime = next_prime(prm->playlists * 8 > 10000000 ? prm->playlists * 8 : 10000000);
    uint64_t pmul = 1 + rng_next(&r) % (pprime - 1), padd = rng_next(&r) % pprime;

    double mean = (double)prm->rows / (double)prm->playlists;
    double mu = log(mean) - prm->size_sigma * prm->size_sigma / 2.0;
    uint32_t cap = MAX_PLAYLIST_SIZE;
    if (cap > c->n / 4)
        cap = c->n / 4 > 1 ? c->n / 4 : 1;

    if (prm->format == FMT_CSV)
        out_put(o, "playlist_id,item_id,title,artist\n", 33);
    else if (prm->format == FMT_TSV)
        out_put(o, "playlist_id\titem_id\ttitle\tartist\n", 33);

    uint64_t done = 0, seq = 0;
    while (done < prm->rows) {
        seq++;
        uint32_t mark = (uint32_t)seq;
        double z = rng_normal(&r);
        double sz = floor(exp(mu + prm->size_sigma * z) + 0.5);
        uint32_t size = sz < 1 ? 1 : sz > cap ? cap : (uint32_t)sz;
        if (size > prm->rows - done)
            size = (uint32_t)(prm->rows - done);

        uint32_t c1 = c->cluster_of[catalog_draw_global(c, &r)];
        uint32_t c2 = c1;
        if (rng_unif(&r) < prm->second_cluster)
            c2 = c->cluster_of[catalog_draw_global(c, &r)];

        uint32_t k = 0;
        for (uint32_t slot = 0; slot < size; slot++) {
            int from_cluster = rng_unif(&r) < prm->cluster_share;
            uint32_t cl = (c2 != c1 && rng_unif(&r) < 0.35) ? c2 : c1;
            uint32_t it = 0;
            int found = 0;
            /* distinct items: redraw on repeats; a small genre exhausted by
             * a long playlist falls back to the global popularity */
            for (int tries = 0; tries < 64 && !found; tries++) {
                if (from_cluster && tries < 16)
                    it = catalog_draw_cluster(c, &r, cl);
                else
                    it = catalog_draw_global(c, &r);
                found = stamp[it] != mark;
            }
            if (!found)
                continue;
            stamp[it] = mark;
            pitems[k++] = it;
        }
        if (k == 0) {
            seq--;
            continue;
        }

        uint32_t nr = 0;
        for (uint32_t i = 0; i < k; i++) {
            rows[nr++] = (struct row){ROW_VALID, pitems[i]};
            if (rng_unif(&r) < prm->dup_share)
                rows[nr++] = (struct row){ROW_DUP, pitems[i]};
            if (rng_unif(&r) < prm->skip_share) {
                if (rng_unif(&r) < 0.5) {
                    /* item_id <= 0: 0 or a negative number */
                    uint32_t neg = rng_unif(&r) < 0.5 ? 0 : 1 + rng_below(&r, 999999);
                    rows[nr++] = (struct row){ROW_SKIP_ID, neg};
                } else {
                    /* empty title on an item not in this playlist, so that
                     * skipping it leaves the stored set unchanged */
                    uint32_t it = catalog_draw_global(c, &r);
                    for (int tries = 0; tries < 16 && stamp[it] == mark; tries++)
                        it = catalog_draw_global(c, &r);
                    if (stamp[it] == mark) {
                        rows[nr++] = (struct row){ROW_SKIP_ID, 0};
                    } else {
                        stamp[it] = mark;
                        rows[nr++] = (struct row){ROW_SKIP_TITLE, it};
                    }
                }
            }
        }
        /* interleave: duplicates and skipped rows anywhere in the playlist */
        for (uint32_t i = nr - 1; i > 0; i--) {
            uint32_t j = rng_below(&r, i + 1);
            struct row t = rows[i];
            rows[i] = rows[j];
            rows[j] = t;
        }

        uint64_t pid = 1 + (seq * pmul + padd) % pprime;
        if (prm->format == FMT_NDJSON) {
            out_put(o, "{\"id\":\"", 7);
            out_i64(o, (int64_t)pid);
            out_put(o, "\",\"items\":[", 11);
        }
        for (uint32_t i = 0; i < nr; i++) {
            emit_row(o, prm, c, pid, &rows[i], i == 0);
            switch (rows[i].kind) {
            case ROW_VALID:
                gc->valid++;
                if (seen[rows[i].rank]++ == 0)
                    gc->distinct_items++;
                if (st) {
                    st->pl[st->n] = (uint32_t)seq;
                    st->item[st->n] = rows[i].rank;
                    st->n++;
                }
                break;
            case ROW_DUP:
                gc->dup++;
                break;
            case ROW_SKIP_ID:
                gc->skip_id++;
                break;
            default:
                gc->skip_title++;
                break;
            }
        }
        if (prm->format == FMT_NDJSON)
            out_put(o, "]}\n", 3);
        gc->lines += nr;
        gc->playlists++;
        gc->size_hist[k]++;
        done += k;
    }
    free(seen);
    free(rows);
    free(pitems);
    free(stamp);
}

/* ---- post-filter statistics ------------------------------------------ */

struct filter_stats {
    uint64_t valid_rows;
    uint64_t valid_items;
    uint64_t freq_items; /* items with frequency >= min_freq, before the group filter */
    uint64_t valid_groups;
    uint64_t pair_occurrences;
    uint64_t distinct_pairs;
    uint64_t cooc_rows;
    double slope_head;   /* -slope of log freq vs log rank, ranks 10..1000 */
    double slope_mid;    /* the same over ranks 1000..20000 */
    double top1_share;   /* share of rows held by the top 1 % of distinct items */
    uint32_t freq_at[5]; /* frequency at ranks 1, 10, 100, 1000, 10000 */
};

static int cmp_u32_desc(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Least-squares slope (negated) of log f[r-1] on log r for r in lo..hi. */
static double rank_slope(const uint32_t *f, uint32_t nz, uint32_t lo, uint32_t hi)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0, m = 0;
    for (uint32_t r = lo; r <= hi && r <= nz; r++) {
        double x = log((double)r), y = log((double)f[r - 1]);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
        m++;
    }
    return m > 1 ? -(m * sxy - sx * sy) / (m * sxx - sx * sx) : 0;
}

/* The realised popularity curve, which the per-playlist distinctness
 * flattens relative to the catalogue's nominal exponent: least-squares
 * slope of log frequency on log rank, and the top-1 % share. */
static void popularity_shape(const uint32_t *freq, uint32_t n, uint64_t rows,
                             struct filter_stats *fs)
{
    uint32_t *f = xmalloc(sizeof(*f) * n);
    memcpy(f, freq, sizeof(*f) * n);
    qsort(f, n, sizeof(*f), cmp_u32_desc);
    uint32_t nz = 0;
    while (nz < n && f[nz] > 0)
        nz++;
    fs->slope_head = rank_slope(f, nz, 10, 1000);
    fs->slope_mid = rank_slope(f, nz, 1000, 20000);
    uint64_t top = 0;
    for (uint32_t r = 0; r < (nz + 99) / 100; r++)
        top += f[r];
    fs->top1_share = rows ? (double)top / (double)rows : 0;
    for (uint32_t i = 0, r = 1; i < 5; i++, r *= 10)
        fs->freq_at[i] = r <= nz ? f[r - 1] : 0;
    free(f);
}

/* Exact replay of sp_ComputePMI's filters and of its item_cooc size on the
 * distinct rows: items with >= min_freq rows over all playlists; groups
 * keeping 2..max_group such items; distinct pairs counted item by item
 * with a stamp array over the item's neighbours (time = sum of squared
 * group sizes, memory = a few words per valid row, no hash table). */
static void filter_compute(const struct params *prm, const struct catalog *c,
                           const struct stats_rows *st, struct filter_stats *fs)
{
    memset(fs, 0, sizeof(*fs));
    uint32_t *freq = xcalloc(c->n, sizeof(*freq));
    for (uint64_t i = 0; i < st->n; i++)
        freq[st->item[i]]++;
    for (uint32_t i = 0; i < c->n; i++)
        fs->freq_items += freq[i] >= prm->min_freq;
    popularity_shape(freq, c->n, st->n, fs);

    /* groups: dense item ids for items in valid groups; group CSR */
    uint32_t *dense = xmalloc(sizeof(*dense) * c->n);
    memset(dense, 0xff, sizeof(*dense) * c->n);
    uint32_t *gitems = xmalloc(sizeof(*gitems) * (st->n ? st->n : 1));
    uint64_t gi_n = 0;
    uint64_t ngroups_cap = 1024, ngroups = 0;
    uint64_t *goff = xmalloc(sizeof(*goff) * (ngroups_cap + 1));
    goff[0] = 0;
    uint32_t nvalid_items = 0;
    for (uint64_t b = 0; b < st->n;) {
        uint64_t e = b;
        uint32_t k = 0;
        while (e < st->n && st->pl[e] == st->pl[b]) {
            k += freq[st->item[e]] >= prm->min_freq;
            e++;
        }
        if (k >= 2 && k <= prm->max_group) {
            for (uint64_t i = b; i < e; i++) {
                uint32_t it = st->item[i];
                if (freq[it] < prm->min_freq)
                    continue;
                if (dense[it] == UINT32_MAX)
                    dense[it] = nvalid_items++;
                gitems[gi_n++] = dense[it];
            }
            if (ngroups + 1 >= ngroups_cap) {
                ngroups_cap *= 2;
                goff = realloc(goff, sizeof(*goff) * (ngroups_cap + 1));
                if (!goff) {
                    fprintf(stderr, "gen_playlists: out of memory\n");
                    exit(1);
                }
            }
            goff[++ngroups] = gi_n;
            fs->pair_occurrences += (uint64_t)k * (k - 1) / 2;
        }
        b = e;
    }
    fs->valid_rows = gi_n;
    fs->valid_items = nvalid_items;
    fs->valid_groups = ngroups;

    /* item -> groups CSR */
    uint64_t *ioff = xcalloc(nvalid_items + 1, sizeof(*ioff));
    for (uint64_t i = 0; i < gi_n; i++)
        ioff[gitems[i] + 1]++;
    for (uint32_t i = 0; i < nvalid_items; i++)
        ioff[i + 1] += ioff[i];
    uint32_t *igroups = xmalloc(sizeof(*igroups) * (gi_n ? gi_n : 1));
    uint64_t *ifill = xmalloc(sizeof(*ifill) * (nvalid_items + 1));
    memcpy(ifill, ioff, sizeof(*ifill) * (nvalid_items + 1));
    for (uint64_t g = 0; g < ngroups; g++)
        for (uint64_t i = goff[g]; i < goff[g + 1]; i++)
            igroups[ifill[gitems[i]]++] = (uint32_t)g;
    free(ifill);

    uint32_t *mark = xmalloc(sizeof(*mark) * (nvalid_items + 1));
    memset(mark, 0xff, sizeof(*mark) * (nvalid_items + 1));
    uint64_t pairs = 0;
    for (uint32_t a = 0; a < nvalid_items; a++) {
        for (uint64_t j = ioff[a]; j < ioff[a + 1]; j++) {
            uint32_t g = igroups[j];
            for (uint64_t i = goff[g]; i < goff[g + 1]; i++) {
                uint32_t b = gitems[i];
                if (b > a && mark[b] != a) {
                    mark[b] = a;
                    pairs++;
                }
            }
        }
    }
    fs->distinct_pairs = pairs;
    fs->cooc_rows = 2 * pairs + nvalid_items;

    free(mark);
    free(igroups);
    free(ioff);
    free(goff);
    free(gitems);
    free(dense);
    free(freq);
}

/* ---- command line ---------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: gen_playlists --rows N [--seed S] [--format tsv|csv|ndjson] [--gzip]\n"
               "                     [--out FILE|-] [--items M] [--playlists P] [--stats]\n"
               "  --rows N        distinct valid (playlist,item) rows, the seed's table size\n"
               "                  (3000000 = its sample, 12304975 = its whole table)\n"
               "  --seed S        random seed (default 1); same seed, same bytes\n"
               "  --format F      tsv (default), csv or ndjson (one playlist per line)\n"
               "  --gzip          gzip the output (level 1, see --gzip-level)\n"
               "  --out FILE      output file, '-' for stdout (default)\n"
               "  --items M       catalogue size (default 500000 * (N/3e6)^0.75)\n"
               "  --playlists P   target playlist count (default N * 158000/3e6)\n"
               "  --stats         print generation and post-filter statistics to stderr\n"
               "advanced (calibration):\n"
               "  --zipf S --zipf-offset Q --clusters C --cluster-share F --second-cluster F\n"
               "  --size-sigma F --dup-share F --skip-share F --gzip-level L\n"
               "  --min-freq K --max-group G   (filters for --stats; default 15, 100)\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct params *p)
{
    memset(p, 0, sizeof(*p));
    p->seed = 1;
    p->format = FMT_TSV;
    p->gzip_level = 1;
    p->out = "-";
    p->zipf_s = 1.25;
    p->zipf_q = -1.0; /* scaled from the catalogue below unless given */
    p->cluster_share = 0.875;
    p->second_cluster = 0.3;
    p->size_sigma = 0.87;
    p->dup_share = 0.02;
    p->skip_share = 0.01;
    p->min_freq = 15;
    p->max_group = 100;
    int have_rows = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        int rc = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--gzip")) {
            p->gzip = 1;
            continue;
        } else if (!strcmp(a, "--stats")) {
            p->stats = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "gen_playlists: %s needs a value\n", a);
            return -EINVAL;
        }
        i++;
        if (!strcmp(a, "--rows")) {
            rc = parse_u64(v, &p->rows);
            have_rows = 1;
        } else if (!strcmp(a, "--seed")) {
            rc = parse_u64(v, &p->seed);
        } else if (!strcmp(a, "--format")) {
            if (!strcmp(v, "tsv"))
                p->format = FMT_TSV;
            else if (!strcmp(v, "csv"))
                p->format = FMT_CSV;
            else if (!strcmp(v, "ndjson"))
                p->format = FMT_NDJSON;
            else
                rc = -EINVAL;
        } else if (!strcmp(a, "--out")) {
            p->out = v;
        } else if (!strcmp(a, "--items")) {
            rc = parse_u64(v, &p->items);
        } else if (!strcmp(a, "--playlists")) {
            rc = parse_u64(v, &p->playlists);
        } else if (!strcmp(a, "--clusters")) {
            rc = parse_u64(v, &p->clusters);
        } else if (!strcmp(a, "--gzip-level")) {
            rc = parse_u64(v, &u);
            if (!rc && (u < 1 || u > 9))
                rc = -EINVAL;
            p->gzip_level = (int)u;
        } else if (!strcmp(a, "--min-freq")) {
            rc = parse_u64(v, &u);
            p->min_freq = (uint32_t)u;
        } else if (!strcmp(a, "--max-group")) {
            rc = parse_u64(v, &u);
            p->max_group = (uint32_t)u;
        } else if (!strcmp(a, "--zipf")) {
            rc = parse_double(v, &p->zipf_s);
        } else if (!strcmp(a, "--zipf-offset")) {
            rc = parse_double(v, &p->zipf_q);
        } else if (!strcmp(a, "--cluster-share")) {
            rc = parse_double(v, &p->cluster_share);
        } else if (!strcmp(a, "--second-cluster")) {
            rc = parse_double(v, &p->second_cluster);
        } else if (!strcmp(a, "--size-sigma")) {
            rc = parse_double(v, &p->size_sigma);
        } else if (!strcmp(a, "--dup-share")) {
            rc = parse_double(v, &p->dup_share);
        } else if (!strcmp(a, "--skip-share")) {
            rc = parse_double(v, &p->skip_share);
        } else {
            fprintf(stderr, "gen_playlists: unknown option %s\n", a);
            usage(stderr);
            return -EINVAL;
        }
        if (rc) {
            fprintf(stderr, "gen_playlists: bad value for %s: %s\n", a, v);
            return rc;
        }
    }
    if (!have_rows || p->rows == 0 || p->rows > 2000000000ull) {
        fprintf(stderr, "gen_playlists: --rows N (1..2e9) is required\n");
        usage(stderr);
        return -EINVAL;
    }
    double scale = (double)p->rows / BASE_ROWS;
    if (!p->playlists)
        p->playlists = (uint64_t)llround(BASE_PLAYLISTS * scale);
    if (!p->playlists)
        p->playlists = 1;
    if (p->playlists > p->rows)
        p->playlists = p->rows;
    if (!p->items)
        p->items = (uint64_t)llround(BASE_ITEMS * pow(scale, HEAPS_EXPONENT));
    if (p->items < 16)
        p->items = 16;
    if (p->items > 400000000ull) {
        fprintf(stderr, "gen_playlists: --items too large\n");
        return -EINVAL;
    }
    /* the head's flattening spans the same share of the catalogue at any size */
    if (p->zipf_q < 0)
        p->zipf_q = BASE_ZIPF_OFFSET * (double)p->items / BASE_ITEMS;
    if (!p->clusters)
        p->clusters = (uint64_t)llround(BASE_CLUSTERS * (double)p->items / BASE_ITEMS);
    if (p->clusters < 1)
        p->clusters = 1;
    if (p->clusters > p->items)
        p->clusters = p->items;
    if (p->cluster_share > 1 || p->second_cluster > 1 || p->dup_share > 1 || p->skip_share > 1 ||
        p->zipf_s <= 0) {
        fprintf(stderr, "gen_playlists: shares must be in 0..1 and --zipf > 0\n");
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct params prm;
    struct catalog cat;
    struct out o = {0};
    struct gen_counts gc = {0};
    struct stats_rows st = {0};
    int rc = 1;

    if (parse_args(argc, argv, &prm))
        return 2;

    double t0 = clock_mono_s();
    catalog_init(&cat, &prm);

    int to_stdout = !strcmp(prm.out, "-");
    o.buf = xmalloc(OUT_BUF_SIZE);
    if (prm.gzip) {
        char mode[8];
        snprintf(mode, sizeof(mode), "wb%d", prm.gzip_level);
        o.gz = to_stdout ? gzdopen(1, mode) : gzopen(prm.out, mode);
        if (!o.gz) {
            fprintf(stderr, "gen_playlists: cannot open %s: %s\n", prm.out, strerror(errno));
            goto out;
        }
        gzbuffer(o.gz, 1 << 18);
    } else {
        o.f = to_stdout ? stdout : fopen(prm.out, "wb");
        if (!o.f) {
            fprintf(stderr, "gen_playlists: cannot open %s: %s\n", prm.out, strerror(errno));
            goto out;
        }
    }
    if (prm.stats) {
        st.pl = xmalloc(sizeof(*st.pl) * prm.rows);
        st.item = xmalloc(sizeof(*st.item) * prm.rows);
    }

    generate(&prm, &cat, &o, &gc, prm.stats ? &st : NULL);
    out_flush(&o);
    if (o.gz) {
        if (gzclose(o.gz) != Z_OK)
            o.failed = 1;
        o.gz = NULL;
    } else {
        if (fflush(o.f) != 0)
            o.failed = 1;
        if (!to_stdout && fclose(o.f) != 0)
            o.failed = 1;
        o.f = NULL;
    }
    if (o.failed) {
        fprintf(stderr, "gen_playlists: write to %s failed: %s\n", prm.out, strerror(errno));
        goto out;
    }
    double t1 = clock_mono_s();

    if (prm.stats) {
        struct filter_stats fs;
        filter_compute(&prm, &cat, &st, &fs);
        double t2 = clock_mono_s();
        double lines = (double)gc.lines;
        uint64_t acc = 0, median = 0, p90 = 0, max = 0;
        for (uint32_t k = 0; k <= MAX_PLAYLIST_SIZE; k++) {
            if (!gc.size_hist[k])
                continue;
            if (!median && 2 * (acc + gc.size_hist[k]) >= gc.playlists)
                median = k;
            if (!p90 && 10 * (acc + gc.size_hist[k]) >= 9 * gc.playlists)
                p90 = k;
            acc += gc.size_hist[k];
            max = k;
        }
        fprintf(
            stderr,
            "gen_playlists stats (seed %" PRIu64 ", catalogue %" PRIu64 " items, %" PRIu64
            " clusters, zipf s %.2f offset %.1f)\n"
            "  lines (data rows)       %" PRIu64 "\n"
            "  valid distinct rows     %" PRIu64 "\n"
            "  duplicate rows          %" PRIu64 " (%.2f%% of lines)\n"
            "  skipped rows            %" PRIu64 " (%.2f%% of lines: item_id<=0 %" PRIu64
            ", empty title %" PRIu64 ")\n"
            "  playlists               %" PRIu64 " (distinct rows: mean %.2f, median %" PRIu64
            ", p90 %" PRIu64 ", max %" PRIu64 ")\n"
            "  distinct items          %" PRIu64 "\n"
            "  popularity              rank-frequency slope %.2f (ranks 10..1e3), %.2f (1e3..2e4), "
            "top 1%% of items hold %.1f%% of rows\n"
            "  freq at rank 1/10/100/1e3/1e4 %u/%u/%u/%u/%u\n"
            "post-filter (min_item_frequency %u, max_group_size %u):\n"
            "  items with freq >= %-5u %" PRIu64 "\n"
            "  valid rows              %" PRIu64 "\n"
            "  valid items             %" PRIu64 "\n"
            "  valid groups            %" PRIu64 "\n"
            "  pair occurrences        %" PRIu64 " (self-join rows a<b)\n"
            "  distinct pairs          %" PRIu64 "\n"
            "  cooc rows               %" PRIu64 " (2 x pairs + diagonal)\n"
            "time: generate %.2f s, stats %.2f s\n",
            prm.seed, prm.items, prm.clusters, prm.zipf_s, prm.zipf_q, gc.lines, gc.valid, gc.dup,
            100.0 * (double)gc.dup / lines, gc.skip_id + gc.skip_title,
            100.0 * (double)(gc.skip_id + gc.skip_title) / lines, gc.skip_id, gc.skip_title,
            gc.playlists, (double)gc.valid / (double)gc.playlists, median, p90, max,
            gc.distinct_items, fs.slope_head, fs.slope_mid, 100.0 * fs.top1_share, fs.freq_at[0],
            fs.freq_at[1], fs.freq_at[2], fs.freq_at[3], fs.freq_at[4], prm.min_freq, prm.max_group,
            prm.min_freq, fs.freq_items, fs.valid_rows, fs.valid_items, fs.valid_groups,
            fs.pair_occurrences, fs.distinct_pairs, fs.cooc_rows, t1 - t0, t2 - t1);
    }
    rc = 0;
out:
    if (o.gz)
        gzclose(o.gz);
    if (o.f && !to_stdout)
        fclose(o.f);
    free(o.buf);
    free(st.pl);
    free(st.item);
    catalog_deinit(&cat);
    return rc;
}
