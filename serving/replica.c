/*
 * Read replicas (see replica.h). Loop-thread state in struct replica; a
 * sync record (struct sync) goes to the pool for each poll or download
 * and comes back to the loop, which alone parses JSON, updates the status
 * and installs models.
 */
#include "serving/replica.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/thread.h"
#include "conf/app.h"
#include "serving/ann_index.h"
#include "serving/serving.h"
#include "storage/file_util.h"
#include "storage/model_file.h"
#include "storage/store.h"

#define POLL_MS 1000
#define NAMES_MAGIC "IVNAMES1"

struct replica {
    struct app *app;
    char url[512];
    char auth[600]; /* "Authorization: Bearer ..." or "" */
    char dir[1100]; /* <state>/replica */
    uv_timer_t timer;
    int busy, stopped;
    atomic_int abort; /* read by transfers in flight */
    char etag[128];
    char model[40];
    double last_ok; /* clock_mono_s of the last confirmation, 0: never */
    uint64_t syncs, failures;
    char last_error[160];
    struct serving_build_opts opts; /* the replica's own serving settings */
};

/* One poll or download, owned by whoever holds it (pool, then loop). */
struct sync {
    uv_work_t work;
    struct replica *r;
    int fetch; /* 0: poll /active; 1: download and build */
    /* poll */
    long status;
    char etag[128];
    char *body;
    size_t body_len;
    /* fetch */
    char model[40];
    uint32_t crc;
    int with_ann;
    struct serving_build_opts opts;
    struct served_model *built;
    int rc;
    char error[160];
};

static struct replica *replica_of(struct app *app)
{
    return app->replica;
}

/* ---- HTTP (pool thread) ---- */

struct membuf {
    char *p;
    size_t len;
    size_t max;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct membuf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > b->max)
        return 0; /* too big: abort */
    char *p = realloc(b->p, b->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, data, n);
    b->p = p;
    b->len += n;
    p[b->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct sync *s = ud;
    size_t n = size * nmemb;
    if (n > 6 && strncasecmp(data, "ETag:", 5) == 0) {
        const char *v = data + 5;
        while (*v == ' ')
            v++;
        size_t l = n - (size_t)(v - data);
        while (l && (v[l - 1] == '\r' || v[l - 1] == '\n'))
            l--;
        if (l < sizeof s->etag) {
            memcpy(s->etag, v, l);
            s->etag[l] = '\0';
        }
    }
    return n;
}

static int on_xfer(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct replica *r = ud;
    return atomic_load(&r->abort);
}

