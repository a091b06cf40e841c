/*
 * gen_model: writes a large synthetic embedding model straight into a
 * state directory (issue 14, "Scale data"): N items (ids "g<i>", stored
 * through one playlist batch of 1000 items per playlist so the daemon has
 * their names), a model file <state>/models/m<seq>.emb of N × D floats
 * with planted clusters, and the model record (active unless
 * --no-activate). Rows: centre c (N(0,1) per dim, C centres) + noise ·
 * N(0,1), times a log-normal length exp(0.3·N(0,1)) so that inner product
 * and cosine rank differently. Deterministic for a seed.
 *
 *   gen_model --state DIR [--items N] [--dims D] [--clusters C]
 *             [--noise X] [--seed S] [--model-seq Q] [--no-activate]
 *
 * Single-threaded tool; prints what it wrote and how long each step took.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/clock.h"
#include "storage/batch.h"
#include "storage/model_file.h"
#include "storage/models.h"
#include "storage/store.h"

struct opts {
    const char *state;
    uint32_t n, d, clusters;
    double noise;
    uint64_t seed;
    int64_t seq;
    int activate;
};

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s += 0x9e3779b97f4a7c15ull; /* splitmix64 */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double rng_normal(uint64_t *s)
{
    double u = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double v = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){NULL, 100000, 64, 0, 0.6, 1, 900000, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-activate") == 0) {
            o->activate = 0;
            continue;
        }
        if (!v)
            return -EINVAL;
        i++;
        if (strcmp(a, "--state") == 0)
            o->state = v;
        else if (strcmp(a, "--items") == 0)
            o->n = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--dims") == 0)
            o->d = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--clusters") == 0)
            o->clusters = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--noise") == 0)
            o->noise = atof(v);
        else if (strcmp(a, "--seed") == 0)
            o->seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--model-seq") == 0)
            o->seq = strtoll(v, NULL, 10);
        else
            return -EINVAL;
    }
    if (!o->clusters)
        o->clusters = o->n / 100 + 1;
    return o->state && o->n >= 2 && o->d >= 1 && o->d <= 4096 && o->seq > 0 ? 0 : -EINVAL;
}

/* Stores the items (1000 per playlist) so the daemon knows their ids. */
static int store_items(struct store *s, const struct opts *o)
{
    struct batch *b = batch_create();
    char pl[32], id[32];
    int rc = b ? 0 : -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < o->n; i++) {
        int pn = snprintf(pl, sizeof pl, "gp%u", i / 1000);
        int in = snprintf(id, sizeof id, "g%u", i);
        rc = batch_add(b, pl, (size_t)pn, id, (size_t)in, NULL, 0, NULL, 0);
    }
    struct store_commit_result res;
    if (rc == 0)
        rc = store_batch_commit(s, b, STORE_COMMIT_MERGE, &res);
    batch_destroy(b);
    return rc;
}

/* keys[i] = the store key of item "g<i>", ascending as the file wants:
 * rows are written in key order, each row generated from its item's own
 * number so the content does not depend on key assignment. */
static int item_keys(struct store *s, const struct opts *o, uint32_t *keys, uint32_t *num)
{
    struct store_item_names names = {0};
    int rc = store_item_names_load(s, &names);
    uint32_t got = 0;
    for (uint32_t k = 0; rc == 0 && k <= names.max_key && got < o->n; k++) {
        const char *id = names.id[k];
        if (!id || id[0] != 'g' || id[1] == 'p')
            continue;
        char *end;
        unsigned long x = strtoul(id + 1, &end, 10);
        if (*end || x >= o->n)
            continue;
        keys[got] = k;
        num[got++] = (uint32_t)x;
    }
    store_item_names_deinit(&names);
    return rc != 0 ? rc : got == o->n ? 0 : -EBADMSG;
}

static void gen_rows(const struct opts *o, const uint32_t *num, float *emb)
{
    float *cent = malloc(sizeof(float) * (size_t)o->clusters * o->d);
    uint64_t s = o->seed;
    for (size_t t = 0; t < (size_t)o->clusters * o->d; t++)
        cent[t] = (float)rng_normal(&s);
    for (uint32_t r = 0; r < o->n; r++) {
        uint64_t is = o->seed * 1000003u + num[r] + 1;
        uint32_t c = (uint32_t)(rng_next(&is) % o->clusters);
        double len = exp(0.3 * rng_normal(&is));
        for (uint32_t t = 0; t < o->d; t++)
            emb[(size_t)r * o->d + t] =
                (float)(len * (cent[(size_t)c * o->d + t] + o->noise * rng_normal(&is)));
    }
    free(cent);
}

int main(int argc, char **argv)
{
    struct opts o;
    struct store_error serr;
    char dir[1100], file[64], id[40];
    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: gen_model --state DIR [--items N] [--dims D] [--clusters C] "
                        "[--noise X] [--seed S] [--model-seq Q] [--no-activate]\n");
        return 2;
    }
    mkdir(o.state, 0750);
    struct store *s = store_open(o.state, &serr);
    if (!s) {
        fprintf(stderr, "gen_model: cannot open %s: %s\n", o.state, serr.message);
        return 1;
    }
    double t0 = clock_mono_s();
    int rc = store_items(s, &o);
    double t1 = clock_mono_s();
    struct model_data md = {o.n, o.d, malloc(sizeof(uint32_t) * o.n),
                            malloc(sizeof(float) * (size_t)o.n * o.d), 0};
    uint32_t *num = malloc(sizeof(uint32_t) * o.n);
    if (rc == 0 && (!md.keys || !md.embedding || !num))
        rc = -ENOMEM;
    if (rc == 0)
        rc = item_keys(s, &o, md.keys, num);
    if (rc == 0)
        gen_rows(&o, num, md.embedding);
    snprintf(dir, sizeof dir, "%s/models", o.state);
    mkdir(dir, 0750);
    snprintf(id, sizeof id, "m%lld", (long long)o.seq);
    snprintf(file, sizeof file, "%s.emb", id);
    if (rc == 0)
        rc = model_file_write(dir, file, &md);
    double t2 = clock_mono_s();
    if (rc == 0) {
        struct store_model m = {.seq = o.seq,
                                .id = id,
                                .job = "gen_model",
                                .pmi_job = "",
                                .created_ms = (int64_t)time(NULL) * 1000,
                                .dimensions = o.d,
                                .items = o.n,
                                .params = "{\"source\":\"gen_model\"}",
                                .loss = "[]",
                                .file = file,
                                .crc = md.crc};
        rc = store_model_insert(s, &m, o.activate);
    }
    store_close(s);
    free(num);
    model_data_deinit(&md);
    if (rc != 0) {
        fprintf(stderr, "gen_model: %s\n", strerror(-rc));
        return 1;
    }
    printf("gen_model: model %s, %u items x %u dims, %u clusters, noise %.2f: items stored in "
           "%.1fs, file written in %.1fs%s\n",
           id, o.n, o.d, o.clusters, o.noise, t1 - t0, t2 - t1, o.activate ? ", active" : "");
    return 0;
}
