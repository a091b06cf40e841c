/*
 * state_fixture: test-only tool that writes a state dir with a large
 * catalog and ready models, much faster than uploading and training
 * through the daemon. Used by tests/hostile/ (oversized playlist reads,
 * exact scans, the ?model= cache).
 *
 *   state_fixture --state-dir DIR [--items N] [--playlist-size P]
 *                 [--big-playlist M] [--models K] [--dims F] [--seed S]
 *
 * Items are "i0000001".."i<N>" (keys 1..N, in id order), grouped in
 * playlists "p000001".. of P consecutive items; "big" holds the first M
 * items (0: no such playlist). K models "m1001".."m<1000+K>" of N × F
 * uniform random embeddings (deterministic in S and the model number) are
 * written to DIR/models and recorded; the first one is active.
 *
 * Single-threaded; opens its own store connection (the daemon must not be
 * running on DIR). Exit status: 0 ok, 1 error (message on stderr), 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/batch.h"
#include "storage/model_file.h"
#include "storage/models.h"
#include "storage/store.h"

struct opts {
    const char *dir;
    uint32_t items, playlist_size, big, models, dims;
    uint64_t seed;
};

static int usage(void)
{
    fprintf(stderr, "usage: state_fixture --state-dir DIR [--items N] [--playlist-size P] "
                    "[--big-playlist M] [--models K] [--dims F] [--seed S]\n");
    return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){NULL, 10000, 50, 0, 1, 32, 1};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return -EINVAL;
        unsigned long long x = strtoull(v, NULL, 10);
        if (strcmp(a, "--state-dir") == 0)
            o->dir = v;
        else if (strcmp(a, "--items") == 0)
            o->items = (uint32_t)x;
        else if (strcmp(a, "--playlist-size") == 0)
            o->playlist_size = (uint32_t)x;
        else if (strcmp(a, "--big-playlist") == 0)
            o->big = (uint32_t)x;
        else if (strcmp(a, "--models") == 0)
            o->models = (uint32_t)x;
        else if (strcmp(a, "--dims") == 0)
            o->dims = (uint32_t)x;
        else if (strcmp(a, "--seed") == 0)
            o->seed = x;
        else
            return -EINVAL;
    }
    if (!o->dir || o->items == 0 || o->playlist_size == 0 || o->big > o->items || o->dims == 0)
        return -EINVAL;
    return 0;
}

/* splitmix64: a deterministic stream per (seed, model). */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int add_rows(struct batch *b, const char *pl, uint32_t first, uint32_t count)
{
    char item[16];
    int rc = 0;
    for (uint32_t k = first; rc == 0 && k < first + count; k++) {
        int len = snprintf(item, sizeof item, "i%07" PRIu32, k);
        rc = batch_add(b, pl, strlen(pl), item, (size_t)len, item, (size_t)len, NULL, 0);
    }
    return rc;
}

static int write_catalog(struct store *s, const struct opts *o)
{
    struct batch *b = batch_create();
    struct store_commit_result res;
    char pl[16];
    int rc = b ? 0 : -ENOMEM;
    for (uint32_t first = 1, p = 1; rc == 0 && first <= o->items; first += o->playlist_size, p++) {
        uint32_t count = o->items - first + 1 < o->playlist_size ? o->items - first + 1
                                                                 : o->playlist_size;
        snprintf(pl, sizeof pl, "p%06" PRIu32, p);
        rc = add_rows(b, pl, first, count);
    }
    if (rc == 0 && o->big)
        rc = add_rows(b, "big", 1, o->big);
    if (rc == 0)
        rc = store_batch_commit(s, b, STORE_COMMIT_MERGE, &res);
    batch_destroy(b);
    return rc;
}

static int write_model(struct store *s, const struct opts *o, uint32_t m)
{
    char dir[1100], file[64], id[32], job[32];
    struct model_data md = {o->items, o->dims, NULL, NULL, 0};
    uint64_t st = o->seed * 1000003u + m;
    int rc = -ENOMEM;
    md.keys = malloc(sizeof *md.keys * o->items);
    md.embedding = malloc(sizeof *md.embedding * (size_t)o->items * o->dims);
    if (!md.keys || !md.embedding)
        goto out;
    for (uint32_t i = 0; i < o->items; i++)
        md.keys[i] = i + 1; /* ids in id order got keys 1..N */
    for (size_t x = 0; x < (size_t)o->items * o->dims; x++)
        md.embedding[x] = (float)((double)(next_u64(&st) >> 11) / 9007199254740992.0 - 0.5);
    snprintf(dir, sizeof dir, "%s/models", o->dir);
    mkdir(dir, 0750);
    snprintf(id, sizeof id, "m%" PRIu32, 1000 + m);
    snprintf(job, sizeof job, "j%" PRIu32, 1000 + m);
    snprintf(file, sizeof file, "%s.emb", id);
    if ((rc = model_file_write(dir, file, &md)) != 0)
        goto out;
    struct store_model rec = {.seq = 1000 + m,
                              .id = id,
                              .job = job,
                              .pmi_job = "j0",
                              .created_ms = 1,
                              .dimensions = o->dims,
                              .items = o->items,
                              .params = "{}",
                              .loss = "[]",
                              .file = file,
                              .crc = md.crc};
    rc = store_model_insert(s, &rec, m == 1);
out:
    free(md.keys);
    free(md.embedding);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct store_error err;
    if (parse(argc, argv, &o) != 0)
        return usage();
    mkdir(o.dir, 0750);
    struct store *s = store_open(o.dir, &err);
    if (!s) {
        fprintf(stderr, "state_fixture: %s\n", err.message);
        return 1;
    }
    int rc = write_catalog(s, &o);
    for (uint32_t m = 1; rc == 0 && m <= o.models; m++)
        rc = write_model(s, &o, m);
    if (rc != 0)
        fprintf(stderr, "state_fixture: %s (%s)\n", strerror(-rc), store_errmsg(s));
    store_close(s);
    return rc == 0 ? 0 : 1;
}
