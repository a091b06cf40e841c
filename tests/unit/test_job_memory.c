/*
 * Unit tests for jobs/job_memory (issue 12, finding 7): the train job's
 * memory estimate on hand-checked sizes (every term of job_memory.h's
 * formula), its saturation instead of wrapping, and the budget (the
 * configured one, or 3/4 of the memory limit shared by the concurrent
 * jobs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/sysmem.h"
#include "conf/config.h"
#include "jobs/job_memory.h"

static void test_estimate_known_answer(void **state)
{
    struct job_memory_train t = {.items = 1000, .nnz = 10000, .dimensions = 10, .threads = 2};
    /* matrix 16·1000 + 8·10000 = 96000; ratings 4·10000 = 40000;
     * X, Y at stride 16 and copies 16·1000·16 + 8·1000·10 = 336000;
     * per thread 4·16·1000 + 8·256·10 = 84480, two threads 168960;
     * embeddings 4·1000·10 = 40000 */
    assert_int_equal(job_memory_train(&t), 96000 + 40000 + 336000 + 168960 + 40000);
    t.activate = 1;
    t.catalog_items = 2000;
    /* + index 4·1000·10 + 16·1000 = 56000, names 176·3000 = 528000 */
    assert_int_equal(job_memory_train(&t), 680960 + 56000 + 528000);
    t.matrix_bytes = 200000; /* a file's payload, groups included */
    assert_int_equal(job_memory_train(&t), 680960 - 96000 + 200000 + 56000 + 528000);
    t.matrix_bytes = 0;
    t.precompute = 1;
    t.topk = 5;
    /* + lists 8·1000·5 = 40000, scratch per thread
     * 4·256·1024 + 8·256·(3·5 + 16) + 4·1000 = 1116064, two threads */
    assert_int_equal(job_memory_train(&t), 680960 + 56000 + 528000 + 40000 + 2232128);
}

static void test_estimate_grows_and_saturates(void **state)
{
    struct job_memory_train t = {.items = 100000, .nnz = 20000000, .dimensions = 50,
                                 .threads = 2};
    uint64_t base = job_memory_train(&t);
    t.dimensions = 100;
    assert_true(job_memory_train(&t) > base);
    t.items = UINT64_MAX / 2;
    t.dimensions = 4000;
    assert_true(job_memory_train(&t) == UINT64_MAX); /* not a wrapped small number */
}

static void test_budget(void **state)
{
    struct config c;
    config_defaults(&c);
    assert_int_equal(c.jobs_memory_budget, 0); /* auto by default */
    uint64_t limit = sysmem_limit_bytes();
    assert_true(limit > 0);
    assert_true(job_memory_budget(&c) == limit / 4 * 3);
    c.jobs_concurrency = 3;
    assert_true(job_memory_budget(&c) == limit / 4 * 3 / 3);
    c.jobs_memory_budget = 12345;
    assert_int_equal(job_memory_budget(&c), 12345);
    char buf[32];
    assert_string_equal(job_memory_format(UINT64_C(3) << 29, buf, sizeof buf), "1.5 GiB");
    assert_string_equal(job_memory_format(UINT64_C(5) << 20, buf, sizeof buf), "5.0 MiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimate_known_answer),
        cmocka_unit_test(test_estimate_grows_and_saturates),
        cmocka_unit_test(test_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
