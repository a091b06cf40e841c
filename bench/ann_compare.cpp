// bench/ann_compare.cpp: the one-off measurement behind docs/algorithms.md "ANN index":
// FAISS (IndexHNSWFlat, IndexIVFFlat) vs hnswlib on the same planted-cluster data.
// Not built by CMake (the product keeps its C++ in serving/ann_hnsw.cpp); build by hand:
//   g++ -O2 -march=native -fopenmp bench/ann_compare.cpp -o /tmp/ann_compare \
//       /usr/lib/x86_64-linux-gnu/libfaiss.a -lopenblas -llapack   # libfaiss-dev: scripts/deps.sh bench
//   OPENBLAS_NUM_THREADS=1 /tmp/ann_compare 100000 64 1.5     # items dims noise
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexFlat.h>
#include <hnswlib/hnswlib.h>
#include <omp.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>
#include <algorithm>
#include <sys/resource.h>
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
static long rss_kb() { FILE *f = fopen("/proc/self/statm", "r"); long a, b; fscanf(f, "%ld %ld", &a, &b); fclose(f); return b * 4; }
int main(int argc, char **argv) {
  float noise = argc > 3 ? atof(argv[3]) : 0.5f; size_t n = argc > 1 ? atol(argv[1]) : 100000, d = argc > 2 ? atol(argv[2]) : 64, nq = 500, k = 10;
  int threads = 2; omp_set_num_threads(threads);
  std::mt19937_64 rng(7); std::normal_distribution<float> g(0, 1);
  size_t nc = n / 100; std::vector<float> cent(nc * d), x(n * d);
  for (auto &v : cent) v = g(rng);
  for (size_t i = 0; i < n; i++) { size_t c = rng() % nc; for (size_t t = 0; t < d; t++) x[i*d+t] = cent[c*d+t] + noise * g(rng); }
  for (size_t i = 0; i < n; i++) { double s = 0; for (size_t t = 0; t < d; t++) s += x[i*d+t]*x[i*d+t]; float r = 1/sqrt(s); for (size_t t = 0; t < d; t++) x[i*d+t] *= r; }
  std::vector<size_t> qs(nq); for (auto &q : qs) q = rng() % n;
  // exact
  std::vector<std::vector<long>> truth(nq);
  for (size_t a = 0; a < nq; a++) { std::vector<std::pair<float,long>> s(n); for (size_t j = 0; j < n; j++) { float v = 0; for (size_t t = 0; t < d; t++) v += x[qs[a]*d+t]*x[j*d+t]; s[j] = {-v, (long)j}; }
    std::partial_sort(s.begin(), s.begin()+k+1, s.end()); for (size_t t = 0; t <= k; t++) truth[a].push_back(s[t].second); }
  auto recall = [&](auto search) { double hit = 0, t0 = now(); for (size_t a = 0; a < nq; a++) { std::vector<long> r = search(&x[qs[a]*d]); for (size_t t = 0; t <= k; t++) for (long v : r) if (v == truth[a][t]) { hit++; break; } } return std::make_pair(hit / (nq * (k+1)), (now() - t0) / nq * 1e6); };
  { long m0 = rss_kb(); double t0 = now(); hnswlib::InnerProductSpace sp(d); hnswlib::HierarchicalNSW<float> h(&sp, n, 16, 100);
    std::vector<std::thread> th; for (int w = 0; w < threads; w++) th.emplace_back([&, w] { for (size_t i = w; i < n; i += threads) h.addPoint(&x[i*d], i); }); for (auto &t : th) t.join();
    double bt = now() - t0; long mem = rss_kb() - m0;
    for (size_t ef : {32, 64, 128}) { h.setEf(ef); auto r = recall([&](const float *q) { auto pq = h.searchKnn(q, k+1); std::vector<long> o; while (!pq.empty()) { o.push_back(pq.top().second); pq.pop(); } return o; });
      printf("hnswlib   HNSW M=16 efC=100 ef=%zu: build %.1fs mem %ld MiB recall@10 %.4f query %.0f us\n", ef, bt, mem/1024, r.first, r.second); } }
  { long m0 = rss_kb(); double t0 = now(); faiss::IndexHNSWFlat f(d, 16, faiss::METRIC_INNER_PRODUCT); f.hnsw.efConstruction = 100; f.add(n, x.data()); double bt = now() - t0; long mem = rss_kb() - m0;
    for (int ef : {32, 64, 128}) { f.hnsw.efSearch = ef; omp_set_num_threads(1); auto r = recall([&](const float *q) { std::vector<float> D(k+1); std::vector<faiss::Index::idx_t> ids(k+1); f.search(1, q, k+1, D.data(), ids.data()); return std::vector<long>(ids.begin(), ids.end()); }); omp_set_num_threads(threads);
      printf("faiss     HNSWFlat M=16 efC=100 ef=%d: build %.1fs mem %ld MiB recall@10 %.4f query %.0f us\n", ef, bt, mem/1024, r.first, r.second); } }
  { long m0 = rss_kb(); double t0 = now(); faiss::IndexFlatIP qz(d); size_t nl = (size_t)(4*sqrt((double)n)); faiss::IndexIVFFlat f(&qz, d, nl, faiss::METRIC_INNER_PRODUCT); f.train(std::min(n, nl*40), x.data()); f.add(n, x.data()); double bt = now() - t0; long mem = rss_kb() - m0;
    for (size_t np : {8, 16, 32}) { f.nprobe = np; omp_set_num_threads(1); auto r = recall([&](const float *q) { std::vector<float> D(k+1); std::vector<faiss::Index::idx_t> ids(k+1); f.search(1, q, k+1, D.data(), ids.data()); return std::vector<long>(ids.begin(), ids.end()); }); omp_set_num_threads(threads);
      printf("faiss     IVFFlat nlist=%zu nprobe=%zu: build %.1fs mem %ld MiB recall@10 %.4f query %.0f us\n", nl, np, bt, mem/1024, r.first, r.second); } }
}
