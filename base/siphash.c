/*
 * SipHash-c-d (see siphash.h), written after the reference implementation
 * (github.com/veorq/SipHash, CC0): a 256-bit state v0..v3 initialised from
 * the key, one message word at a time absorbed with c rounds, the length
 * in the last word's top byte, then d rounds of finalisation. Reads the
 * input with memcpy (any alignment, little-endian words as the spec says).
 *
 * Threading: siphash13/24 are pure. siphash_key_random initialises the
 * process secret once (pthread_once) and hands out keys with an atomic
 * counter.
 */
#include "base/siphash.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIP_ROUND                                                                                  \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = SIP_ROTL(v1, 13);                                                                     \
        v1 ^= v0;                                                                                  \
        v0 = SIP_ROTL(v0, 32);                                                                     \
        v2 += v3;                                                                                  \
        v3 = SIP_ROTL(v3, 16);                                                                     \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = SIP_ROTL(v3, 21);                                                                     \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = SIP_ROTL(v1, 17);                                                                     \
        v1 ^= v2;                                                                                  \
        v2 = SIP_ROTL(v2, 32);                                                                     \
    } while (0)

static inline uint64_t sip_load64(const unsigned char *p)
{
    uint64_t w;

    memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* The last word: the 0..7 remaining bytes, little-endian, and the length
 * (mod 256) in the top byte. */
static inline uint64_t sip_last(const unsigned char *p, size_t left, size_t len)
{
    uint64_t b = (uint64_t)len << 56;

    switch (left) {
    case 7: b |= (uint64_t)p[6] << 48; /* fall through */
    case 6: b |= (uint64_t)p[5] << 40; /* fall through */
    case 5: b |= (uint64_t)p[4] << 32; /* fall through */
    case 4: b |= (uint64_t)p[3] << 24; /* fall through */
    case 3: b |= (uint64_t)p[2] << 16; /* fall through */
    case 2: b |= (uint64_t)p[1] << 8;  /* fall through */
    case 1: b |= (uint64_t)p[0]; break;
    default: break;
    }
    return b;
}

/* One body for both round counts; c and d are constants at each call site,
 * so the compiler unrolls the loops. */
static inline __attribute__((always_inline)) uint64_t
sip_hash(const struct siphash_key *key, const void *data, size_t len, int c, int d)
{
    const unsigned char *p = data;
    const size_t blocks = len & ~(size_t)7; /* by index: data may be NULL */
    uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ key->k0;
    uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ key->k1;
    uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ key->k0;
    uint64_t v3 = UINT64_C(0x7465646279746573) ^ key->k1;
    uint64_t m;

    for (size_t off = 0; off < blocks; off += 8) {
        m = sip_load64(p + off);
        v3 ^= m;
        for (int i = 0; i < c; i++)
            SIP_ROUND;
        v0 ^= m;
    }
    m = sip_last(len & 7 ? p + blocks : p, len & 7, len);
    v3 ^= m;
    for (int i = 0; i < c; i++)
        SIP_ROUND;
    v0 ^= m;
    v2 ^= 0xff;
    for (int i = 0; i < d; i++)
        SIP_ROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t siphash13(const struct siphash_key *key, const void *data, size_t len)
{
    return sip_hash(key, data, len, 1, 3);
}

uint64_t siphash24(const struct siphash_key *key, const void *data, size_t len)
{
    return sip_hash(key, data, len, 2, 4);
}

static struct siphash_key sip_secret;
static int sip_secret_rc;
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t sip_counter;

static void sip_secret_init(void)
{
    unsigned char buf[16];
    size_t got = 0;

    while (got < sizeof buf) {
        ssize_t n = getrandom(buf + got, sizeof buf - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            sip_secret_rc = -errno;
            break;
        }
        got += (size_t)n;
    }
    if (got == sizeof buf) {
        memcpy(&sip_secret.k0, buf, 8);
        memcpy(&sip_secret.k1, buf + 8, 8);
        return;
    }
    /* No kernel randomness (ENOSYS on a very old kernel, seccomp): a
     * weak secret beats a fixed one. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sip_secret.k0 = (uint64_t)ts.tv_nsec * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)ts.tv_sec;
    sip_secret.k1 = (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&ts ^ (uint64_t)(uintptr_t)&sip_once;
}

int siphash_key_random(struct siphash_key *key)
{
    uint64_t n[2];

    pthread_once(&sip_once, sip_secret_init);
    n[0] = atomic_fetch_add(&sip_counter, 1);
    n[1] = 0;
    key->k0 = siphash24(&sip_secret, n, sizeof n);
    n[1] = 1;
    key->k1 = siphash24(&sip_secret, n, sizeof n);
    return sip_secret_rc;
}
