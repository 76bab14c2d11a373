// An owning handle to a buffer on a backend's device.
#pragma once

#include <cstddef>
#include <utility>

#include "tempered/backend.h"

namespace tempered {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      backend_ = o.backend_;
      ptr_ = o.ptr_;
      count_ = o.count_;
      o.ptr_ = nullptr;
      o.count_ = 0;
    }
    return *this;
  }

  // (Re)allocates `count` elements; previous contents are lost.
  Status allocate(Backend* backend, size_t count) {
    reset();
    backend_ = backend;
    void* p = nullptr;
    TEMPERED_TRY(backend->alloc(count * sizeof(T), &p));
    ptr_ = static_cast<T*>(p);
    count_ = count;
    return Status::Ok();
  }
  // Grows to at least `count` elements (contents lost when it grows).
  Status reserve(Backend* backend, size_t count) {
    if (count <= count_ && backend == backend_) return Status::Ok();
    return allocate(backend, count);
  }
  void reset() {
    if (ptr_ != nullptr && backend_ != nullptr) backend_->release(ptr_);
    ptr_ = nullptr;
    count_ = 0;
  }

  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  Backend* backend_ = nullptr;
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

}  // namespace tempered
