/*
 * Unit tests for the thread-affinity assertions (base/thread.h). The checks
 * are compiled in here whatever the build type, so the plain build tests
 * them too. A violation aborts, so each violating call runs in a forked
 * child whose death by SIGABRT is the assertion under test.
 */
#define ITEMVEC_THREAD_CHECKS 1
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/thread.h"

static void loop_only(void)
{
    ASSERT_LOOP_THREAD();
}

static void worker_only(void)
{
    ASSERT_WORKER_THREAD();
}

static void *call_loop_only(void *arg)
{
    loop_only();
    return arg;
}

static void *call_worker_only(void *arg)
{
    worker_only();
    return arg;
}

/* Runs fn in a forked child (after registering the child's main thread as
 * the loop thread, unless register_loop is 0) and returns its wait status. */
static int in_child(void (*fn)(void), int register_loop)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 2);
        if (register_loop)
            thread_loop_register();
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

static void from_thread_loop_only(void)
{
    pthread_t t;
    pthread_create(&t, NULL, call_loop_only, NULL);
    pthread_join(t, NULL);
}

static void from_thread_worker_only(void)
{
    pthread_t t;
    pthread_create(&t, NULL, call_worker_only, NULL);
    pthread_join(t, NULL);
}

static void test_loop_only_on_loop_passes(void **state)
{
    int st = in_child(loop_only, 1);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_loop_only_on_worker_aborts(void **state)
{
    int st = in_child(from_thread_loop_only, 1);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
}

static void test_worker_only_on_loop_aborts(void **state)
{
    int st = in_child(worker_only, 1);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
}

static void test_worker_only_on_worker_passes(void **state)
{
    int st = in_child(from_thread_worker_only, 1);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_unregistered_passes_everywhere(void **state)
{
    /* Library use without a daemon (benches, tools): nothing registered,
     * so loop-only functions may run on any thread. */
    int st = in_child(from_thread_loop_only, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_only_on_loop_passes),
        cmocka_unit_test(test_loop_only_on_worker_aborts),
        cmocka_unit_test(test_worker_only_on_loop_aborts),
        cmocka_unit_test(test_worker_only_on_worker_passes),
        cmocka_unit_test(test_unregistered_passes_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
