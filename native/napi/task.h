// A Promise-returning unit of work off the main thread (sharp's pattern): arguments are
// parsed into plain C++ values before the task is queued, `work` runs on a libuv worker
// thread and touches no JS value, `done` builds the JS result on the main thread.
// JS objects the work needs (the model, the data set) are pinned until it ends.
#pragma once

#include <napi.h>

#include <functional>
#include <vector>

#include "errors.h"
#include "tempered/status.h"

namespace tempered {
namespace napi {

class Task : public Napi::AsyncWorker {
 public:
  using Work = std::function<Status()>;
  using Done = std::function<Napi::Value(Napi::Env)>;
  using Finally = std::function<void()>;

  // Queues the task and returns its promise.
  static Napi::Promise Start(Napi::Env env, Work work, Done done, Finally finally, std::vector<Napi::Object> pins) {
    auto* task = new Task(env, std::move(work), std::move(done), std::move(finally), pins);
    Napi::Promise promise = task->deferred_.Promise();
    task->Queue();
    return promise;
  }

 protected:
  void Execute() override {
    try {
      status_ = work_();
    } catch (const std::bad_alloc&) {
      status_ = Status::OutOfMemory("out of memory");
    } catch (const std::exception& e) {
      status_ = Status::Internal(std::string("internal error: ") + e.what());
    }
  }

  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (finally_) finally_();
    if (!status_.ok()) {
      deferred_.Reject(status_error(Env(), status_).Value());
      return;
    }
    try {
      deferred_.Resolve(done_ ? done_(Env()) : Env().Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(plain_error(Env(), e.what(), status_code_name(StatusCode::kInternal)).Value());
    }
  }

  void OnError(const Napi::Error& e) override {
    Napi::HandleScope scope(Env());
    if (finally_) finally_();
    deferred_.Reject(e.Value());
  }

 private:
  Task(Napi::Env env, Work work, Done done, Finally finally, const std::vector<Napi::Object>& pins)
      : Napi::AsyncWorker(env, "tempered"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)),
        finally_(std::move(finally)) {
    for (const auto& o : pins) pins_.push_back(Napi::Persistent(o));
  }

  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  Finally finally_;
  std::vector<Napi::ObjectReference> pins_;
  Status status_;
};

}  // namespace napi
}  // namespace tempered
