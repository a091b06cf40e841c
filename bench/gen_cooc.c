/*
 * gen_cooc: writes a synthetic but consistent co-occurrence table in the
 * seed's item_cooc export format (what POST /v1/pmi/import takes), for
 * bench/bench_import.sh. Deterministic for given arguments.
 *
 *   gen_cooc --items N --rows R [--format csv|ndjson] [--seed S] [--out FILE|-]
 *   gen_cooc --embeddings --items N --dims D [--seed S] [--out FILE|-]
 *
 * Table: item i pairs with the d items after it (mod N), d = (R - N) / 2N,
 * so every item has 2d + 1 rows: the diagonal (its frequency) and both
 * orientations of each pair, written row by row (item1 order, as a sorted
 * export would). cooc is 1..16, frequencies 16..1039, pmi the seed's
 * log2(cooc) - log2(f1) - log2(f2) + log2(total) printed with %.17g, so
 * the table passes every check of the import. Ids are decimal strings
 * like the seed's track ids. The seed's whole table gives N = 92,761 and
 * R ≈ 90 M (docs/benchmarks.md).
 * --embeddings: N lines {"id":"...","embedding":[D floats, %.9g]}, the
 * format GET /v1/models/{id}/embeddings writes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: gen_cooc --items N --rows R [--format csv|ndjson] [--seed S] [--out FILE]\n"
            "       gen_cooc --embeddings --items N --dims D [--seed S] [--out FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t n = 0, rows = 0, seed = 1, dims = 64;
    int ndjson = 0, emb = 0;
    const char *out = "-";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--embeddings") == 0) {
            emb = 1;
            continue;
        }
        if (!v)
            usage();
        if (strcmp(a, "--items") == 0)
            n = strtoull(v, NULL, 10);
        else if (strcmp(a, "--rows") == 0)
            rows = strtoull(v, NULL, 10);
        else if (strcmp(a, "--dims") == 0)
            dims = strtoull(v, NULL, 10);
        else if (strcmp(a, "--seed") == 0)
            seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--format") == 0)
            ndjson = strcmp(v, "ndjson") == 0;
        else if (strcmp(a, "--out") == 0)
            out = v;
        else
            usage();
        i++;
    }
    if (n < 2 || (!emb && rows < n) || dims < 1)
        usage();
    FILE *f = strcmp(out, "-") == 0 ? stdout : fopen(out, "wb");
    if (!f) {
        perror(out);
        return 1;
    }
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    if (emb) {
        for (uint64_t i = 0; i < n; i++) {
            fprintf(f, "{\"id\":\"%llu\",\"embedding\":[", (unsigned long long)(100000 + i * 7));
            for (uint64_t k = 0; k < dims; k++) {
                double x = (double)(mix(seed ^ (i * 1315423911u + k)) >> 11) / 9007199254740992.0;
                fprintf(f, k ? ",%.9g" : "%.9g", (double)(float)(x * 2 - 1));
            }
            fputs("]}\n", f);
        }
        return fclose(f) == 0 ? 0 : 1;
    }
    uint64_t d = (rows - n) / (2 * n);
    if (d * 2 >= n)
        d = (n - 1) / 2;
    uint32_t *freq = malloc(sizeof *freq * n);
    if (!freq)
        return 1;
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        freq[i] = 16 + (uint32_t)(mix(seed ^ (i << 1)) % 1024);
        total += freq[i];
    }
    double lt = log2((double)total);
    if (!ndjson)
        fputs("item1_Id,item2_Id,cooc,pmi\n", f);
    for (uint64_t i = 0; i < n; i++) {
        for (int64_t k = -(int64_t)d; k <= (int64_t)d; k++) {
            uint64_t j = (i + n + (uint64_t)k) % n;
            uint64_t lo = i < j ? i : j, hi = i < j ? j : i;
            uint32_t c =
                k == 0 ? freq[i] : 1 + (uint32_t)(mix(seed ^ (lo * 2654435761u + hi)) % 16);
            double pmi = log2((double)c) - log2((double)freq[i]) - log2((double)freq[j]) + lt;
            unsigned long long a = 100000 + i * 7, b = 100000 + j * 7;
            if (ndjson)
                fprintf(f,
                        "{\"item1_Id\":\"%llu\",\"item2_Id\":\"%llu\",\"cooc\":%u,\"pmi\":%.17g}\n",
                        a, b, c, pmi);
            else
                fprintf(f, "%llu,%llu,%u,%.17g\n", a, b, c, pmi);
        }
    }
    free(freq);
    return fclose(f) == 0 ? 0 : 1;
}
