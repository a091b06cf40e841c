/*
 * Token file loader (see tokens.h).
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
        tokens_clear(t);
    return rc;
}

void tokens_clear(struct tokens *t)
{
    free(t->rw);
    free(t->ro);
    t->rw = t->ro = NULL;
}
