/*
 * Test tool for tests/hostile/test_hash_flood.py: prints N item ids, one a
 * line, that all share one slot of the upload batch's id table under the
 * FIXED hash itemvecd used before keyed hashing (storage/batch.c before
 * a901550: an 8-byte id's slot was murmur3's fmix64 of its bytes xor
 * len << 56, masked). fmix64 is invertible, so ids are made by inverting
 * it from values whose low 20 bits are zero (one slot for every table of
 * up to 2^20 slots) and keeping the results whose 8 bytes are all
 * printable and harmless in TSV, CSV and JSON. With --random, N ids of the
 * same length and alphabet without the property: the control.
 *
 * usage: flood_ids N [--random] [seed]
 * Deterministic for a given seed. Single-threaded, no I/O but stdout.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Inverse of an odd number modulo 2^64 (Newton: each step doubles the
 * correct low bits). */
static uint64_t inverse(uint64_t a)
{
    uint64_t x = a;
    for (int i = 0; i < 6; i++)
        x *= 2 - a * x;
    return x;
}

static uint64_t fmix64_inverse(uint64_t h, uint64_t inv1, uint64_t inv2)
{
    h ^= h >> 33;
    h *= inv2;
    h ^= h >> 33;
    h *= inv1;
    h ^= h >> 33;
    return h;
}

/* Printable, no space (ids are trimmed), no quote, backslash, comma, and
 * not starting with a sign or 0 (a non-positive integer id is skipped). */
static int ok_byte(unsigned c, int first)
{
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\' || c == ',')
        return 0;
    return !(first && (c == '-' || c == '+' || c == '0'));
}

static const char alphabet[] =
    "!#$%&'()*./123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~";

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    int random_ids = argc > 2 && strcmp(argv[2], "--random") == 0;
    const char *seed = argc > 2 + random_ids ? argv[2 + random_ids] : "1";
    const uint64_t inv1 = inverse(UINT64_C(0xff51afd7ed558ccd));
    const uint64_t inv2 = inverse(UINT64_C(0xc4ceb9fe1a85ec53));
    char id[9];

    if (n <= 0) {
        fprintf(stderr, "usage: flood_ids N [--random] [seed]\n");
        return 2;
    }
    rng_state = strtoull(seed, NULL, 10);
    id[8] = '\0';
    while (n > 0) {
        uint64_t w;
        int good = 1;

        if (random_ids) {
            for (int k = 0; k < 8; k++)
                id[k] = alphabet[rng() % (sizeof alphabet - 1)];
        } else {
            w = fmix64_inverse(rng() << 20, inv1, inv2) ^ ((uint64_t)8 << 56);
            memcpy(id, &w, 8); /* little-endian, as the old hash read it */
        }
        for (int k = 0; k < 8 && good; k++)
            good = ok_byte((unsigned char)id[k], k == 0);
        if (!good)
            continue;
        puts(id);
        n--;
    }
    return 0;
}
