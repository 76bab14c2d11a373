// A persistent pool of worker threads for the CPU backend. parallel_for(n, fn) runs
// fn(0..n-1) on the pool and the calling thread, handing out task indices dynamically.
// Results never depend on the number of threads: callers split work into tasks whose
// boundaries are fixed by the problem, not by the pool, and each task writes its own
// output (reductions combine per-task partials in task order). That is also why a model
// may run on a pool of its own (PoolScope): two models training at once each use their
// own threads and get the same results as one after the other on the shared pool.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tempered {
namespace cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }
  // Changes the number of threads (>= 1); waits for running work first.
  void resize(int threads);

  // Runs fn(i) for every i in [0, tasks). Blocks until all are done. Only one
  // parallel_for runs at a time; nested calls run serially on the calling thread.
  void parallel_for(int64_t tasks, const std::function<void(int64_t)>& fn);

  // The number of hardware threads this process may run on.
  static int hardware_threads();

 private:
  void start(int threads);
  void stop();
  void worker_loop();
  void run_tasks();

  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one parallel_for at a time

  // A job is announced by bumping generation_. Workers spin on it for a short while after
  // each job (a network's operations follow each other within microseconds, and waking a
  // sleeping thread costs more than a small operation), then sleep on wake_.
  std::mutex mutex_;
  std::condition_variable wake_;
  int sleepers_ = 0;  // under mutex_
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
  // Each job hands out one ticket per worker; a worker runs tasks only with a ticket, and the
  // caller, once out of tasks, takes back the tickets not yet claimed, so it never waits for
  // a worker that has not woken up yet. It waits only for those that claimed one.
  std::atomic<int> tickets_{0};
  std::atomic<int> finished_{0};

  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t job_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
};

// The pool's calling thread is inside parallel_for: further parallel_for calls from a task
// run inline.
bool in_parallel_region();

// The pool this thread's CPU operations run on, nullptr for the process-wide one
// (CpuBackend::pool() decides). A pool's workers report their own pool.
ThreadPool* current_pool();

// Makes `pool` the calling thread's pool for the length of one operation (one model's
// task on a libuv worker thread); nullptr keeps the process-wide pool. Restores the
// previous one when it ends.
class PoolScope {
 public:
  explicit PoolScope(ThreadPool* pool);
  ~PoolScope();
  PoolScope(const PoolScope&) = delete;
  PoolScope& operator=(const PoolScope&) = delete;

 private:
  ThreadPool* previous_;
};

}  // namespace cpu
}  // namespace tempered
