/*
 * SipHash (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012):
 * a keyed 64-bit hash for tables whose keys come from clients. With a
 * secret random key an attacker cannot compute which strings collide, so
 * a crafted upload cannot turn a hash table's probes into a linear scan
 * (hash flooding, issue 12 finding 2). Follows the reference C
 * implementation (github.com/veorq/SipHash, CC0).
 *
 * Two round counts: SipHash-2-4 is the paper's PRF; SipHash-1-3 is the
 * variant hash tables use where speed matters (Rust's HashMap, CPython's
 * str hash since 3.11): still no known way to find collisions without the
 * key. The upload batch (storage/batch.c) uses 1-3.
 *
 * No state, no allocation: callable from any thread. siphash_key_random
 * reads the kernel's random pool once per process.
 */
#ifndef ITEMVEC_BASE_SIPHASH_H
#define ITEMVEC_BASE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* A 128-bit key as two little-endian words: k0 = bytes 0..7, k1 = 8..15
 * of the key of the reference implementation. */
struct siphash_key {
    uint64_t k0, k1;
};

/* SipHash-1-3 and SipHash-2-4 of data[0..len) under key. data may be NULL
 * when len is 0. */
uint64_t siphash13(const struct siphash_key *key, const void *data, size_t len);
uint64_t siphash24(const struct siphash_key *key, const void *data, size_t len);

/* Fills *key from the per-process secret: 16 bytes from getrandom(2) read
 * on the first call (thread-safe), then a distinct key per call derived
 * from it with SipHash-2-4 over a counter, so every table gets its own key
 * without a system call each time. Returns 0, or a negative errno when the
 * kernel gave no randomness (then *key is still filled, from the clock and
 * addresses: unpredictable to a remote client only in practice). */
int siphash_key_random(struct siphash_key *key);

#endif
