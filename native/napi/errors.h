// JS errors with a `code`, as better-sqlite3 does: TypeError for a value of the wrong
// type, RangeError for a value of the right type that is out of range (a wrong length, a
// non-finite hyper-parameter), Error for everything else. Every error thrown or rejected
// by the addon comes from here.
#pragma once

#include <napi.h>

#include <string>
#include <utility>

#include "tempered/status.h"

namespace tempered {
namespace napi {

// Codes of argument errors detected in the N-API layer (backend failures use
// status_code_name()).
constexpr const char* kInvalidType = "TEMPERED_INVALID_TYPE";      // TypeError
constexpr const char* kInvalidLength = "TEMPERED_INVALID_LENGTH";  // RangeError
constexpr const char* kOutOfRange = "TEMPERED_OUT_OF_RANGE";       // RangeError
constexpr const char* kNotFinite = "TEMPERED_NOT_FINITE";          // RangeError
constexpr const char* kBusy = "TEMPERED_BUSY";                     // Error
constexpr const char* kDisposed = "TEMPERED_DISPOSED";             // Error
constexpr const char* kBackendMismatch = "TEMPERED_BACKEND_MISMATCH";

inline Napi::Error with_code(Napi::Error error, const char* code) {
  error.Set("code", Napi::String::New(error.Env(), code));
  return error;
}

inline Napi::Error type_error(Napi::Env env, const std::string& message, const char* code = kInvalidType) {
  return with_code(Napi::TypeError::New(env, message), code);
}

inline Napi::Error range_error(Napi::Env env, const std::string& message, const char* code = kOutOfRange) {
  return with_code(Napi::RangeError::New(env, message), code);
}

inline Napi::Error plain_error(Napi::Env env, const std::string& message, const char* code) {
  return with_code(Napi::Error::New(env, message), code);
}

inline Napi::Error status_error(Napi::Env env, const Status& status) {
  const char* code = status_code_name(status.code());
  if (status.code() == StatusCode::kInvalidArgument) return range_error(env, status.message(), code);
  return plain_error(env, status.message(), code);
}

// Runs an entry point, turning stray C++ exceptions into coded JS errors so that nothing
// unwinds into Node.
template <typename Fn>
Napi::Value guarded(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw plain_error(env, "out of memory", status_code_name(StatusCode::kOutOfMemory));
  } catch (const std::exception& e) {
    throw plain_error(env, std::string("internal error: ") + e.what(), status_code_name(StatusCode::kInternal));
  }
}

// The same for an entry point that returns a Promise: every refusal, of the arguments or of
// the object's state (busy, disposed), rejects the promise instead of throwing, so that
// `.catch()` sees it.
template <typename Fn>
Napi::Value guarded_promise(Napi::Env env, Fn&& fn) {
  try {
    return guarded(env, std::forward<Fn>(fn));
  } catch (const Napi::Error& e) {
    Napi::Promise::Deferred refused = Napi::Promise::Deferred::New(env);
    refused.Reject(e.Value());
    return refused.Promise();
  }
}

}  // namespace napi
}  // namespace tempered