/* GET base+path into a buffer (max bytes) or a file (fp); fills status. */
static int http_get(struct sync *s, const char *path, const char *if_none_match, struct membuf *mb,
                    FILE *fp, long *status)
{
    char url[1200], inm[200];
    CURL *c = curl_easy_init();
    if (!c)
        return -ENOMEM;
    struct curl_slist *h = NULL;
    if (s->r->auth[0])
        h = curl_slist_append(h, s->r->auth);
    if (if_none_match && *if_none_match) {
        snprintf(inm, sizeof inm, "If-None-Match: %s", if_none_match);
        h = curl_slist_append(h, inm);
    }
    snprintf(url, sizeof url, "%s%s", s->r->url, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* a stalled primary: give up */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 10L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s->r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
    if (fp) {
        curl_easy_setopt(c, CURLOPT_WRITEDATA, fp); /* libcurl's default fwrite */
    } else {
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, mb);
    }
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (cc != CURLE_OK)
        snprintf(s->error, sizeof s->error, "GET %s: %s", path, curl_easy_strerror(cc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return cc == CURLE_OK ? 0 : -EIO;
}

/* Downloads part of the active model to dir/name (via a temporary). */
static int download(struct sync *s, const char *part, const char *name)
{
    char path[1300], tmp[1400], url[200];
    long status = 0;
    snprintf(path, sizeof path, "%s/%s", s->r->dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.part", s->r->dir, name);
    snprintf(url, sizeof url, "/v1/replication/files/%s?model=%s", part, s->model);
    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        return -errno;
    int rc = http_get(s, url, NULL, NULL, fp, &status);
    if (fclose(fp) != 0 && rc == 0)
        rc = -EIO;
    if (rc == 0 && status != 200) {
        snprintf(s->error, sizeof s->error, "GET %.100s: HTTP %ld", url, status);
        rc = -EIO;
    }
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* ---- names blob ---- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned char *put_str(unsigned char *p, const char *s)
{
    size_t l = s ? strlen(s) : 0xFFFF;
    if (s && l >= 0xFFFF)
        l = 0xFFFE; /* ids are at most 256 bytes; titles are cut, not refused */
    p[0] = (unsigned char)l;
    p[1] = (unsigned char)(l >> 8);
    if (s)
        memcpy(p + 2, s, l);
    return p + 2 + (s ? l : 0);
}

int replica_names_encode(const struct served_model *m, unsigned char **out, size_t *len)
{
    size_t n = 12 + 4;
    for (uint32_t i = 0; i < m->data.n; i++)
        n += 4 + 6 + strlen(m->ids[i]) + (m->titles[i] ? strlen(m->titles[i]) : 0) +
             (m->artists[i] ? strlen(m->artists[i]) : 0);
    unsigned char *b = malloc(n), *p = b;
    if (!b)
        return -ENOMEM;
    memcpy(p, NAMES_MAGIC, 8);
    put32(p + 8, m->data.n);
    p += 12;
    for (uint32_t i = 0; i < m->data.n; i++) {
        put32(p, m->data.keys[i]);
        p = put_str(p + 4, m->ids[i]);
        p = put_str(p, m->titles[i]);
        p = put_str(p, m->artists[i]);
    }
    put32(p, file_crc32(0, b, (size_t)(p - b)));
    *out = b;
    *len = (size_t)(p - b) + 4;
    return 0;
}

/* Decodes one string at *p (bounded by end) into the strings block. */
static int get_str(const unsigned char **p, const unsigned char *end, char **blk, char **out)
{
    if (end - *p < 2)
        return -EBADMSG;
    size_t l = (size_t)(*p)[0] | (size_t)(*p)[1] << 8;
    *p += 2;
    if (l == 0xFFFF) {
        *out = NULL;
        return 0;
    }
    if ((size_t)(end - *p) < l)
        return -EBADMSG;
    memcpy(*blk, *p, l);
    (*blk)[l] = '\0';
    *out = *blk;
    *blk += l + 1;
    *p += l;
    return 0;
}

static int names_decode(const unsigned char *b, size_t len, struct store_item_names *out)
{
    memset(out, 0, sizeof *out);
    if (len < 16 || memcmp(b, NAMES_MAGIC, 8) != 0 ||
        get32(b + len - 4) != file_crc32(0, b, len - 4))
        return -EBADMSG;
    uint32_t n = get32(b + 8), max_key = 0;
    const unsigned char *p = b + 12, *end = b + len - 4;
    for (const unsigned char *q = p; q + 4 <= end && n;) { /* pass 1: the largest key */
        uint32_t k = get32(q);
        max_key = k > max_key ? k : max_key;
        q += 4;
        for (int s = 0; s < 3 && q + 2 <= end; s++) {
            size_t l = (size_t)q[0] | (size_t)q[1] << 8;
            q += 2 + (l == 0xFFFF ? 0 : l);
        }
    }
    out->max_key = max_key;
    out->id = calloc((size_t)max_key + 1, sizeof(char *));
    out->title = calloc((size_t)max_key + 1, sizeof(char *));
    out->artist = calloc((size_t)max_key + 1, sizeof(char *));
    out->strings = malloc(len + 3 * (size_t)n + 1);
    if (!out->id || !out->title || !out->artist || !out->strings) {
        store_item_names_deinit(out);
        return -ENOMEM;
    }
    char *blk = out->strings;
    for (uint32_t i = 0; i < n; i++) {
        if (end - p < 4)
            goto bad;
        uint32_t k = get32(p);
        p += 4;
        if (k > max_key || get_str(&p, end, &blk, &out->id[k]) != 0 ||
            get_str(&p, end, &blk, &out->title[k]) != 0 ||
            get_str(&p, end, &blk, &out->artist[k]) != 0 || !out->id[k])
            goto bad;
    }
    if (p == end)
        return 0;
bad:
    store_item_names_deinit(out);
    return -EBADMSG;
}

/* ---- the fetch (pool thread) ---- */

static int read_file(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    struct stat st;
    int rc = fstat(fileno(f), &st) == 0 ? 0 : -errno;
    *out = rc == 0 ? malloc((size_t)st.st_size + 1) : NULL;
    if (rc == 0 && !*out)
        rc = -ENOMEM;
    if (rc == 0 && fread(*out, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        rc = -EIO;
    *len = rc == 0 ? (size_t)st.st_size : 0;
    fclose(f);
    return rc;
}

static int fetch_run(struct sync *s)
{
    char file[64], names_file[64], path[1300];
    struct model_data data = {0};
    struct store_item_names names = {0};
    unsigned char *blob = NULL;
    size_t blen = 0;
    int rc;
    snprintf(file, sizeof file, "%s.emb", s->model);
    snprintf(names_file, sizeof names_file, "%s.names", s->model);
    if ((rc = download(s, "model", file)) != 0 || (rc = download(s, "names", names_file)) != 0)
        goto out;
    for (int part = 0; s->with_ann && part < ANN_INDEX_PARTS; part++) {
        char name[80];
        snprintf(name, sizeof name, "%s%s", file, ann_index_suffixes[part]);
        if ((rc = download(s, ann_index_suffixes[part] + 1, name)) != 0)
            goto out;
    }
    /* checksums: the model file's own, the announced one, the names
     * trailer, the index manifest against this model */
    if ((rc = model_file_read(s->r->dir, file, &data)) != 0 || data.crc != s->crc) {
        snprintf(s->error, sizeof s->error, "model %s: checksum mismatch", s->model);
        rc = rc ? rc : -EBADMSG;
        goto out;
    }
    snprintf(path, sizeof path, "%s/%s", s->r->dir, names_file);
    if ((rc = read_file(path, &blob, &blen)) != 0 || (rc = names_decode(blob, blen, &names)) != 0) {
        snprintf(s->error, sizeof s->error, "names of %s: bad blob", s->model);
        goto out;
    }
    if (s->with_ann && (rc = ann_index_verify(s->r->dir, file, data.crc)) != 0) {
        snprintf(s->error, sizeof s->error, "ANN index of %s: checksum mismatch", s->model);
        goto out;
    }
    s->opts.mode = s->with_ann ? SERVING_INDEX_ANN : SERVING_INDEX_EXACT;
    s->opts.models_dir = s->r->dir;
    s->opts.file = file;
    rc = serving_model_build_names(&names, s->model, "", &data, &s->opts, &s->built);
    if (rc != 0)
        snprintf(s->error, sizeof s->error, "model %s: cannot build: %s", s->model, strerror(-rc));
out:
    model_data_deinit(&data);
    store_item_names_deinit(&names);
    free(blob);
    return rc;
}

static void sync_work(uv_work_t *w)
{
    struct sync *s = (struct sync *)w;
    if (s->fetch) {
        s->rc = fetch_run(s);
        return;
    }
    struct membuf mb = {NULL, 0, 1 << 20};
    s->rc = http_get(s, "/v1/replication/active", s->r->etag, &mb, NULL, &s->status);
    s->body = mb.p;
    s->body_len = mb.len;
}

/* ---- the loop side ---- */

static void fail(struct replica *r, const char *why)
{
    r->failures++;
    if (strcmp(r->last_error, why) != 0)
        log_warn("replica: %s (serving %s)", why, r->model[0] ? r->model : "nothing yet");
    snprintf(r->last_error, sizeof r->last_error, "%s", why);
}

static void sync_done(uv_work_t *w, int status);

static int queue(struct replica *r, struct sync *s)
{
    if (uv_queue_work(r->app->loop, &s->work, sync_work, sync_done) != 0) {
        served_model_unref(s->built);
        free(s->body);
        free(s);
        r->busy = 0;
        return -EIO;
    }
    return 0;
}

/* A 200 from /active: fetch when the model changed. */
static void on_active(struct replica *r, struct sync *s)
{
    json_t *j = json_loadb(s->body ? s->body : "", s->body_len, 0, NULL);
    const char *model = json_string_value(json_object_get(j, "model"));
    json_int_t crc = json_integer_value(json_object_get(j, "crc"));
    int ann = json_is_true(json_object_get(j, "ann"));
    if (!model || strlen(model) >= sizeof s->model ||
        strspn(model, "m0123456789") != strlen(model)) {
        fail(r, "primary sent a bad /v1/replication/active");
        json_decref(j);
        r->busy = 0;
        return;
    }
    if (strcmp(model, r->model) == 0) { /* same model, new ETag (e.g. index appeared) */
        snprintf(r->etag, sizeof r->etag, "%s", s->etag);
        r->last_ok = clock_mono_s();
        r->busy = 0;
        json_decref(j);
        return;
    }
    struct sync *f = calloc(1, sizeof *f);
    if (!f) {
        json_decref(j);
        r->busy = 0;
        return;
    }
    f->r = r;
    f->fetch = 1;
    snprintf(f->model, sizeof f->model, "%s", model);
    snprintf(f->etag, sizeof f->etag, "%s", s->etag);
    f->crc = (uint32_t)crc;
    f->with_ann = ann;
    f->opts = r->opts;
    json_decref(j);
    log_info("replica: primary serves %s, downloading%s", f->model,
             ann ? " with its ANN index" : "");
    queue(r, f);
}

/* Drops the mirrored files of models other than the one just installed
 * (the previous model's may still be in memory, but never read again). */
static void prune(struct replica *r)
{
    char prefix[48], path[1400];
    snprintf(prefix, sizeof prefix, "%s.", r->model);
    DIR *d = opendir(r->dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
}

static void sync_done(uv_work_t *w, int status)
{
    struct sync *s = (struct sync *)w;
    struct replica *r = s->r;
    ASSERT_LOOP_THREAD();
    int again = 0;
    if (r->stopped) {
        /* shutting down: drop the result */
    } else if (s->fetch) {
        if (s->rc == 0 && s->built) {
            snprintf(r->model, sizeof r->model, "%s", s->model);
            snprintf(r->etag, sizeof r->etag, "%s", s->etag);
            r->last_ok = clock_mono_s();
            r->syncs++;
            r->last_error[0] = '\0';
            serving_install_active(r->app, s->built); /* reference taken: the atomic swap */
            s->built = NULL;
            prune(r);
        } else {
            fail(r, s->error[0] ? s->error : strerror(-s->rc));
        }
    } else if (s->rc != 0) {
        fail(r, s->error[0] ? s->error : "primary unreachable");
    } else if (s->status == 304) {
        r->last_ok = clock_mono_s();
        r->last_error[0] = '\0';
    } else if (s->status == 200) {
        on_active(r, s);
        again = r->busy; /* a fetch was queued: stay busy */
    } else {
        char why[64];
        snprintf(why, sizeof why, "primary answered HTTP %ld", s->status);
        fail(r, why);
    }
    if (!again)
        r->busy = 0;
    served_model_unref(s->built);
    free(s->body);
    free(s);
}

static void on_tick(uv_timer_t *t)
{
    struct replica *r = t->data;
    if (r->busy || r->stopped)
        return;
    struct sync *s = calloc(1, sizeof *s);
    if (!s)
        return;
    s->r = r;
    r->busy = 1;
    queue(r, s);
}

static int read_token(const char *path, char *auth, size_t size)
{
    char tok[512] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return -EINVAL;
    int ok = fgets(tok, sizeof tok, f) != NULL;
    fclose(f);
    tok[strcspn(tok, "\r\n")] = '\0';
    if (!ok || !tok[0])
        return -EINVAL;
    snprintf(auth, size, "Authorization: Bearer %s", tok);
    return 0;
}

int replica_start(struct app *app, const char *url, const char *token_file)
{
    ASSERT_LOOP_THREAD();
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return -EINVAL;
    struct replica *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->app = app;
    snprintf(r->url, sizeof r->url, "%s", url);
    size_t l = strlen(r->url);
    while (l && r->url[l - 1] == '/')
        r->url[--l] = '\0';
    if (token_file && read_token(token_file, r->auth, sizeof r->auth) != 0) {
        free(r);
        return -EINVAL;
    }
    snprintf(r->dir, sizeof r->dir, "%s/replica", app->cfg.state_dir);
    mkdir(r->dir, 0750);
    serving_build_opts_init(app, &r->opts);
    r->opts.precompute = 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_timer_init(app->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_tick, 0, POLL_MS);
    app->replica = r;
    log_info("replica: mirroring %s (read-only)", r->url);
    return 0;
}

void replica_stop(struct app *app)
{
    struct replica *r = replica_of(app);
    if (!r || r->stopped)
        return;
    r->stopped = 1;
    atomic_store(&r->abort, 1);
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, NULL);
}

void replica_destroy(struct app *app)
{
    struct replica *r = replica_of(app);
    if (!r)
        return;
    free(r);
    app->replica = NULL;
    curl_global_cleanup();
}

int replica_status_get(struct app *app, struct replica_status *out)
{
    struct replica *r = replica_of(app);
    if (!r)
        return -ENOENT;
    *out = (struct replica_status){
        .of = r->url,
        .model = r->model,
        .lag_seconds = r->last_ok > 0 ? clock_mono_s() - r->last_ok : -1,
        .syncs = r->syncs,
        .failures = r->failures,
        .last_error = r->last_error,
    };
    return 0;
}
