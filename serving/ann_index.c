/*
 * A served model's ANN index (see ann_index.h): build, recall sample,
 * persistence with CRCs, re-scored queries. Worker thread for obtain;
 * queries on any thread.
 */
#include "serving/ann_index.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "ml/knn.h"
#include "ml/par.h"
#include "ml/rank.h"
#include "storage/file_util.h"

/* Version 2: one graph. Version 1 (IVANN01) had a second graph for
 * inner product over rows lifted to equal norm; its recall@10 fell to
 * 0.63 at 1 M x 64 and it doubled the build (docs/algorithms.md): a
 * version-1 manifest does not decode, so its model's index is rebuilt. */
#define MANIFEST_MAGIC "IVANN02\n"
#define MANIFEST_SIZE 128

const char *const ann_index_suffixes[ANN_INDEX_PARTS] = {".ann", ".ann-cos", ".ann-lists"};

#define NO_ITEM UINT32_MAX /* pads a list shorter than list_k */

struct ann_index {
    struct ann *cos;
    uint32_t n, d;
    uint32_t *lists; /* n x st.list_k: each item's cosine neighbours through the
                        graph, ranked; NULL while they are being built */
    uint32_t *by_norm; /* the n_by_norm rows of largest norm (dot candidates) */
    float *by_norm_rows; /* their raw rows, contiguous (n_by_norm x d): a dot
                            query streams them instead of 4 k scattered reads */
    uint32_t n_by_norm;
    struct ann_index_stats st;
};

/* The rows of largest norm that every dot query re-scores besides the
 * graph's cosine candidates: max(1024, n / 256), at most n. */
static uint32_t norm_shortlist_size(uint32_t n)
{
    uint32_t t = n / 256 > 1024 ? n / 256 : 1024;
    return t < n ? t : n;
}

static int u32_cmp(const void *x, const void *y);

/* Fills a->by_norm with the rows of largest norm (ml/rank.h's top-k, ties
 * by index), in index order, and a->by_norm_rows with copies of them. */
static int norm_shortlist(struct ann_index *a, const float *emb)
{
    uint32_t t = norm_shortlist_size(a->n);
    double *norm2 = malloc(sizeof *norm2 * (t ? t : 1));
    a->by_norm = malloc(sizeof *a->by_norm * (t ? t : 1));
    a->by_norm_rows = malloc(sizeof(float) * (size_t)t * a->d + 1);
    if (!norm2 || !a->by_norm || !a->by_norm_rows) {
        free(norm2);
        return -ENOMEM;
    }
    struct rank_top top;
    rank_top_init(&top, a->by_norm, norm2, t, NULL);
    for (uint32_t i = 0; i < a->n; i++) {
        const float *e = emb + (size_t)i * a->d;
        double s = 0;
        for (uint32_t x = 0; x < a->d; x++)
            s += (double)e[x] * e[x];
        rank_top_push(&top, s, i);
    }
    t = rank_top_sort(&top);
    free(norm2);
    /* in index order: the rows are then read in address order */
    qsort(a->by_norm, t, sizeof *a->by_norm, u32_cmp);
    for (uint32_t k = 0; k < t; k++)
        memcpy(a->by_norm_rows + (size_t)k * a->d, emb + (size_t)a->by_norm[k] * a->d,
               sizeof(float) * a->d);
    a->n_by_norm = t;
    return 0;
}

static int u32_cmp(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : a > b;
}

/* The manifest, decoded. */
struct manifest {
    uint32_t model_crc, n, d, m, efc, ef, sample;
    double build_seconds, recall_cosine, recall_dot;
    uint64_t size[2];
    uint32_t crc[2];
};

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void putd(unsigned char *p, double x)
{
    uint64_t v;
    memcpy(&v, &x, 8);
    put64(p, v);
}

static double getd(const unsigned char *p)
{
    uint64_t v = get64(p);
    double x;
    memcpy(&x, &v, 8);
    return x;
}

