/*
 * Bearer tokens from a file (auth.token_file): one token per line, "ro:"
 * before a read-only one, '#' comments and blank lines ignored. A relative
 * name is looked up in $CREDENTIALS_DIRECTORY (systemd LoadCredential=),
 * so tokens need not sit in the world-readable config.
 */
#ifndef ITEMVEC_CONF_TOKENS_H
#define ITEMVEC_CONF_TOKENS_H

struct config_error;

struct tokens {
    char *rw; /* comma-separated, owned */
    char *ro;
};

/* Loads path into t (caller frees with tokens_clear). Returns 0 or
 * -EINVAL with err naming auth.token_file and the problem. */
int tokens_load_file(const char *path, struct tokens *t, struct config_error *err);
void tokens_clear(struct tokens *t);

#endif
