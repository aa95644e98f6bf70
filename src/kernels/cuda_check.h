// Error checking for CUDA runtime calls in deepserve's CUDA sources (docs/cuda.md). Host-only:
// include from .cu or .cpp files that already see cuda_runtime_api.h.
#pragma once
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace ds::cuda {

/// Throws std::runtime_error naming `what` (the call or kernel, file:line) and the CUDA error
/// string when `e` is not cudaSuccess.
inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(e) +
                             " (" + cudaGetErrorString(e) + ")");
}

}  // namespace ds::cuda

#define DS_CUDA_STR2(x) #x
#define DS_CUDA_STR(x) DS_CUDA_STR2(x)
/// Checks a CUDA runtime call; throws std::runtime_error with the call text and location.
#define DS_CUDA_CHECK(call) ::ds::cuda::check((call), #call " at " __FILE__ ":" DS_CUDA_STR(__LINE__))
/// Checks the last launch error (call right after a <<<>>> launch).
#define DS_CUDA_CHECK_LAUNCH(name) \
  ::ds::cuda::check(cudaGetLastError(), name " launch at " __FILE__ ":" DS_CUDA_STR(__LINE__))
