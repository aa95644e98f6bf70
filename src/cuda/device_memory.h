// Device and pinned host memory owned by the CUDA model runner (internal to src/cuda; includes the
// CUDA runtime API header, so only src/cuda and tests/gpu include it).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "kernels/cuda_check.h"

namespace ds::cuda {

/// One cudaMalloc'd block of `bytes` (at least 256-byte aligned). Grows with ensure() (contents
/// are not kept). Move-only.
class DevMem {
 public:
  DevMem() = default;
  explicit DevMem(size_t bytes) { ensure(bytes); }
  ~DevMem() { release(); }
  DevMem(DevMem&& o) noexcept : p_(std::exchange(o.p_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DevMem& operator=(DevMem&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  DevMem(const DevMem&) = delete;
  DevMem& operator=(const DevMem&) = delete;

  /// Makes the block at least `bytes` long (a new allocation when it grows; old contents lost).
  void ensure(size_t bytes) {
    if (bytes <= bytes_ && p_) return;
    release();
    DS_CUDA_CHECK(cudaMalloc(&p_, bytes ? bytes : 1));
    bytes_ = bytes;
  }
  void release() {
    if (p_) cudaFree(p_);
    p_ = nullptr;
    bytes_ = 0;
  }
  template <class T = uint8_t>
  T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

/// Page-locked host memory (cudaMallocHost) for staging uploads and step inputs.
class PinnedMem {
 public:
  PinnedMem() = default;
  ~PinnedMem() { release(); }
  PinnedMem(const PinnedMem&) = delete;
  PinnedMem& operator=(const PinnedMem&) = delete;
  void ensure(size_t bytes) {
    if (bytes <= bytes_ && p_) return;
    release();
    DS_CUDA_CHECK(cudaMallocHost(&p_, bytes ? bytes : 1));
    bytes_ = bytes;
  }
  void release() {
    if (p_) cudaFreeHost(p_);
    p_ = nullptr;
    bytes_ = 0;
  }
  template <class T = uint8_t>
  T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

/// Bump allocator over one DevMem for the activations of one forward step: reset(), then take()
/// aligned pieces; if a step needs more than the block, the caller measures with a dry pass
/// (base == nullptr) and grows the block first.
class StepArena {
 public:
  /// Starts a pass over `mem` (nullptr: a dry pass that only counts bytes).
  void reset(DevMem* mem) { mem_ = mem, used_ = 0; }
  template <class T>
  T* take(int64_t count) {
    const size_t off = used_;
    used_ += (size_t(count > 0 ? count : 1) * sizeof(T) + 255) / 256 * 256;
    return mem_ ? reinterpret_cast<T*>(mem_->as<uint8_t>() + off) : nullptr;
  }
  size_t used() const { return used_; }

 private:
  DevMem* mem_ = nullptr;
  size_t used_ = 0;
};

}  // namespace ds::cuda
