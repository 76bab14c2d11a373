// A Promise-returning unit of work off the main thread (sharp's pattern): arguments are
// parsed into plain C++ values before the task is queued, `work` runs on a libuv worker
// thread and touches no JS value, `done` builds the JS result on the main thread.
// JS objects the work needs (the model, the data set) are pinned until it ends.
#pragma once

#include <napi.h>

#include <functional>
#include <string>
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

  // Queues the task and returns its promise. `finally` runs when the work ends, also when
  // the task cannot be queued (then the error propagates to the caller).
  static Napi::Promise Start(Napi::Env env, Work work, Done done, Finally finally,
                             const std::vector<Napi::Object>& pins) {
    Task* task = nullptr;
    try {
      task = new Task(env, std::move(work), std::move(done), finally, pins);
      Napi::Promise promise = task->deferred_.Promise();
      task->Queue();
      return promise;
    } catch (...) {
      delete task;
      if (finally) finally();
      throw;
    }
  }

  // Runs on the main thread when the work ends, also while a worker thread's environment
  // is being torn down (the worker exited or was terminated mid-call). Then every call
  // into JS fails, and an exception escaping here would terminate the process: nothing
  // escapes, and a promise no one can observe any more is left unsettled.
  void OnWorkComplete(Napi::Env env, napi_status /*status*/) override {
    if (finally_) finally_();
    try {
      settle(env);
    } catch (...) {
    }
    delete this;
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

 private:
  Task(Napi::Env env, Work work, Done done, Finally finally, const std::vector<Napi::Object>& pins)
      : Napi::AsyncWorker(env, "tempered"),
        deferred_(Napi::Promise::Deferred::New(env)),
        caller_(Napi::Persistent(Napi::Error::New(env, "").Value())),
        work_(std::move(work)),
        done_(std::move(done)),
        finally_(std::move(finally)) {
    for (const auto& o : pins) pins_.push_back(Napi::Persistent(o));
  }

  void settle(Napi::Env env) {
    Napi::HandleScope scope(env);
    if (!status_.ok()) return reject(status_error(env, status_));
    Napi::Value result;
    try {
      result = done_ ? done_(env) : env.Undefined();
    } catch (const Napi::Error& e) {
      return reject(e);
    } catch (const std::exception& e) {
      return reject(
          plain_error(env, std::string("internal error: ") + e.what(), status_code_name(StatusCode::kInternal)));
    }
    deferred_.Resolve(result);
  }

  // Rejects with `error`, its stack replaced by the caller's (captured when the call was
  // made): the work itself ran on no JavaScript stack.
  void reject(const Napi::Error& error) {
    Napi::Value value = error.Value();
    if (value.IsObject()) {
      try {
        Napi::Value frames = caller_.Value().Get("stack");
        if (frames.IsString()) {
          std::string stack = frames.As<Napi::String>().Utf8Value();
          const size_t newline = stack.find('\n');
          const std::string head = value.As<Napi::Object>().Get("name").ToString().Utf8Value() + ": " + error.Message();
          value.As<Napi::Object>().Set("stack", head + (newline == std::string::npos ? "" : stack.substr(newline)));
        }
      } catch (const Napi::Error&) {
        // A user's Error.prepareStackTrace threw: keep the error as it is.
      }
    }
    deferred_.Reject(value);
  }

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference caller_;
  Work work_;
  Done done_;
  Finally finally_;
  std::vector<Napi::ObjectReference> pins_;
  Status status_;
};

}  // namespace napi
}  // namespace tempered
