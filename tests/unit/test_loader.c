/*
 * Unit tests for serving/loader (the cached asynchronous loader behind the
 * served models and the PMI matrix cache), with a real libuv loop and its
 * worker pool:
 *   - gets for one key before the load ends share one load, and every
 *     waiter is called back on the loop thread, in arrival order, with its
 *     own reference;
 *   - a cached key calls back before loader_get returns, without a load;
 *   - a failing load calls every waiter with the error and caches nothing
 *     (the previous object stays cached);
 *   - a new key replaces the cached object, which lives on while a caller
 *     holds it; params are copied when the load starts;
 *   - a waiter may call loader_get from its callback; NULL callbacks;
 *   - over-long keys, loader_put / loader_peek; every object is freed
 *     (the ASan build checks the leaks);
 *   - with a budget, least recently used objects are evicted first, hits
 *     refresh recency, the newest object stays even when it alone is over
 *     the budget, and lowering the budget evicts at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/thread.h"
#include "serving/loader.h"

struct obj {
    int refs;
    char key[LOADER_KEY_MAX];
    int param;
};

struct params {
    int value;
};

static atomic_int loads;   /* ops.load calls */
static atomic_int freed;   /* objects freed */
static atomic_int on_loop; /* loads that ran on the loop thread: must stay 0 */
static pthread_t loop_thread;
static int loaded_calls, loaded_errors;

/* Pool thread. Keys starting with "bad" fail with -EIO. */
static int t_load(const char *key, const void *params, void **out)
{
    atomic_fetch_add(&loads, 1);
    if (pthread_equal(pthread_self(), loop_thread)) /* no cmocka asserts off the main thread */
        atomic_fetch_add(&on_loop, 1);
    if (strncmp(key, "bad", 3) == 0)
        return -EIO;
    struct obj *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    o->refs = 1;
    snprintf(o->key, sizeof o->key, "%s", key);
    o->param = ((const struct params *)params)->value;
    *out = o;
    return 0;
}

static void t_ref(void *p)
{
    ((struct obj *)p)->refs++;
}

static void t_unref(void *p)
{
    struct obj *o = p;
    if (o && --o->refs == 0) {
        free(o);
        atomic_fetch_add(&freed, 1);
    }
}

typedef void (*obj_cb)(void *arg, struct obj *o, int rc);

static void t_call(loader_fn fn, void *arg, void *o, int rc)
{
    ((obj_cb)fn)(arg, o, rc);
}

static void t_loaded(void *ud, const char *key, const void *params, void *o, int rc)
{
    assert_ptr_equal(ud, &loaded_calls);
    loaded_calls++;
    if (rc != 0) {
        assert_null(o);
        loaded_errors++;
    }
}

static const struct loader_ops ops = {
    .params_size = sizeof(struct params),
    .load = t_load,
    .ref = t_ref,
    .unref = t_unref,
    .call = t_call,
    .loaded = t_loaded,
};

/* One waiter's record. */
struct waiter {
    int called;
    int order; /* position among all callbacks */
    struct obj *o;
    int rc;
};

static int call_seq;

static void on_get(void *arg, struct obj *o, int rc)
{
    struct waiter *w = arg;
    assert_true(pthread_equal(pthread_self(), loop_thread));
    w->called++;
    w->order = ++call_seq;
    w->o = o;
    w->rc = rc;
}

struct fixture {
    uv_loop_t loop;
    struct loader l;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || uv_loop_init(&f->loop) != 0)
        return -1;
    loop_thread = pthread_self();
    thread_loop_register(); /* the loader's ASSERT_LOOP_THREAD checks (sanitizer builds) */
    atomic_store(&loads, 0);
    atomic_store(&freed, 0);
    atomic_store(&on_loop, 0);
    loaded_calls = loaded_errors = call_seq = 0;
    loader_init(&f->l, &f->loop, &ops, &loaded_calls);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(loader_loading(&f->l), 0);
    assert_int_equal(atomic_load(&on_loop), 0);
    loader_deinit(&f->l);
    int rc = uv_loop_close(&f->loop);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void get(struct fixture *f, const char *key, int value, struct waiter *w)
{
    struct params p = {value};
    loader_get(&f->l, key, &p, (loader_fn)on_get, w);
}