/* Fields at 8-byte slots after the magic; the last slot is the header CRC. */
static void manifest_encode(const struct manifest *m, unsigned char *h)
{
    memset(h, 0, MANIFEST_SIZE);
    memcpy(h, MANIFEST_MAGIC, 8);
    const uint64_t u[] = {m->model_crc, m->n,       m->d,      m->m,       m->efc,   m->ef,
                          m->sample,    m->size[0], m->crc[0], m->size[1], m->crc[1]};
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        put64(h + 8 + 8 * i, u[i]);
    putd(h + 96, m->build_seconds);
    putd(h + 104, m->recall_cosine);
    putd(h + 112, m->recall_dot);
    put64(h + 120, file_crc32(0, h, 120));
}

static int manifest_decode(const unsigned char *h, struct manifest *m)
{
    if (memcmp(h, MANIFEST_MAGIC, 8) != 0 || get64(h + 120) != file_crc32(0, h, 120))
        return -EBADMSG;
    uint64_t u[11];
    for (int i = 0; i < 11; i++)
        u[i] = get64(h + 8 + 8 * i);
    *m = (struct manifest){.model_crc = (uint32_t)u[0],
                           .n = (uint32_t)u[1],
                           .d = (uint32_t)u[2],
                           .m = (uint32_t)u[3],
                           .efc = (uint32_t)u[4],
                           .ef = (uint32_t)u[5],
                           .sample = (uint32_t)u[6],
                           .size = {u[7], u[9]},
                           .crc = {(uint32_t)u[8], (uint32_t)u[10]}};
    m->build_seconds = getd(h + 96);
    m->recall_cosine = getd(h + 104);
    m->recall_dot = getd(h + 112);
    return 0;
}

static void path_of(char *out, size_t size, const char *dir, const char *name, int part)
{
    snprintf(out, size, "%s/%s%s", dir, name, ann_index_suffixes[part]);
}

