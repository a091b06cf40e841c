/*
 * bench_pmi: times the PMI job's kernel (ml/cooc.c) and its result file
 * (storage/cooc_file.c) on a playlist table such as bench/gen_playlists
 * writes, without the daemon or SQLite in the way.
 *
 *   bench_pmi [--threads N] [--min-item-frequency N] [--max-group-size N]
 *             [--repeat R] [--out-dir DIR] [--keep] FILE.tsv|-
 *
 * --keep leaves the result file in --out-dir (its name is printed as
 * result_file) for bench_wals --cooc, instead of removing it.
 *
 * Input: TSV with a header naming playlist_id, item_id, title (artist and
 * other columns ignored; the seed's list_Id, track_Id, track_title are
 * accepted too). As the seed's cleaning SELECT DISTINCT ... WHERE
 * tracks_data_title IS NOT NULL AND tracks_data_id > 0, rows with an
 * item_id <= 0 (or not an integer) or an empty title are skipped and
 * repeated (playlist, item) rows count once. Quoted fields ("" escapes) are
 * understood within a line.
 *
 * Output: one "name value" line per measurement (seconds, counts, peak
 * RSS in MiB). The peak RSS of the compute step is measured after
 * resetting the high-water mark (/proc/self/clear_refs), so it is the
 * resident input (the groups, as the job holds them) plus what
 * cooc_compute allocates. Targets from the issue at the seed's 3 M rows:
 * cooc_compute < 1.5 s (the seed's SQL in SQLite ~120 s, DuckDB 9.4 s).
 */
#include "base/clock.h"
#include "ml/cooc.h"
#include "storage/cooc_file.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* VmHWM / VmRSS from /proc/self/status, in MiB (-1 if unavailable). */
static double proc_status_mib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = strtod(line + n + 1, NULL) / 1024.0;
    if (f)
        fclose(f);
    return v;
}

static void reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

/* Records when each stage of cooc_compute is first reported. */
struct stage_log {
    double t0;
    const char *stage[8];
    double at[8];
    int n;
};

static int on_progress(void *userdata, const struct cooc_progress *p)
{
    struct stage_log *l = userdata;
    if (l->n < 8 && (l->n == 0 || strcmp(l->stage[l->n - 1], p->stage) != 0)) {
        l->stage[l->n] = p->stage;
        l->at[l->n++] = clock_mono_s() - l->t0;
    }
    return 0;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "bench_pmi: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return q;
}