static void test_concurrent_gets_coalesce(void **state)
{
    struct fixture *f = *state;
    struct waiter w[3] = {{0}};
    for (int i = 0; i < 3; i++)
        get(f, "a", 7 + i, &w[i]);
    assert_int_equal(loader_loading(&f->l), 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(w[i].called, 0); /* nothing before the loop runs */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(atomic_load(&loads), 1);
    assert_int_equal(loaded_calls, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(w[i].called, 1);
        assert_int_equal(w[i].rc, 0);
        assert_ptr_equal(w[i].o, w[0].o);
        assert_int_equal(w[i].order, i + 1); /* arrival order */
    }
    struct obj *o = w[0].o;
    assert_string_equal(o->key, "a");
    assert_int_equal(o->param, 7); /* the first get's params started the load */
    assert_int_equal(o->refs, 4);  /* the cache's and one per waiter */
    assert_ptr_equal(loader_peek(&f->l, "a"), o);
    assert_ptr_equal(loader_peek(&f->l, NULL), o);
    assert_null(loader_peek(&f->l, "b"));
    for (int i = 0; i < 3; i++)
        t_unref(w[i].o);
    assert_int_equal(o->refs, 1);
    assert_int_equal(atomic_load(&freed), 0);
}

static void test_cached_hit_is_immediate(void **state)
{
    struct fixture *f = *state;
    struct waiter w = {0}, again = {0};
    get(f, "a", 1, &w);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(w.called, 1);
    get(f, "a", 2, &again);
    assert_int_equal(again.called, 1); /* before loader_get returned */
    assert_int_equal(again.rc, 0);
    assert_ptr_equal(again.o, w.o);
    assert_int_equal(loader_loading(&f->l), 0);
    assert_int_equal(atomic_load(&loads), 1);
    t_unref(w.o);
    t_unref(again.o);
}

static void test_error_calls_every_waiter(void **state)
{
    struct fixture *f = *state;
    struct waiter a = {0};
    get(f, "a", 1, &a);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    struct waiter w[4] = {{0}};
    for (int i = 0; i < 4; i++)
        get(f, "bad", 0, &w[i]);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(atomic_load(&loads), 2);
    assert_int_equal(loaded_errors, 1);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(w[i].called, 1);
        assert_int_equal(w[i].rc, -EIO);
        assert_null(w[i].o);
    }
    /* the failure cached nothing and kept what was cached */
    assert_ptr_equal(loader_peek(&f->l, NULL), a.o);
    assert_null(loader_peek(&f->l, "bad"));
    /* and the next get of the failed key loads again */
    struct waiter again = {0};
    get(f, "bad", 0, &again);
    assert_int_equal(again.called, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(again.rc, -EIO);
    assert_int_equal(atomic_load(&loads), 3);
    t_unref(a.o);
}

static void test_new_key_replaces_cached(void **state)
{
    struct fixture *f = *state;
    struct waiter a = {0}, b = {0};
    get(f, "a", 1, &a);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    struct params p = {42};
    loader_get(&f->l, "b", &p, (loader_fn)on_get, &b);
    p.value = 0; /* the load has its own copy */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(b.o->param, 42);
    assert_ptr_equal(loader_peek(&f->l, NULL), b.o);
    assert_null(loader_peek(&f->l, "a"));
    /* "a" left the cache but its caller still holds it */
    assert_int_equal(a.o->refs, 1);
    assert_int_equal(atomic_load(&freed), 0);
    t_unref(a.o);
    assert_int_equal(atomic_load(&freed), 1);
    t_unref(b.o);
}

/* A callback that asks again: the object is cached by then. */
struct chain {
    struct fixture *f;
    struct waiter first, second;
};

static void on_chain(void *arg, struct obj *o, int rc)
{
    struct chain *c = arg;
    on_get(&c->first, o, rc);
    get(c->f, "a", 9, &c->second);
    assert_int_equal(c->second.called, 1);
}

static void test_reentrant_get_and_null_cb(void **state)
{
    struct fixture *f = *state;
    struct chain c = {.f = f};
    struct params p = {3};
    loader_get(&f->l, "a", &p, (loader_fn)on_chain, &c);
    loader_get(&f->l, "a", &p, NULL, NULL); /* load and cache, nobody told */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(atomic_load(&loads), 1);
    assert_ptr_equal(c.first.o, c.second.o);
    assert_int_equal(c.first.o->refs, 3);
    t_unref(c.first.o);
    t_unref(c.second.o);
    loader_get(&f->l, "a", &p, NULL, NULL); /* a cached hit with no callback */
    assert_int_equal(((struct obj *)loader_peek(&f->l, "a"))->refs, 1);
}

static void test_put_and_long_keys(void **state)
{
    struct fixture *f = *state;
    char key[LOADER_KEY_MAX + 1];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    struct waiter w = {0};
    get(f, key, 1, &w);
    assert_int_equal(w.called, 1);
    assert_int_equal(w.rc, -ENAMETOOLONG);
    assert_int_equal(loader_loading(&f->l), 0);

    struct obj *o = calloc(1, sizeof *o);
    assert_non_null(o);
    o->refs = 1;
    assert_int_equal(loader_put(&f->l, "p", o), 0);
    struct waiter hit = {0};
    get(f, "p", 1, &hit);
    assert_int_equal(hit.called, 1);
    assert_ptr_equal(hit.o, o);
    assert_int_equal(o->refs, 2);
    t_unref(hit.o);
    struct obj *o2 = calloc(1, sizeof *o2);
    assert_non_null(o2);
    o2->refs = 1;
    assert_int_equal(loader_put(&f->l, key, o2), -ENAMETOOLONG); /* released */
    assert_int_equal(atomic_load(&freed), 1);
    assert_ptr_equal(loader_peek(&f->l, "p"), o);
    assert_int_equal(loader_put(&f->l, "", NULL), 0); /* empties the cache */
    assert_null(loader_peek(&f->l, NULL));
    assert_int_equal(atomic_load(&freed), 2);
    assert_int_equal(atomic_load(&loads), 0);
}

/* Objects whose size in bytes is their param. */
static size_t t_bytes(const void *p)
{
    return (size_t)((const struct obj *)p)->param;
}

static const struct loader_ops sized_ops = {
    .params_size = sizeof(struct params),
    .load = t_load,
    .ref = t_ref,
    .unref = t_unref,
    .call = t_call,
    .loaded = t_loaded,
    .bytes = t_bytes,
};

/* Loads key (size bytes) to completion and drops the caller's reference. */
static void load_sized(struct fixture *f, const char *key, int size)
{
    struct waiter w = {0};
    get(f, key, size, &w);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(w.rc, 0);
    t_unref(w.o);
}

static void test_lru_budget(void **state)
{
    struct fixture *f = *state;
    loader_deinit(&f->l);
    loader_init(&f->l, &f->loop, &sized_ops, &loaded_calls);
    loader_set_budget(&f->l, 250);
    load_sized(f, "a", 100);
    load_sized(f, "b", 100);
    assert_int_equal(f->l.cached, 2);
    load_sized(f, "c", 100); /* 300 > 250: "a", the least recent, goes */
    assert_int_equal(f->l.cached, 2);
    assert_int_equal(f->l.bytes, 200);
    assert_null(loader_peek(&f->l, "a"));
    assert_int_equal(atomic_load(&freed), 1);
    struct waiter hit = {0};
    get(f, "b", 0, &hit); /* a hit: no load, and "b" is now the most recent */
    assert_int_equal(hit.called, 1);
    t_unref(hit.o);
    assert_int_equal(atomic_load(&loads), 3);
    assert_ptr_equal(loader_peek(&f->l, NULL), loader_peek(&f->l, "b"));
    load_sized(f, "d", 100); /* evicts "c", not "b" */
    assert_non_null(loader_peek(&f->l, "b"));
    assert_null(loader_peek(&f->l, "c"));
    load_sized(f, "e", 1000); /* over the budget alone: kept, alone */
    assert_int_equal(f->l.cached, 1);
    assert_non_null(loader_peek(&f->l, "e"));
    assert_int_equal(f->l.evictions, 4);
    load_sized(f, "f", 10);
    load_sized(f, "g", 10);
    assert_int_equal(f->l.cached, 2); /* "e" went: 1020 > 250 */
    loader_set_budget(&f->l, 0);      /* only the most recent stays */
    assert_int_equal(f->l.cached, 1);
    assert_non_null(loader_peek(&f->l, "g"));
    assert_int_equal(f->l.bytes, 10);
    assert_int_equal(f->l.loads_done, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_concurrent_gets_coalesce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cached_hit_is_immediate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_calls_every_waiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_key_replaces_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reentrant_get_and_null_cb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_and_long_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lru_budget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
