/*
 * Thread-affinity assertions. itemvecd has two kinds of thread: the loop
 * thread (libuv loop, HTTP, job bookkeeping, everything reachable from
 * struct app) and worker threads (libuv pool: writer ops, jobs, loads; and
 * the math threads inside a job). State owned by the loop must only be
 * touched there; the comments that say so are checked by these macros.
 *
 * In builds with ITEMVEC_THREAD_CHECKS (Debug, ASan/UBSan, TSan: see
 * CMakeLists.txt) a violated assertion prints the function and aborts; in
 * release builds the macros compile to nothing.
 */
#ifndef ITEMVEC_BASE_THREAD_H
#define ITEMVEC_BASE_THREAD_H

/* Records the calling thread as the loop thread. Called once by main (and
 * by tests that run a loop) before any loop-only function. Any thread may
 * call it again to hand the role over (tests). */
void thread_loop_register(void);

/* 1 when the caller is the registered loop thread; 0 on any other thread;
 * 1 when no loop thread was registered (library use without a daemon:
 * benches, tools, unit tests of single modules). */
int thread_on_loop(void);

/* Aborts with a message naming what (the function) and file:line. */
void thread__violation(const char *what, const char *expected, const char *file, int line);

#ifdef ITEMVEC_THREAD_CHECKS
#define ASSERT_LOOP_THREAD()                                                                   \
    do {                                                                                       \
        if (!thread_on_loop())                                                                 \
            thread__violation(__func__, "the loop thread", __FILE__, __LINE__);                \
    } while (0)
#define ASSERT_WORKER_THREAD()                                                                 \
    do {                                                                                       \
        if (thread_loop_registered() && thread_on_loop())                                      \
            thread__violation(__func__, "a worker thread", __FILE__, __LINE__);                \
    } while (0)
#else
#define ASSERT_LOOP_THREAD() ((void)0)
#define ASSERT_WORKER_THREAD() ((void)0)
#endif

/* 1 once thread_loop_register was called. */
int thread_loop_registered(void);

#endif