/* Open-addressing map from a 64-bit id to a dense 0-based index. */
struct idmap {
    uint64_t *keys;
    uint32_t *vals; /* index + 1; 0 = empty */
    size_t cap, len;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static void idmap_grow(struct idmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 1 << 16;
    uint64_t *nk = calloc(ncap, sizeof(*nk));
    uint32_t *nv = calloc(ncap, sizeof(*nv));
    if (!nk || !nv) {
        fprintf(stderr, "bench_pmi: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->vals[i])
            continue;
        size_t h = mix64(m->keys[i]) & (ncap - 1);
        while (nv[h])
            h = (h + 1) & (ncap - 1);
        nk[h] = m->keys[i];
        nv[h] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
}

static uint32_t idmap_get(struct idmap *m, uint64_t key)
{
    if ((m->len + 1) * 2 > m->cap)
        idmap_grow(m);
    size_t h = mix64(key) & (m->cap - 1);
    while (m->vals[h]) {
        if (m->keys[h] == key)
            return m->vals[h] - 1;
        h = (h + 1) & (m->cap - 1);
    }
    m->keys[h] = key;
    m->vals[h] = (uint32_t)++m->len;
    return m->vals[h] - 1;
}

/* FNV-1a, for playlist ids that are not integers (bench only: a 64-bit
 * collision would merge two playlists). */
static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h | (1ULL << 63);
}

static int parse_i64(const char *s, size_t n, int64_t *out)
{
    int neg = 0;
    size_t i = 0;
    int64_t v = 0;
    if (n && (s[0] == '-' || s[0] == '+'))
        neg = s[i++] == '-';
    if (i == n)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

struct field {
    const char *p;
    size_t n;
};

/* Splits one line (no newline) at tabs; quoted fields lose their quotes
 * (the "" escapes stay doubled: only emptiness and integers matter here). */
static int split_tsv(const char *line, size_t len, struct field *f, int max)
{
    int k = 0;
    size_t i = 0;
    for (;;) {
        if (k == max)
            return k;
        if (i < len && line[i] == '"') {
            size_t s = ++i;
            while (i < len && !(line[i] == '"' && (i + 1 >= len || line[i + 1] != '"')))
                i += line[i] == '"' ? 2 : 1;
            f[k].p = line + s;
            f[k].n = (i < len ? i : len) - s;
            k++;
            while (i < len && line[i] != '\t')
                i++;
        } else {
            size_t s = i;
            while (i < len && line[i] != '\t')
                i++;
            f[k].p = line + s;
            f[k].n = i - s;
            k++;
        }
        if (i >= len)
            return k;
        i++; /* the tab */
    }
}

static int column_of(struct field *f, int nf, const char *a, const char *b)
{
    for (int i = 0; i < nf; i++) {
        if ((strlen(a) == f[i].n && !strncasecmp(f[i].p, a, f[i].n)) ||
            (strlen(b) == f[i].n && !strncasecmp(f[i].p, b, f[i].n)))
            return i;
    }
    return -1;
}

struct rows {
    uint32_t *group;
    uint32_t *item;
    size_t n, cap;
    uint64_t lines, skipped_id, skipped_title;
};

static void rows_add(struct rows *r, uint32_t g, uint32_t it)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1 << 20;
        r->group = xrealloc(r->group, r->cap * sizeof(*r->group));
        r->item = xrealloc(r->item, r->cap * sizeof(*r->item));
    }
    r->group[r->n] = g;
    r->item[r->n] = it;
    r->n++;
}

static int read_tsv(FILE *in, struct rows *r, struct idmap *groups, struct idmap *items)
{
    size_t cap = 1 << 24, len = 0;
    char *buf = xrealloc(NULL, cap);
    int col_pl = -1, col_it = -1, col_ti = -1, ncols = 0, header = 1;
    struct field f[16];
    for (;;) {
        size_t got = fread(buf + len, 1, cap - len, in);
        len += got;
        int eof = got == 0;
        size_t start = 0;
        for (;;) {
            char *nl = memchr(buf + start, '\n', len - start);
            if (!nl && !(eof && start < len))
                break;
            size_t end = nl ? (size_t)(nl - buf) : len;
            size_t ll = end - start;
            if (ll && buf[start + ll - 1] == '\r')
                ll--;
            const char *line = buf + start;
            start = nl ? end + 1 : len;
            if (!ll)
                continue;
            int nf = split_tsv(line, ll, f, 16);
            if (header) {
                header = 0;
                col_pl = column_of(f, nf, "playlist_id", "list_Id");
                col_it = column_of(f, nf, "item_id", "track_Id");
                col_ti = column_of(f, nf, "title", "track_title");
                ncols = nf;
                if (col_pl < 0 || col_it < 0) {
                    fprintf(stderr, "bench_pmi: header lacks playlist_id/item_id\n");
                    free(buf);
                    return -1;
                }
                continue;
            }
            r->lines++;
            if (nf < ncols) {
                fprintf(stderr, "bench_pmi: line %" PRIu64 ": %d fields\n", r->lines + 1, nf);
                free(buf);
                return -1;
            }
            int64_t iid, pid;
            if (parse_i64(f[col_it].p, f[col_it].n, &iid) < 0 || iid <= 0) {
                r->skipped_id++;
                continue;
            }
            if (col_ti >= 0 && f[col_ti].n == 0) {
                r->skipped_title++;
                continue;
            }
            uint64_t pkey = parse_i64(f[col_pl].p, f[col_pl].n, &pid) == 0
                                ? (uint64_t)pid & ~(1ULL << 63)
                                : hash_str(f[col_pl].p, f[col_pl].n);
            uint32_t g = idmap_get(groups, pkey);
            uint32_t it = idmap_get(items, (uint64_t)iid) + 1; /* keys 1..n */
            rows_add(r, g, it);
        }
        memmove(buf, buf + start, len - start);
        len -= start;
        if (eof)
            break;
        if (len == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    free(buf);
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* CSR groups, sorted and unique per group, as store_groups_load returns. */
static void build_groups(const struct rows *r, size_t n_groups, uint32_t max_key,
                         struct cooc_groups *out, uint64_t **off_out, uint32_t **items_out,
                         uint64_t *dups)
{
    uint64_t *off = calloc(n_groups + 1, sizeof(*off));
    uint32_t *items = malloc((r->n ? r->n : 1) * sizeof(*items));
    if (!off || !items) {
        fprintf(stderr, "bench_pmi: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < r->n; i++)
        off[r->group[i] + 1]++;
    for (size_t g = 0; g < n_groups; g++)
        off[g + 1] += off[g];
    uint64_t *cur = malloc((n_groups + 1) * sizeof(*cur));
    memcpy(cur, off, (n_groups + 1) * sizeof(*cur));
    for (size_t i = 0; i < r->n; i++)
        items[cur[r->group[i]]++] = r->item[i];
    free(cur);
    uint64_t w = 0;
    *dups = 0;
    for (size_t g = 0; g < n_groups; g++) {
        uint64_t b = off[g], e = off[g + 1];
        qsort(items + b, e - b, sizeof(*items), cmp_u32);
        off[g] = w;
        for (uint64_t k = b; k < e; k++) {
            if (k > b && items[k] == items[k - 1]) {
                (*dups)++;
                continue;
            }
            items[w++] = items[k];
        }
    }
    off[n_groups] = w;
    out->n_groups = n_groups;
    out->offsets = off;
    out->items = items;
    out->max_item_key = max_key;
    *off_out = off;
    *items_out = items;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_pmi [--threads N] [--min-item-frequency N] "
                    "[--max-group-size N] [--repeat R] [--out-dir DIR] [--keep] FILE.tsv|-\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct cooc_params params;
    const char *path = NULL, *out_dir = "/tmp";
    int repeat = 1, keep = 0;
    cooc_params_init(&params);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            params.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-item-frequency") && i + 1 < argc)
            params.min_item_frequency = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--max-group-size") && i + 1 < argc)
            params.max_group_size = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out-dir") && i + 1 < argc)
            out_dir = argv[++i];
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else if (!path && (strcmp(argv[i], "-") == 0 || argv[i][0] != '-'))
            path = argv[i];
        else
            return usage();
    }
    if (!path || repeat < 1)
        return usage();

    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!in) {
        fprintf(stderr, "bench_pmi: %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct rows rows = {0};
    struct idmap gmap = {0}, imap = {0};
    double t0 = clock_mono_s();
    if (read_tsv(in, &rows, &gmap, &imap) < 0)
        return 1;
    if (in != stdin)
        fclose(in);
    double t_parse = clock_mono_s() - t0;

    struct cooc_groups groups;
    uint64_t *off;
    uint32_t *items;
    uint64_t dups;
    t0 = clock_mono_s();
    build_groups(&rows, gmap.len, (uint32_t)imap.len, &groups, &off, &items, &dups);
    double t_build = clock_mono_s() - t0;
    free(rows.group);
    free(rows.item);
    free(gmap.keys);
    free(gmap.vals);
    free(imap.keys);
    free(imap.vals);

    printf("input %s\n", path);
    printf("lines %" PRIu64 "\n", rows.lines);
    printf("skipped_non_positive_id %" PRIu64 "\n", rows.skipped_id);
    printf("skipped_missing_title %" PRIu64 "\n", rows.skipped_title);
    printf("duplicates %" PRIu64 "\n", dups);
    printf("memberships %" PRIu64 "\n", off[groups.n_groups]);
    printf("groups %zu\n", groups.n_groups);
    printf("items %u\n", groups.max_item_key);
    printf("parse_s %.3f\n", t_parse);
    printf("build_groups_s %.3f\n", t_build);
    printf("threads %d\n", params.threads);
    printf("min_item_frequency %" PRId64 "\n", params.min_item_frequency);
    printf("max_group_size %" PRId64 "\n", params.max_group_size);
    printf("rss_before_compute_mib %.1f\n", proc_status_mib("VmRSS"));
    fflush(stdout);

    struct cooc_result res = {0};
    double best = 1e300, sum = 0, peak = 0;
    for (int k = 0; k < repeat; k++) {
        cooc_result_deinit(&res);
        reset_peak_rss();
        t0 = clock_mono_s();
        double c0 = clock_cpu_s();
        struct stage_log sl = {.t0 = t0};
        int rc = cooc_compute(&groups, &params, on_progress, &sl, &res);
        double t = clock_mono_s() - t0, cpu = clock_cpu_s() - c0;
        if (rc < 0) {
            fprintf(stderr, "bench_pmi: cooc_compute: %s\n", strerror(-rc));
            return 1;
        }
        double hwm = proc_status_mib("VmHWM");
        if (hwm > peak)
            peak = hwm;
        if (t < best)
            best = t;
        sum += t;
        /* CPU time too: on a shared machine the wall clock shows the load. */
        printf("cooc_compute_s %.3f (cpu %.3f s; stages end at", t, cpu);
        for (int k2 = 0; k2 < sl.n; k2++)
            printf(" %s %.3f", sl.stage[k2], k2 + 1 < sl.n ? sl.at[k2 + 1] : t);
        printf(")\n");
        fflush(stdout);
    }
    printf("cooc_compute_best_s %.3f\n", best);
    printf("cooc_compute_mean_s %.3f\n", sum / repeat);
    printf("peak_rss_compute_mib %.1f\n", peak);
    printf("valid_items %" PRIu64 "\n", res.valid_items);
    printf("valid_groups %" PRIu64 "\n", res.valid_groups);
    printf("total %" PRIu64 "\n", res.total);
    printf("matrix_items %u\n", res.n);
    printf("nnz %" PRIu64 "\n", res.nnz);
    printf("result_mib %.1f\n",
           (double)(res.nnz * 8 + (uint64_t)res.n * 16 + 8) / (1024.0 * 1024.0));

    char name[64];
    snprintf(name, sizeof(name), "bench_pmi.%ld.cooc", (long)getpid());
    t0 = clock_mono_s();
    int rc = cooc_file_write(out_dir, name, &res);
    double t_write = clock_mono_s() - t0;
    if (rc < 0) {
        fprintf(stderr, "bench_pmi: cooc_file_write %s: %s\n", out_dir, strerror(-rc));
        return 1;
    }
    printf("cooc_file_write_s %.3f\n", t_write);
    struct cooc_result back;
    reset_peak_rss();
    double rss0 = proc_status_mib("VmRSS");
    t0 = clock_mono_s();
    rc = cooc_file_read(out_dir, name, &back);
    double t_read = clock_mono_s() - t0;
    if (rc < 0) {
        fprintf(stderr, "bench_pmi: cooc_file_read: %s\n", strerror(-rc));
        return 1;
    }
    printf("cooc_file_read_s %.3f\n", t_read);
    printf("peak_rss_read_delta_mib %.1f\n", proc_status_mib("VmHWM") - rss0);
    int same = back.nnz == res.nnz && !memcmp(back.col, res.col, res.nnz * 4) &&
               !memcmp(back.cooc, res.cooc, res.nnz * 4);
    printf("read_back_identical %s\n", same ? "yes" : "NO");
    if (keep)
        printf("result_file %s/%s\n", out_dir, name);
    else
        cooc_file_remove(out_dir, name);
    printf("peak_rss_process_mib %.1f\n", proc_status_mib("VmHWM"));
    cooc_result_deinit(&back);
    cooc_result_deinit(&res);
    free(off);
    free(items);
    return same ? 0 : 1;
}
