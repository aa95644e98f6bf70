// CUDA graph sizes and the captured graph set (see cuda_graphs.h).
#include "cuda/cuda_graphs.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "kernels/cuda_check.h"

namespace ds::cuda {

int default_cuda_graph_max_bs(double gib) {
  if (gib < 20) return 8;
  if (gib < 35) return 24;
  if (gib < 60) return 32;
  if (gib < 160) return 256;
  return 512;
}

std::vector<int> cuda_graph_batch_sizes(const CudaGraphOptions& o, int default_max_bs) {
  if (o.disable) return {};
  std::vector<int> out;
  if (!o.bs.empty()) {
    for (int b : o.bs)
      if (b < 1 || b > 4096)
        throw std::invalid_argument("--cuda-graph-bs: size " + std::to_string(b) + " outside [1, 4096]");
    out = o.bs;
  } else {
    const int mx = o.max_bs > 0 ? o.max_bs : default_max_bs;
    if (o.max_bs < 0 || mx > 4096)
      throw std::invalid_argument("--cuda-graph-max-bs " + std::to_string(o.max_bs) + ": must be in [1, 4096]");
    std::vector<int> gen = {1, 2, 4, 8, 12};
    for (int b = 16; b <= 256; b += 8) gen.push_back(b);
    for (int b = 272; b < 512; b += 16) gen.push_back(b);
    for (int b = 512; b <= 4096; b += 32) gen.push_back(b);
    for (int b : gen)
      if (b <= mx) out.push_back(b);
    if (out.empty() || out.back() != mx) out.push_back(mx);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<int> parse_cuda_graph_bs(const std::string& s) {
  std::string t = s;
  std::replace(t.begin(), t.end(), ',', ' ');
  std::istringstream in(t);
  std::vector<int> out;
  std::string tok;
  while (in >> tok) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != tok.size()) throw std::invalid_argument("--cuda-graph-bs: '" + tok + "' is not an integer");
    out.push_back(v);
  }
  return out;
}

GraphSet::~GraphSet() { clear(); }

void GraphSet::clear() {
  for (auto& [bs, e] : exec_) cudaGraphExecDestroy(e);
  exec_.clear();
}

void GraphSet::capture(int bs, const std::function<void()>& enqueue, cudaStream_t stream) {
  const std::string what = "CUDA graph capture of decode batch " + std::to_string(bs);
  DS_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  cudaGraph_t g = nullptr;
  try {
    enqueue();
  } catch (const std::exception& e) {
    cudaStreamEndCapture(stream, &g);
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    throw std::runtime_error(what + ": " + e.what());
  }
  check(cudaStreamEndCapture(stream, &g), what.c_str());
  cudaGraphExec_t ge = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&ge, g, 0);
  cudaGraphDestroy(g);
  check(err, what.c_str());
  auto it = exec_.find(bs);
  if (it != exec_.end()) cudaGraphExecDestroy(it->second);
  exec_[bs] = ge;
}

int GraphSet::pick(int n) const {
  auto it = exec_.lower_bound(n);
  return it == exec_.end() ? 0 : it->first;
}

void GraphSet::replay(int bs, cudaStream_t stream) {
  auto it = exec_.find(bs);
  if (it == exec_.end()) throw std::logic_error("GraphSet::replay: no graph for batch " + std::to_string(bs));
  DS_CUDA_CHECK(cudaGraphLaunch(it->second, stream));
  ++replays_;
}

std::vector<int> GraphSet::sizes() const {
  std::vector<int> out;
  for (const auto& [bs, e] : exec_) out.push_back(bs);
  return out;
}

}  // namespace ds::cuda