/* CRC32 and size of a whole file. */
static int file_crc(const char *path, uint32_t *crc, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    static const size_t chunk = 1 << 20;
    unsigned char *buf = malloc(chunk);
    int rc = buf ? 0 : -ENOMEM;
    *crc = file_crc32(0, NULL, 0);
    *size = 0;
    while (rc == 0) {
        ssize_t r = read(fd, buf, chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -errno;
        if (r <= 0)
            break;
        *crc = file_crc32(*crc, buf, (size_t)r);
        *size += (uint64_t)r;
    }
    free(buf);
    close(fd);
    return rc;
}

static int manifest_read(const char *dir, const char *name, struct manifest *m)
{
    char path[1200];
    unsigned char h[MANIFEST_SIZE];
    path_of(path, sizeof path, dir, name, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = file_read_all(fd, h, sizeof h);
    close(fd);
    return rc != 0 ? rc : manifest_decode(h, m);
}

static int verify_parts(const char *dir, const char *name, const struct manifest *m)
{
    char path[1200];
    for (int part = 1; part < ANN_INDEX_PARTS; part++) {
        uint32_t crc;
        uint64_t size;
        path_of(path, sizeof path, dir, name, part);
        int rc = file_crc(path, &crc, &size);
        if (rc != 0)
            return rc;
        if (crc != m->crc[part - 1] || size != m->size[part - 1])
            return -EBADMSG;
    }
    return 0;
}

int ann_index_verify(const char *dir, const char *name, uint32_t model_crc)
{
    struct manifest m;
    int rc = manifest_read(dir, name, &m);
    if (rc != 0)
        return rc;
    if (m.model_crc != model_crc)
        return -EBADMSG;
    return verify_parts(dir, name, &m);
}

/* Reads the index from the files when they match the model. */
static struct ann_index *index_load(const char *dir, const char *name, uint32_t model_crc,
                                    uint32_t n, uint32_t d, int *err)
{
    struct manifest m;
    char path[1200];
    double t0 = clock_mono_s();
    int rc = manifest_read(dir, name, &m);
    if (rc == 0 && (m.model_crc != model_crc || m.n != n || m.d != d))
        rc = -EBADMSG;
    if (rc == 0)
        rc = verify_parts(dir, name, &m);
    struct ann_index *a = rc == 0 ? calloc(1, sizeof *a) : NULL;
    if (rc == 0 && !a)
        rc = -ENOMEM;
    if (rc == 0) {
        path_of(path, sizeof path, dir, name, 1);
        a->cos = ann_load(path, d, m.ef, &rc);
    }
    if (rc == 0 && ann_count(a->cos) != n)
        rc = -EBADMSG;
    uint64_t list_k = m.size[1] / 4 / n;
    if (rc == 0 && (m.size[1] != list_k * 4 * n || list_k > ANN_INDEX_MAX_LIST_K))
        rc = -EBADMSG;
    if (rc == 0 && list_k > 0) {
        a->lists = malloc(m.size[1]);
        path_of(path, sizeof path, dir, name, 2);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        rc = !a->lists ? -ENOMEM : fd < 0 ? -errno : file_read_all(fd, a->lists, m.size[1]);
        if (fd >= 0)
            close(fd);
        for (uint64_t x = 0; rc == 0 && x < (uint64_t)n * list_k; x++)
            if (a->lists[x] != NO_ITEM && a->lists[x] >= n)
                rc = -EBADMSG;
    }
    if (rc != 0) {
        ann_index_destroy(a);
        *err = rc;
        return NULL;
    }
    a->n = n;
    a->d = d;
    a->st = (struct ann_index_stats){.build_seconds = m.build_seconds,
                                     .load_seconds = clock_mono_s() - t0,
                                     .loaded = 1,
                                     .recall_cosine = m.recall_cosine,
                                     .recall_dot = m.recall_dot,
                                     .sample = m.sample,
                                     .list_k = (uint32_t)list_k};
    ann_params_init(&a->st.params);
    a->st.params.m = m.m;
    a->st.params.ef_construction = m.efc;
    a->st.params.ef_search = m.ef;
    return a;
}

/* Writes one graph under a temporary name, then renames it. */
static int save_part(const struct ann *g, const char *dir, const char *name, int part,
                     uint32_t *crc, uint64_t *size)
{
    char path[1200], tmp[1300];
    path_of(path, sizeof path, dir, name, part);
    snprintf(tmp, sizeof tmp, "%s/.%s%s.tmp", dir, name, ann_index_suffixes[part]);
    int rc = ann_save(g, tmp);
    if (rc == 0)
        rc = file_crc(tmp, crc, size);
    if (rc == 0) {
        int fd = open(tmp, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
        if (rename(tmp, path) != 0)
            rc = -errno;
    }
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* Writes the lists under a temporary name, then renames them. */
static int save_lists(const struct ann_index *a, const char *dir, const char *name, uint32_t *crc,
                      uint64_t *size)
{
    char path[1200], tmp[1300];
    *size = (uint64_t)a->n * a->st.list_k * 4;
    *crc = file_crc32(0, NULL, 0);
    if (!a->lists) /* none kept: an empty file, so every index has its three parts */
        *size = 0;
    path_of(path, sizeof path, dir, name, 2);
    snprintf(tmp, sizeof tmp, "%s/.%s%s.tmp", dir, name, ann_index_suffixes[2]);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int rc = 0;
    const unsigned char *p = (const unsigned char *)a->lists;
    for (uint64_t off = 0; rc == 0 && off < *size;) {
        ssize_t w = write(fd, p + off, *size - off > (1 << 20) ? (1 << 20) : *size - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            rc = -errno;
        else
            off += (uint64_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && *size > 0)
        *crc = file_crc32(0, p, *size);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* file_write_atomic zeroes the header first and has it filled here. */
static void manifest_done(void *header, uint32_t crc, uint64_t size, void *ud)
{
    (void)crc, (void)size;
    manifest_encode(ud, header);
}

static int index_save(const struct ann_index *a, const char *dir, const char *name,
                      uint32_t model_crc)
{
    struct manifest m = {.model_crc = model_crc,
                         .n = a->n,
                         .d = a->d,
                         .m = a->st.params.m,
                         .efc = a->st.params.ef_construction,
                         .ef = a->st.params.ef_search,
                         .sample = a->st.sample,
                         .build_seconds = a->st.build_seconds,
                         .recall_cosine = a->st.recall_cosine,
                         .recall_dot = a->st.recall_dot};
    char mname[300];
    unsigned char h[MANIFEST_SIZE];
    int rc = save_part(a->cos, dir, name, 1, &m.crc[0], &m.size[0]);
    if (rc == 0)
        rc = save_lists(a, dir, name, &m.crc[1], &m.size[1]);
    if (rc != 0)
        return rc;
    snprintf(mname, sizeof mname, "%s%s", name, ann_index_suffixes[0]);
    return file_write_atomic(dir, mname, h, sizeof h, NULL, 0, manifest_done, &m);
}

struct build_progress {
    ann_index_progress_fn fn;
    void *ud;
    double base, span;
};

static int on_build(void *ud, double f)
{
    struct build_progress *bp = ud;
    return bp->fn ? bp->fn(bp->ud, "ann-build", bp->base + bp->span * f) : 0;
}

/* Every item's list_k cosine neighbours through the graph, on the build
 * threads: what ann_index_neighbors answers for k <= list_k, so a
 * similar?k=10 is then a copy (plus k exact scores), not a graph search. */
struct lists_ctx {
    struct ann_index *a;
    uint32_t *lists;
    const struct knn_index *idx;
    const float *emb;
    const uint32_t *tie;
    uint32_t **out_idx;
    double **out_score;
    atomic_size_t done;
    int failed;
    ann_index_progress_fn fn;
    void *ud;
};

enum { LISTS_CHUNK = 256 };

static void lists_task(void *vctx, size_t t, int worker)
{
    struct lists_ctx *c = vctx;
    const struct ann_index *a = c->a;
    uint32_t k = a->st.list_k, end = (uint32_t)((t + 1) * LISTS_CHUNK);
    if (end > a->n)
        end = a->n;
    for (uint32_t q = (uint32_t)(t * LISTS_CHUNK); q < end; q++) {
        int nn = ann_index_neighbors(a, c->idx, c->emb, c->tie, 0, q, k, c->out_idx[worker],
                                     c->out_score[worker]);
        if (nn < 0) {
            c->failed = nn;
            return;
        }
        uint32_t *row = c->lists + (size_t)q * k;
        for (uint32_t x = 0; x < k; x++)
            row[x] = x < (uint32_t)nn ? c->out_idx[worker][x] : NO_ITEM;
    }
    atomic_fetch_add(&c->done, end - t * LISTS_CHUNK);
}

static int lists_tick(void *vctx)
{
    struct lists_ctx *c = vctx;
    if (c->fn)
        return c->fn(c->ud, "ann-lists", (double)atomic_load(&c->done) / c->a->n);
    return 0;
}

static int build_lists(struct ann_index *a, const struct knn_index *idx, const float *emb,
                       const uint32_t *tie, int threads, ann_index_progress_fn fn, void *ud)
{
    if (a->st.list_k == 0)
        return 0;
    int rc = 0;
    struct par *pool = par_create(threads, &rc);
    if (!pool)
        return rc;
    int nt = par_threads(pool);
    struct lists_ctx c = {.a = a, .idx = idx, .emb = emb, .tie = tie, .fn = fn, .ud = ud};
    c.lists = malloc(sizeof(uint32_t) * (size_t)a->n * a->st.list_k);
    c.out_idx = calloc((size_t)nt, sizeof *c.out_idx);
    c.out_score = calloc((size_t)nt, sizeof *c.out_score);
    rc = c.lists && c.out_idx && c.out_score ? 0 : -ENOMEM;
    for (int w = 0; rc == 0 && w < nt; w++) {
        c.out_idx[w] = malloc(sizeof(uint32_t) * a->st.list_k);
        c.out_score[w] = malloc(sizeof(double) * a->st.list_k);
        if (!c.out_idx[w] || !c.out_score[w])
            rc = -ENOMEM;
    }
    atomic_init(&c.done, 0);
    if (rc == 0)
        rc = par_for(pool, (a->n + LISTS_CHUNK - 1) / LISTS_CHUNK, lists_task, &c, lists_tick, &c,
                     100);
    if (rc == 0 && c.failed)
        rc = c.failed;
    for (int w = 0; c.out_idx && c.out_score && w < nt; w++) {
        free(c.out_idx[w]);
        free(c.out_score[w]);
    }
    free(c.out_idx);
    free(c.out_score);
    par_destroy(pool);
    if (rc != 0) {
        free(c.lists);
        return rc;
    }
    a->lists = c.lists;
    return 0;
}

/* recall@10 of the graph against the exact path on sample queries spread
 * evenly over the items. */
static int measure_recall(struct ann_index *a, const struct knn_index *idx, const float *emb,
                          ann_index_progress_fn fn, void *ud)
{
    enum { K = 10 };
    uint32_t s = a->n < ANN_INDEX_RECALL_SAMPLE ? a->n : ANN_INDEX_RECALL_SAMPLE;
    uint32_t ex[K], ap[K];
    double sc[K];
    double hit[2] = {0, 0}, tot[2] = {0, 0};
    for (uint32_t t = 0; t < s; t++) {
        uint32_t q = (uint32_t)((uint64_t)t * a->n / s);
        for (int dot = 0; dot <= 1; dot++) {
            int ne = dot ? rank_dot(emb, a->n, a->d, q, K, NULL, ex, sc)
                         : knn_index_neighbors(idx, q, K, ex, NULL);
            int na = ann_index_neighbors(a, idx, emb, NULL, dot, q, K, ap, sc);
            for (int x = 0; x < ne; x++)
                for (int y = 0; y < na; y++)
                    if (ex[x] == ap[y]) {
                        hit[dot]++;
                        break;
                    }
            tot[dot] += ne > 0 ? ne : 0;
        }
        if (fn && t % 16 == 0 && fn(ud, "ann-recall", (double)t / s))
            return -ECANCELED;
    }
    a->st.sample = s;
    a->st.recall_cosine = tot[0] > 0 ? hit[0] / tot[0] : 1.0;
    a->st.recall_dot = tot[1] > 0 ? hit[1] / tot[1] : 1.0;
    return 0;
}

static struct ann_index *index_build(const struct knn_index *idx, const float *emb,
                                     const uint32_t *tie, uint32_t n, uint32_t d,
                                     uint32_t list_k, const struct ann_params *p,
                                     ann_index_progress_fn fn, void *ud, int *err)
{
    double t0 = clock_mono_s();
    struct ann_index *a = calloc(1, sizeof *a);
    float *unit = malloc(sizeof(float) * (size_t)n * d);
    int rc = a && unit ? 0 : -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        memcpy(unit + (size_t)i * d, knn_index_row(idx, i), sizeof(float) * d);
    struct build_progress bp = {fn, ud, 0, 1};
    if (rc == 0)
        a->cos = ann_build(unit, n, d, p, on_build, &bp, &rc);
    free(unit);
    if (rc != 0) {
        ann_index_destroy(a);
        *err = rc;
        return NULL;
    }
    a->n = n;
    a->d = d;
    a->st.params = *p;
    a->st.build_seconds = clock_mono_s() - t0;
    double t1 = clock_mono_s();
    a->st.list_k = list_k < n ? list_k : n - 1;
    if (a->st.list_k > ANN_INDEX_MAX_LIST_K)
        a->st.list_k = ANN_INDEX_MAX_LIST_K;
    if ((rc = build_lists(a, idx, emb, tie, p->threads, fn, ud)) != 0) {
        ann_index_destroy(a);
        *err = rc;
        return NULL;
    }
    a->st.lists_seconds = clock_mono_s() - t1;
    a->st.build_seconds += a->st.lists_seconds;
    if ((rc = norm_shortlist(a, emb)) != 0 || (rc = measure_recall(a, idx, emb, fn, ud)) != 0) {
        ann_index_destroy(a);
        *err = rc;
        return NULL;
    }
    return a;
}

struct ann_index *ann_index_obtain(const char *dir, const char *name, uint32_t model_crc,
                                   const struct knn_index *idx, const float *emb,
                                   const uint32_t *tie, uint32_t n, uint32_t d, uint32_t list_k,
                                   const struct ann_params *p, ann_index_progress_fn progress,
                                   void *ud, int *err)
{
    int rc = 0;
    if (!idx || !emb || n == 0 || d == 0 || !p || (dir && !name)) {
        *err = -EINVAL;
        return NULL;
    }
    if (dir) {
        if (progress)
            progress(ud, "ann-load", 0);
        struct ann_index *a = index_load(dir, name, model_crc, n, d, &rc);
        if (a && (rc = norm_shortlist(a, emb)) != 0) {
            ann_index_destroy(a);
            *err = rc;
            return NULL;
        }
        if (a) {
            a->st.params.threads = p->threads;
            return a;
        }
        if (rc != -ENOENT)
            log_warn("serving: ANN index of %s not reusable (%s): rebuilding", name, strerror(-rc));
    }
    struct ann_index *a = index_build(idx, emb, tie, n, d, list_k, p, progress, ud, err);
    if (a && dir && (rc = index_save(a, dir, name, model_crc)) != 0)
        log_warn("serving: cannot save the ANN index of %s: %s", name, strerror(-rc));
    return a;
}

/* The exact path's inner product (rank_dot's double sum). */
static double dot_score(const float *a, const float *b, uint32_t d)
{
    double s = 0;
    for (uint32_t x = 0; x < d; x++)
        s += (double)a[x] * b[x];
    return s;
}

int ann_index_neighbors(const struct ann_index *a, const struct knn_index *idx, const float *emb,
                        const uint32_t *tie, int dot, uint32_t q, uint32_t k, uint32_t *out_idx,
                        double *out_score)
{
    if (!a || !idx || !emb || !out_idx || !out_score || q >= a->n || k == 0)
        return -EINVAL;
    if (!dot && a->lists && k <= a->st.list_k) {
        const uint32_t *row = a->lists + (size_t)q * a->st.list_k;
        int nn = 0;
        while ((uint32_t)nn < k && row[nn] != NO_ITEM) {
            out_idx[nn] = row[nn];
            out_score[nn] = knn_index_score(idx, q, row[nn]);
            nn++;
        }
        return nn;
    }
    /* q itself is usually among the candidates; dot takes many more of
     * them (see the header) */
    uint64_t want = k + 1;
    if (dot && want < (uint64_t)a->st.params.ef_search * ANN_DOT_CANDIDATES)
        want = (uint64_t)a->st.params.ef_search * ANN_DOT_CANDIDATES;
    if (want > a->n)
        want = a->n;
    uint32_t *cand = malloc(sizeof(uint32_t) * want);
    if (!cand)
        return -ENOMEM;
    const float *eq = emb + (size_t)q * a->d;
    int nc = ann_search(a->cos, knn_index_row(idx, q), (uint32_t)want, cand);
    if (nc < 0) {
        free(cand);
        return nc;
    }
    struct rank_top top;
    rank_top_init(&top, out_idx, out_score, k, tie);
    for (int c = 0; c < nc; c++) {
        uint32_t j = cand[c];
        if (j == q || j >= a->n)
            continue;
        rank_top_push(&top, dot ? dot_score(eq, emb + (size_t)j * a->d, a->d)
                                 : knn_index_score(idx, q, j),
                      j);
    }
    if (dot && a->by_norm) {
        /* the rows of largest norm: an item far from q in angle can still
         * have one of the largest inner products if its norm is large */
        qsort(cand, (size_t)nc, sizeof *cand, u32_cmp);
        for (uint32_t t = 0; t < a->n_by_norm; t++) {
            uint32_t j = a->by_norm[t];
            if (j == q || bsearch(&j, cand, (size_t)nc, sizeof *cand, u32_cmp))
                continue;
            rank_top_push(&top, dot_score(eq, a->by_norm_rows + (size_t)t * a->d, a->d), j);
        }
    }
    free(cand);
    return (int)rank_top_sort(&top);
}

const struct ann_index_stats *ann_index_stats(const struct ann_index *a)
{
    return &a->st;
}

size_t ann_index_bytes(const struct ann_index *a)
{
    return a ? sizeof *a + ann_bytes(a->cos) + sizeof(uint32_t) * (size_t)a->n * a->st.list_k +
                   (sizeof(uint32_t) + sizeof(float) * a->d) * (size_t)a->n_by_norm
             : 0;
}

void ann_index_destroy(struct ann_index *a)
{
    if (!a)
        return;
    ann_destroy(a->cos);
    free(a->lists);
    free(a->by_norm);
    free(a->by_norm_rows);
    free(a);
}
