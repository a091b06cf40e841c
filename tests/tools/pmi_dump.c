/*
 * pmi_dump: test-only CLI around cooc_compute, used by
 * tests/oracle/test_pmi_oracle.py to compare the kernel with the seed's SQL
 * run in SQLite.
 *
 *   pmi_dump [--min-item-frequency N] [--max-group-size N] [--threads N]
 *            [--via-file DIR] [--summary-only] GROUPS_FILE
 *
 * GROUPS_FILE: one group per line; a line holds the group's item keys as
 * decimal integers in 1..4294967295 separated by spaces or tabs (any
 * order; repeats are collapsed, as memberships are sets). An empty line is
 * a group with no items. "-" reads standard input.
 *
 * Output (stdout), first the result fields, one "name value" a line:
 *   valid_items, valid_groups, total, cooc_rows, matrix_items, pairs
 * then a line "--" and every row of the seed's final item_cooc table as
 *   item1_key item2_key cooc pmi        (pmi printed with %.17g)
 * ordered by item1_key, then item2_key. With --via-file DIR the result is
 * written with cooc_file_write to DIR/pmi_dump.cooc and read back with
 * cooc_file_read before printing (so the oracle also covers the file).
 * Exit status: 0 ok, 1 error (message on stderr), 2 usage.
 */
#include "ml/cooc.h"
#include "storage/cooc_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0, r;
    char *buf = malloc(cap + 1);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, (cap *= 2) + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    if (f != stdin)
        fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

static int usage(void)
{
    fprintf(stderr, "usage: pmi_dump [--min-item-frequency N] [--max-group-size N] "
                    "[--threads N] [--via-file DIR] [--summary-only] GROUPS_FILE\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct cooc_params params;
    struct cooc_result res = {0};
    const char *path = NULL, *via = NULL;
    int summary_only = 0, rc = 1;
    char *text = NULL;
    uint64_t *offsets = NULL;
    uint32_t *items = NULL;

    cooc_params_init(&params);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--min-item-frequency") && i + 1 < argc)
            params.min_item_frequency = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--max-group-size") && i + 1 < argc)
            params.max_group_size = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            params.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--via-file") && i + 1 < argc)
            via = argv[++i];
        else if (!strcmp(argv[i], "--summary-only"))
            summary_only = 1;
        else if (argv[i][0] == '-' && argv[i][1] && !path)
            return usage();
        else if (!path)
            path = argv[i];
        else
            return usage();
    }
    if (!path)
        return usage();

    size_t len;
    text = slurp(path, &len);
    if (!text) {
        fprintf(stderr, "pmi_dump: %s: %s\n", path, strerror(errno));
        goto out;
    }
    /* Upper bounds: a group per line, an item per two characters. */
    size_t lines = 1, cap_items = len / 2 + 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    offsets = malloc((lines + 1) * sizeof(*offsets));
    items = malloc(cap_items * sizeof(*items));
    if (!offsets || !items) {
        fprintf(stderr, "pmi_dump: out of memory\n");
        goto out;
    }
    size_t n_groups = 0, n_items = 0;
    uint32_t max_key = 0;
    const char *p = text, *end = text + len;
    offsets[0] = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        size_t start = n_items;
        while (p < eol) {
            if (*p == ' ' || *p == '\t' || *p == '\r') {
                p++;
                continue;
            }
            unsigned long long v = 0;
            const char *q = p;
            while (q < eol && *q >= '0' && *q <= '9' && v <= UINT32_MAX)
                v = v * 10 + (unsigned)(*q++ - '0');
            if (q == p || v == 0 || v > UINT32_MAX ||
                (q < eol && *q != ' ' && *q != '\t' && *q != '\r')) {
                fprintf(stderr, "pmi_dump: %s:%zu: bad item key\n", path, n_groups + 1);
                goto out;
            }
            items[n_items++] = (uint32_t)v;
            if (v > max_key)
                max_key = (uint32_t)v;
            p = q;
        }
        qsort(items + start, n_items - start, sizeof(*items), cmp_u32);
        size_t w = start;
        for (size_t k = start; k < n_items; k++)
            if (w == start || items[k] != items[w - 1])
                items[w++] = items[k];
        n_items = w;
        offsets[++n_groups] = n_items;
        p = eol + 1;
    }

    struct cooc_groups groups = {
        .n_groups = n_groups, .offsets = offsets, .items = items, .max_item_key = max_key};
    int err = cooc_compute(&groups, &params, NULL, NULL, &res);
    if (err < 0) {
        fprintf(stderr, "pmi_dump: cooc_compute: %s\n", strerror(-err));
        goto out;
    }
    if (via) {
        if ((err = cooc_file_write(via, "pmi_dump.cooc", &res)) < 0) {
            fprintf(stderr, "pmi_dump: cooc_file_write: %s\n", strerror(-err));
            goto out;
        }
        cooc_result_deinit(&res);
        if ((err = cooc_file_read(via, "pmi_dump.cooc", &res)) < 0) {
            fprintf(stderr, "pmi_dump: cooc_file_read: %s\n", strerror(-err));
            goto out;
        }
    }
    printf("valid_items %llu\n", (unsigned long long)res.valid_items);
    printf("valid_groups %llu\n", (unsigned long long)res.valid_groups);
    printf("total %llu\n", (unsigned long long)res.total);
    printf("cooc_rows %llu\n", (unsigned long long)res.nnz);
    printf("matrix_items %u\n", res.n);
    printf("pairs %llu\n", (unsigned long long)cooc_result_pairs(&res));
    printf("--\n");
    if (!summary_only) {
        for (uint32_t i = 0; i < res.n; i++)
            for (uint64_t k = res.row_ptr[i]; k < res.row_ptr[i + 1]; k++)
                printf("%u %u %u %.17g\n", res.keys[i], res.keys[res.col[k]], res.cooc[k],
                       cooc_pmi(&res, i, k));
    }
    if (fflush(stdout) != 0)
        goto out;
    rc = 0;
out:
    cooc_result_deinit(&res);
    free(text);
    free(offsets);
    free(items);
    return rc;
}
