// A stress run of the CPU backend's thread pool (native/cpu/thread_pool.cpp), built with
// ThreadSanitizer by `scripts/sanitize.sh tsan`: many short jobs of 1-37 tasks (each task
// writes its own slot, checked after the job), resizes, pauses long enough for the workers
// to fall asleep, two callers sharing one pool, and more threads than cores, so that the
// caller often runs every task before a worker wakes up and takes its ticket back.
// Exits 1 when a job lost or repeated a task.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "thread_pool.h"

using tempered::cpu::ThreadPool;

namespace {

long run_jobs(ThreadPool& pool, int rounds) {
  long bad = 0;
  std::vector<long> out(64);
  for (int round = 0; round < rounds; ++round) {
    const int tasks = 1 + round % 37;
    pool.parallel_for(tasks, [&](int64_t i) { out[i] = static_cast<long>(round) * 1000 + i; });
    for (int i = 0; i < tasks; ++i)
      if (out[i] != static_cast<long>(round) * 1000 + i) ++bad;
    if (round % 997 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));  // workers sleep
  }
  return bad;
}

}  // namespace

int main() {
  long bad = 0;
  for (int threads : {2, 3, 8}) {
    ThreadPool pool(threads);
    bad += run_jobs(pool, 20000);
    pool.resize(threads == 8 ? 2 : threads + 1);
    bad += run_jobs(pool, 5000);
    // Two callers at once: parallel_for serialises them.
    std::atomic<long> sum{0};
    std::thread a([&] {
      for (int r = 0; r < 3000; ++r) pool.parallel_for(8, [&](int64_t i) { sum += i; });
    });
    std::thread b([&] {
      for (int r = 0; r < 3000; ++r) pool.parallel_for(5, [&](int64_t i) { sum += i; });
    });
    a.join();
    b.join();
    if (sum != 3000L * 28 + 3000L * 10) ++bad;
  }
  std::printf("thread pool stress: %ld bad job(s)\n", bad);
  return bad == 0 ? 0 : 1;
}
