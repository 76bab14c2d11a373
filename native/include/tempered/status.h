// Status: how every native operation reports failure. Nothing in the engine throws
// across a module boundary or calls exit(); the N-API layer turns a Status into a JS
// error whose `code` is status_code_name(code).
#pragma once

#include <string>
#include <utility>

namespace tempered {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // a caller passed something the operation cannot take
  kOutOfMemory,         // host or device allocation failed
  kBackendUnavailable,  // the backend asked for cannot run here
  kDeviceError,         // the device (CUDA driver, kernel launch, cuDNN, cuBLAS) failed
  kInternal,            // a bug: an invariant of the engine did not hold
  kBadArch,             // an architecture spec that does not describe a network the engine runs
  kUnsupported,         // this backend has no implementation of the operation (the caller falls back)
};

inline const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "TEMPERED_OK";
    case StatusCode::kInvalidArgument:
      return "TEMPERED_INVALID_ARGUMENT";
    case StatusCode::kOutOfMemory:
      return "TEMPERED_OUT_OF_MEMORY";
    case StatusCode::kBackendUnavailable:
      return "TEMPERED_BACKEND_UNAVAILABLE";
    case StatusCode::kDeviceError:
      return "TEMPERED_DEVICE_ERROR";
    case StatusCode::kInternal:
      return "TEMPERED_INTERNAL";
    case StatusCode::kBadArch:
      return "TEMPERED_BAD_ARCH";
    case StatusCode::kUnsupported:
      return "TEMPERED_UNSUPPORTED";
  }
  return "TEMPERED_INTERNAL";
}

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status OutOfMemory(std::string m) { return {StatusCode::kOutOfMemory, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kBackendUnavailable, std::move(m)}; }
  static Status DeviceError(std::string m) { return {StatusCode::kDeviceError, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status BadArch(std::string m) { return {StatusCode::kBadArch, std::move(m)}; }
  static Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

}  // namespace tempered

// Propagate a failed Status to the caller.
#define TEMPERED_TRY(expr)                               \
  do {                                                   \
    ::tempered::Status tempered_status_ = (expr);        \
    if (!tempered_status_.ok()) return tempered_status_; \
  } while (0)
