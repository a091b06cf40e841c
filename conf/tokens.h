/*
 * Bearer tokens from a file (auth.token_file): one token per line, "ro:"
 * before a read-only one, '#' comments and blank lines ignored. A relative
 * name is looked up in $CREDENTIALS_DIRECTORY (systemd LoadCredential=),
 * so tokens need not sit in the world-readable config.
 *
 * Auth fails closed: tokens_validate refuses a token file that holds no
 * token and a non-loopback listen address without a loaded token, so a
 * truncated or commented-out file can never open /v1 by accident.
 * Loop thread (start and SIGHUP reload) only.
 */
#ifndef ITEMVEC_CONF_TOKENS_H
#define ITEMVEC_CONF_TOKENS_H

#include <stddef.h>

struct config;
struct config_error;

struct tokens {
    char *rw; /* comma-separated, owned */
    char *ro;
};

/* Loads path into t (caller frees with tokens_deinit). A line longer than
 * 4095 bytes or holding a space or comma is an error, never split or
 * truncated. Returns 0 or -EINVAL with err naming auth.token_file and the
 * problem. */
int tokens_load_file(const char *path, struct tokens *t, struct config_error *err);
void tokens_deinit(struct tokens *t);

/* Number of non-empty entries in a comma-separated token list (spaces
 * around entries ignored, as the request check does); 0 for NULL. */
size_t tokens_list_count(const char *list);

/* Tokens loaded in total: auth.tokens, auth.read_tokens and the file's. */
size_t tokens_loaded(const struct config *c, const struct tokens *file_tokens);

/* The fail-closed rules, checked at start (exit 2) and on reload (the old
 * tokens stay): a configured auth.token_file must hold at least one token,
 * and a non-loopback server.listen needs a loaded token unless
 * auth.allow_insecure_listen is true. $CREDENTIALS_DIRECTORY being set
 * does not count as a token. Returns 0 or -EINVAL with err filled. */
int tokens_validate(const struct config *c, const struct tokens *file_tokens,
                    struct config_error *err);

#endif
