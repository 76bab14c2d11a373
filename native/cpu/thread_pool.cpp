#include "thread_pool.h"

#include <sched.h>

#include <algorithm>

namespace tempered {
namespace cpu {

namespace {
// How long an idle thread spins before it sleeps (worker) or yields (caller).
constexpr std::chrono::microseconds kSpin{100};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

thread_local bool t_in_parallel = false;
thread_local ThreadPool* t_pool = nullptr;
}  // namespace

bool in_parallel_region() { return t_in_parallel; }

ThreadPool* current_pool() { return t_pool; }

PoolScope::PoolScope(ThreadPool* pool) : previous_(t_pool) { t_pool = pool; }

PoolScope::~PoolScope() { t_pool = previous_; }

int ThreadPool::hardware_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

ThreadPool::ThreadPool(int threads) { start(std::max(1, threads)); }

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::resize(int threads) {
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  stop();
  start(std::max(1, threads));
}

void ThreadPool::start(int threads) {
  threads_ = threads;
  stopping_ = false;
  // The calling thread takes part in every parallel_for, so threads - 1 workers.
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

void ThreadPool::stop() {
  stopping_ = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::run_tasks() {
  const auto& fn = *job_;
  const int64_t tasks = job_tasks_;
  for (;;) {
    int64_t i = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (i >= tasks) break;
    fn(i);
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = generation_.load();
  t_in_parallel = true;
  t_pool = this;
  for (;;) {
    uint64_t now = generation_.load();
    for (auto spin_end = std::chrono::steady_clock::now() + kSpin; now == seen && !stopping_;) {
      if (std::chrono::steady_clock::now() < spin_end) {
        cpu_relax();
      } else {
        std::unique_lock<std::mutex> lock(mutex_);
        ++sleepers_;
        wake_.wait(lock, [&] { return stopping_ || generation_.load() != seen; });
        --sleepers_;
      }
      now = generation_.load();
    }
    if (stopping_) return;
    seen = now;
    if (tickets_.fetch_sub(1) > 0) {  // a ticket of the job now announced (or of a later one)
      run_tasks();
      finished_.fetch_add(1);
    }
  }
}

void ThreadPool::parallel_for(int64_t tasks, const std::function<void(int64_t)>& fn) {
  if (tasks <= 0) return;
  if (t_in_parallel || tasks == 1 || workers_.empty()) {
    for (int64_t i = 0; i < tasks; ++i) fn(i);
    return;
  }
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  const int workers = static_cast<int>(workers_.size());
  job_ = &fn;
  job_tasks_ = tasks;
  next_task_.store(0);
  finished_.store(0);
  tickets_.store(workers);
  generation_.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (sleepers_ > 0) wake_.notify_all();
  }
  t_in_parallel = true;
  run_tasks();
  t_in_parallel = false;
  const int granted = workers - std::max(0, tickets_.exchange(0));
  for (auto spin_end = std::chrono::steady_clock::now() + kSpin; finished_.load() < granted;) {
    if (std::chrono::steady_clock::now() < spin_end)
      cpu_relax();
    else
      std::this_thread::yield();  // a worker with a ticket is still running its last task
  }
  job_ = nullptr;
}

}  // namespace cpu
}  // namespace tempered
