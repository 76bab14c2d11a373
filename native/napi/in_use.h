// The objects one operation uses, counted in flight. An entry point takes its hold before
// it reads any argument: reading an option can run user code (a getter, a Proxy trap) that
// calls back into the same objects, and that code must find them in use (a second call is
// BUSY, dispose() is refused). The hold passes to the operation's task, which releases it
// when the work ends; a refused call releases it at once.
#pragma once

#include <functional>
#include <vector>

namespace tempered {
namespace napi {

class InUse {
 public:
  InUse() = default;
  InUse(const InUse&) = delete;
  InUse& operator=(const InUse&) = delete;
  ~InUse() { release(counters_); }

  void hold(int* in_flight) {
    ++*in_flight;
    counters_.push_back(in_flight);
  }

  // The release for the task to run when the work ends; this object then holds nothing.
  std::function<void()> hand_over() {
    std::vector<int*> counters;
    counters.swap(counters_);
    return [counters] { release(counters); };
  }

 private:
  static void release(const std::vector<int*>& counters) {
    for (int* n : counters) --*n;
  }
  std::vector<int*> counters_;
};

}  // namespace napi
}  // namespace tempered
