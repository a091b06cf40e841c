/*
 * Token file loader and the fail-closed auth rules (see tokens.h).
 * Loop thread only; the loaded lists are owned by struct tokens.
 */
#include "conf/tokens.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"

static int append(char **list, const char *tok, size_t len)
{
    size_t old = *list ? strlen(*list) : 0;
    char *n = realloc(*list, old + len + 2);
    if (!n)
        return -ENOMEM;
    if (old)
        n[old++] = ',';
    memcpy(n + old, tok, len);
    n[old + len] = '\0';
    *list = n;
    return 0;
}

int tokens_load_file(const char *path, struct tokens *t, struct config_error *err)
{
    char full[2048];
    const char *cred = getenv("CREDENTIALS_DIRECTORY");
    memset(t, 0, sizeof *t);
    if (path[0] != '/' && cred)
        snprintf(full, sizeof full, "%s/%s", cred, path);
    else
        snprintf(full, sizeof full, "%s", path);
    FILE *f = fopen(full, "r");
    if (!f) {
        snprintf(err->message, sizeof err->message, "auth.token_file: cannot read %.300s: %s",
                 full, strerror(errno));
        return -EINVAL;
    }
    char line[4096];
    int rc = 0, lineno = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line, *e = line + strlen(line);
        int next = e > s && e[-1] != '\n' ? getc(f) : EOF;
        if (next != EOF) { /* the line did not fit: refuse rather than split it */
            snprintf(err->message, sizeof err->message,
                     "auth.token_file: line %d is longer than %zu bytes", lineno, sizeof line - 2);
            rc = -EINVAL;
            break;
        }
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        int ro = strncmp(s, "ro:", 3) == 0;
        if (ro)
            s += 3;
        if (strchr(s, ',') || strchr(s, ' ') || !*s) {
            snprintf(err->message, sizeof err->message,
                     "auth.token_file: line %d: a token must be non-empty, without spaces or "
                     "commas",
                     lineno);
            rc = -EINVAL;
            break;
        }
        rc = append(ro ? &t->ro : &t->rw, s, strlen(s));
    }
    fclose(f);
    if (rc != 0)
        tokens_deinit(t);
    return rc;
}

void tokens_deinit(struct tokens *t)
{
    free(t->rw);
    free(t->ro);
    t->rw = t->ro = NULL;
}

size_t tokens_list_count(const char *list)
{
    size_t n = 0;
    const char *p = list ? list : "";
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if (t > p)
            n++;
        p = e;
    }
    return n;
}

size_t tokens_loaded(const struct config *c, const struct tokens *ft)
{
    return tokens_list_count(c->auth_tokens) + tokens_list_count(c->auth_read_tokens) +
           tokens_list_count(ft->rw) + tokens_list_count(ft->ro);
}

int tokens_validate(const struct config *c, const struct tokens *ft, struct config_error *err)
{
    char host[256];
    int port;
    size_t n_file = tokens_list_count(ft->rw) + tokens_list_count(ft->ro);
    if (c->auth_token_file[0] && n_file == 0) {
        snprintf(err->message, sizeof err->message,
                 "auth.token_file: %.300s holds no token (only comments or blank lines)",
                 c->auth_token_file);
        return -EINVAL;
    }
    if (config_listen_split(c->listen, host, sizeof host, &port) != 0) {
        snprintf(err->message, sizeof err->message, "server.listen: must be HOST:PORT");
        return -EINVAL;
    }
    if (!config_host_is_loopback(host) && tokens_loaded(c, ft) == 0 && !c->auth_allow_insecure) {
        snprintf(err->message, sizeof err->message,
                 "server.listen: %.200s is not a loopback address and no token is loaded "
                 "(set auth.tokens or auth.token_file, or auth.allow_insecure_listen = true)",
                 host);
        return -EINVAL;
    }
    return 0;
}
