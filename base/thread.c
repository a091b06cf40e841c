/*
 * Thread-affinity assertions (see thread.h). The loop thread's id is set
 * once at start, before any worker exists, and read afterwards; it is kept
 * in an atomic so TSan sees the publication.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/thread.h"

static _Atomic int registered;
static pthread_t loop_thread; /* written before `registered` is released */

void thread_loop_register(void)
{
    loop_thread = pthread_self();
    atomic_store_explicit(&registered, 1, memory_order_release);
}

int thread_loop_registered(void)
{
    return atomic_load_explicit(&registered, memory_order_acquire);
}

int thread_on_loop(void)
{
    if (!thread_loop_registered())
        return 1;
    return pthread_equal(pthread_self(), loop_thread) != 0;
}

void thread__violation(const char *what, const char *expected, const char *file, int line)
{
    fprintf(stderr, "%s:%d: %s() must run on %s\n", file, line, what, expected);
    abort();
}
