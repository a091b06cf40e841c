/*
 * POST /v1/admin/backup: an online backup into <state>/backups/<UTC time>/:
 * the database by VACUUM INTO (a consistent snapshot; uploads and jobs go
 * on), plus hard links to the PMI result and model files (immutable once
 * written, so a link is a safe, instant copy). Answers 200 with the
 * directory once it is complete. Needs a read-write token when auth is on.
 */
#include <dirent.h>
#include <errno.h>
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
    char dir[1200];
    int rc;
    int files;
    double seconds;
    long long bytes;
    char error[256];
};

/* Links every regular file of <state>/<sub> into <dir>/<sub>. */
static int link_files(struct backup *b, const char *sub)
{
    char src[1300], dst[1300];
    snprintf(src, sizeof src, "%s/%s", b->state_dir, sub);
    snprintf(dst, sizeof dst, "%s/%s", b->dir, sub);
    DIR *d = opendir(src);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    if (mkdir(dst, 0750) != 0 && errno != EEXIST) {
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
    b->seconds = clock_mono_s() - t0;
}

static void backup_done(uv_work_t *w, int status)
{
    struct backup *b = (struct backup *)w;
    struct api_req *req = b->req;
    if (b->rc != 0) {
        log_error("backup to %s failed: %s %s", b->dir, strerror(-b->rc), b->error);
        api_reply_problem(req, 500, "backup-failed", "Internal Server Error", NULL,
                          "backup to %s failed: %s %s", b->dir, strerror(-b->rc), b->error);
    } else {
        log_info("backup: %s (%lld bytes database, %d result files) in %.2fs", b->dir, b->bytes,
                 b->files, b->seconds);
        api_reply_json(req, 200,
                       json_pack("{s:s,s:I,s:i,s:f}", "path", b->dir, "database_bytes",
                                 (json_int_t)b->bytes, "files", b->files, "seconds",
                                 b->seconds));
    }
    api_req_resume(req);
}

void api_admin_backup(struct api_req *req)
{
    struct backup *b = calloc(1, sizeof *b);
    if (!b) {
        api_reply_oom(req);
        return;
    }
    b->req = req;
    req->state = b;
    req->state_free = free;
    snprintf(b->state_dir, sizeof b->state_dir, "%s", req->app->cfg.state_dir);
    char when[40], base[1100];
    jobs_format_time(jobs_now_ms(), when, sizeof when);
    for (char *p = when; *p; p++)
        if (*p == ':')
            *p = '-';
    snprintf(base, sizeof base, "%s/backups", b->state_dir);
    mkdir(base, 0750);
    snprintf(b->dir, sizeof b->dir, "%s/%s", base, when);
    if (mkdir(b->dir, 0750) != 0) {
        api_reply_problem(req, errno == EEXIST ? 409 : 500, "backup-failed",
                          errno == EEXIST ? "Conflict" : "Internal Server Error", NULL,
                          "cannot create %s: %s", b->dir, strerror(errno));
        return;
    }
    if (uv_queue_work(req->app->loop, &b->work, backup_work, backup_done) != 0) {
        api_reply_problem(req, 500, "backup-failed", "Internal Server Error", NULL,
                          "cannot queue the backup");
        return;
    }
    api_req_suspend(req);
}
