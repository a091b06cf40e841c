/*
 * The C++ shim behind serving/ann.h: hnswlib's HierarchicalNSW with its
 * inner-product space. The only C++ in the project; no exception leaves
 * this file (each entry point catches and returns a negative errno).
 *
 * Threads: ann_build splits the rows over p->threads std::threads
 * (hnswlib's addPoint is safe concurrently); progress is reported by the
 * calling thread, which builds too. Searches are const and hnswlib guards
 * its visited-list pool with a mutex, so they run concurrently.
 */
#include "serving/ann.h"

#include <hnswlib/hnswlib.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <new>
#include <thread>
#include <vector>

struct ann {
    hnswlib::InnerProductSpace space;
    hnswlib::HierarchicalNSW<float> *graph = nullptr;
    uint32_t d;
    explicit ann(uint32_t dims) : space(dims), d(dims)
    {
    }
    ~ann()
    {
        delete graph;
    }
};

extern "C" void ann_params_init(struct ann_params *p)
{
    p->m = 16;
    p->ef_construction = 100;
    p->ef_search = 64;
    p->threads = 2;
    p->seed = 100;
}

static void add_range(struct ann *a, const float *rows, uint32_t n, uint32_t d, int stride,
                      int first, std::atomic<uint32_t> *done, std::atomic<int> *stop,
                      std::atomic<int> *failed)
{
    try {
        for (uint32_t i = (uint32_t)first; i < n && !stop->load(); i += (uint32_t)stride) {
            a->graph->addPoint(rows + (size_t)i * d, i);
            done->fetch_add(1, std::memory_order_relaxed);
        }
    } catch (...) {
        failed->store(1);
        stop->store(1);
    }
}

extern "C" struct ann *ann_build(const float *rows, uint32_t n, uint32_t d,
                                 const struct ann_params *p, ann_progress_fn progress, void *ud,
                                 int *err)
{
    int e = 0;
    struct ann *a = nullptr;
    if (!rows || n == 0 || d == 0 || !p || p->m < 4 || p->m > 64 || p->threads < 1 ||
        p->threads > 64) {
        *err = -EINVAL;
        return nullptr;
    }
    try {
        a = new ann(d);
        a->graph =
            new hnswlib::HierarchicalNSW<float>(&a->space, n, p->m, p->ef_construction, p->seed);
        a->graph->setEf(p->ef_search);
        std::atomic<uint32_t> done(0);
        std::atomic<int> stop(0), failed(0);
        /* the first point alone: hnswlib's entry point must exist before
         * concurrent inserts */
        a->graph->addPoint(rows, 0);
        done = 1;
        std::vector<std::thread> th;
        for (int t = 1; t < p->threads; t++)
            th.emplace_back(add_range, a, rows, n, d, p->threads, t, &done, &stop, &failed);
        /* this thread: its share in slices, reporting between slices */
        const uint32_t slice = n / 100 + 1;
        uint32_t i = (uint32_t)p->threads;
        while (i < n && !stop.load()) {
            for (uint32_t s = 0; s < slice && i < n; s++, i += (uint32_t)p->threads) {
                a->graph->addPoint(rows + (size_t)i * d, i);
                done.fetch_add(1, std::memory_order_relaxed);
            }
            if (progress && progress(ud, (double)done.load() / n) != 0) {
                stop = 1;
                e = -ECANCELED;
            }
        }
        for (auto &t : th)
            t.join();
        if (failed.load())
            e = -ENOMEM;
        if (e == 0 && progress)
            progress(ud, 1.0);
    } catch (...) {
        e = -ENOMEM;
    }
    if (e != 0) {
        delete a;
        *err = e;
        return nullptr;
    }
    return a;
}

extern "C" int ann_search(const struct ann *a, const float *q, uint32_t k, uint32_t *out)
{
    if (!a || !q || !out || k == 0)
        return -EINVAL;
    try {
        auto pq = a->graph->searchKnn(q, k); /* worst on top */
        int n = (int)pq.size();
        for (int t = n - 1; t >= 0; t--) {
            out[t] = (uint32_t)pq.top().second;
            pq.pop();
        }
        return n;
    } catch (...) {
        return -ENOMEM;
    }
}

extern "C" int ann_save(const struct ann *a, const char *path)
{
    try {
        a->graph->saveIndex(path);
        std::ifstream check(path, std::ios::binary | std::ios::ate);
        return check.good() && check.tellg() > 0 ? 0 : -EIO;
    } catch (...) {
        return -EIO;
    }
}

extern "C" struct ann *ann_load(const char *path, uint32_t d, uint32_t ef, int *err)
{
    struct ann *a = nullptr;
    {
        std::ifstream f(path, std::ios::binary);
        if (!f.good()) {
            *err = -ENOENT;
            return nullptr;
        }
    }
    try {
        a = new ann(d);
        a->graph = new hnswlib::HierarchicalNSW<float>(&a->space);
        a->graph->loadIndex(path, &a->space, 0);
        if (a->graph->data_size_ != d * sizeof(float)) {
            delete a;
            *err = -EBADMSG;
            return nullptr;
        }
        a->graph->setEf(ef);
        return a;
    } catch (const std::bad_alloc &) {
        *err = -ENOMEM;
    } catch (...) {
        *err = -EBADMSG;
    }
    delete a;
    return nullptr;
}

extern "C" uint32_t ann_count(const struct ann *a)
{
    return a ? (uint32_t)a->graph->cur_element_count : 0;
}

extern "C" size_t ann_bytes(const struct ann *a)
{
    if (!a)
        return 0;
    const auto *g = a->graph;
    size_t b = g->max_elements_ * g->size_data_per_element_ + g->max_elements_ * sizeof(void *);
    for (size_t i = 0; i < g->cur_element_count; i++)
        b += (size_t)g->element_levels_[i] * g->size_links_per_element_;
    b += g->max_elements_ * (sizeof(unsigned short) + sizeof(int)); /* one visited list, levels */
    return b;
}

extern "C" void ann_destroy(struct ann *a)
{
    delete a;
}
