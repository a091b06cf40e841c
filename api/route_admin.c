/*
 * POST /v1/admin/backup: an online backup into <state>/backups/<UTC time>/:
 * the database by VACUUM INTO (a consistent snapshot; uploads and jobs go
 * on), plus hard links to the PMI result and model files (immutable once
 * written, so a link is a safe, instant copy). Answers 200 with the
 * directory relative to the state dir once it is complete, then deletes
 * the oldest backups beyond backup.keep. One backup runs at a time (409
 * otherwise). Replies never carry absolute paths or SQLite's messages:
 * those go to the log. The work runs on the libuv pool; the request and
 * the running flag belong to the loop thread. Needs a read-write token
 * when auth is on.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "base/clock.h"
#include "conf/app.h"
#include "jobs/jobs.h"
#include "base/log.h"
#include "storage/store.h"

struct backup {
    uv_work_t work;
    struct api_req *req;
    char state_dir[1024];
    char name[40]; /* <UTC time>: backups/<name> */
    char dir[1200];
    int64_t keep; /* backup.keep when the request came */
    int rc;
    int files;
    int removed; /* old backups deleted by retention */
    double seconds;
    long long bytes;
    char error[256];
};

static int backup_running; /* loop thread */

/* Whether name is one of our backup directory names,
 * "YYYY-MM-DDTHH-MM-SS.mmmZ" (so retention never touches anything else a
 * user put into backups/). */
static int backup_name_ok(const char *name)
{
    static const char shape[] = "dddd-dd-ddTdd-dd-dd.dddZ";
    if (strlen(name) != sizeof shape - 1)
        return 0;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? (name[i] < '0' || name[i] > '9') : name[i] != shape[i])
            return 0;
    return 1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Deletes a backup directory (its database, pmi/ and models/ links). */
static int rm_tree(const char *dir)
{
    return nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -errno;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Retention: keeps the b->keep newest backups (names sort by time). */
static void backup_prune(struct backup *b)
{
    char base[1100];
    snprintf(base, sizeof base, "%s/backups", b->state_dir);
    DIR *d = opendir(base);
    if (!d || b->keep <= 0) {
        if (d)
            closedir(d);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!backup_name_ok(e->d_name))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn)
                break;
            names = nn;
            cap = nc;
        }
        if ((names[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    closedir(d);
    if (names)
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i + (size_t)b->keep < n; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", base, names[i]);
        int rc = rm_tree(path);
        if (rc == 0)
            b->removed++;
        else
            log_error("backup: retention cannot delete backups/%s: %s", names[i], strerror(-rc));
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Links every regular file of <state>/<sub> into <dir>/<sub>. */
static int link_files(struct backup *b, const char *sub)
{
    char src[1300], dst[1300];
    snprintf(src, sizeof src, "%s/%s", b->state_dir, sub);
    snprintf(dst, sizeof dst, "%s/%s", b->dir, sub);
    DIR *d = opendir(src);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    if (mkdir(dst, 0700) != 0 && errno != EEXIST) {
        closedir(d);
        return -errno;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') /* also skips temp files of writes in progress */
            continue;
        char a[1600], z[1600];
        snprintf(a, sizeof a, "%s/%s", src, e->d_name);
        snprintf(z, sizeof z, "%s/%s", dst, e->d_name);
        if (link(a, z) != 0)
            rc = -errno;
        else
            b->files++;
    }
    closedir(d);
    return rc;
}

static void backup_work(uv_work_t *w)
{
    struct backup *b = (struct backup *)w;
    double t0 = clock_mono_s();
    struct store_error err;
    struct store *s = store_open(b->state_dir, &err);
    if (!s) {
        b->rc = -EIO;
        snprintf(b->error, sizeof b->error, "%s", err.message);
        return;
    }
    char db[1300];
    snprintf(db, sizeof db, "%s/itemvec.db", b->dir);
    b->rc = store_backup(s, db);
    if (b->rc != 0)
        snprintf(b->error, sizeof b->error, "%s", store_errmsg(s));
    store_close(s);
    if (b->rc == 0)
        b->rc = link_files(b, "pmi");
    if (b->rc == 0)
        b->rc = link_files(b, "models");
    struct stat st;
    if (b->rc == 0 && stat(db, &st) == 0)
        b->bytes = (long long)st.st_size;
    if (b->rc == 0)
        backup_prune(b);
    else
        rm_tree(b->dir); /* no half backup that looks complete */
    b->seconds = clock_mono_s() - t0;
}

static void backup_done(uv_work_t *w, int status)
{
    struct backup *b = (struct backup *)w;
    struct api_req *req = b->req;
    backup_running = 0;
    if (b->rc != 0) {
        /* the full story (paths, SQLite's text) for the operator only */
        log_error("backup to %s failed rid=%s: %s %s", b->dir, req->request_id, strerror(-b->rc),
                  b->error);
        api_reply_problem(req, 500, "backup-failed", "Internal Server Error", NULL,
                          "the backup failed (%s); the server log has the details under "
                          "request id %s",
                          strerror(-b->rc), req->request_id);
    } else {
        log_info("backup: %s (%lld bytes database, %d result files) in %.2fs; %d old backup(s) "
                 "deleted (backup.keep = %lld)",
                 b->dir, b->bytes, b->files, b->seconds, b->removed, (long long)b->keep);
        char rel[64];
        snprintf(rel, sizeof rel, "backups/%s", b->name);
        api_reply_json(req, 200,
                       json_pack("{s:s,s:I,s:i,s:f,s:i}", "path", rel, "database_bytes",
                                 (json_int_t)b->bytes, "files", b->files, "seconds", b->seconds,
                                 "removed", b->removed));
    }
    api_req_resume(req);
}

void api_admin_backup(struct api_req *req)
{
    if (backup_running) {
        api_add_header(req, "Retry-After", "5");
        api_reply_problem(req, 409, "backup-running", "Conflict", NULL,
                          "a backup is already running; retry when it is done");
        return;
    }
    struct backup *b = calloc(1, sizeof *b);
    if (!b) {
        api_reply_oom(req);
        return;
    }
    b->req = req;
    req->state = b;
    req->state_destroy = free;
    b->keep = req->app->cfg.backup_keep;
    snprintf(b->state_dir, sizeof b->state_dir, "%s", req->app->cfg.state_dir);
    jobs_format_time(jobs_now_ms(), b->name, sizeof b->name);
    for (char *p = b->name; *p; p++)
        if (*p == ':')
            *p = '-';
    char base[1100];
    snprintf(base, sizeof base, "%s/backups", b->state_dir);
    mkdir(base, 0700);
    snprintf(b->dir, sizeof b->dir, "%s/%s", base, b->name);
    if (mkdir(b->dir, 0700) != 0) {
        int e = errno;
        log_error("backup: cannot create %s rid=%s: %s", b->dir, req->request_id, strerror(e));
        api_reply_problem(req, e == EEXIST ? 409 : 500, "backup-failed",
                          e == EEXIST ? "Conflict" : "Internal Server Error", NULL,
                          "cannot create the backup directory backups/%s: %s", b->name,
                          strerror(e));
        return;
    }
    if (uv_queue_work(req->app->loop, &b->work, backup_work, backup_done) != 0) {
        rmdir(b->dir);
        api_reply_problem(req, 500, "backup-failed", "Internal Server Error", NULL,
                          "cannot queue the backup");
        return;
    }
    backup_running = 1;
    api_req_suspend(req);
}
