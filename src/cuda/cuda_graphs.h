// CUDA graphs for decode batches (issue 8; docs/cuda.md "CUDA graphs"): which batch sizes are
// captured (SGLang's --cuda-graph-max-bs / --cuda-graph-bs / --disable-cuda-graph) and the set of
// captured, instantiated graphs of one stream. Internal to src/cuda (includes the CUDA runtime API).
#pragma once
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ds::cuda {

/// Graph options of the CUDA runner.
struct CudaGraphOptions {
  bool disable = false;   ///< --disable-cuda-graph: every step runs eagerly
  int max_bs = 0;         ///< --cuda-graph-max-bs; 0: default_cuda_graph_max_bs(device memory)
  std::vector<int> bs;    ///< --cuda-graph-bs; empty: cuda_graph_batch_sizes' generated list
  int max_context = 0;    ///< positions the captured page tables cover (the engine's --context-length)
};

/// SGLang's default --cuda-graph-max-bs by device memory (spec/serving.md section 5, tp < 4):
/// < 20 GiB 8; < 35 GiB 24; < 60 GiB 32; < 160 GiB 256; else 512.
int default_cuda_graph_max_bs(double device_gib);

/// The captured sizes: `o.bs` if given (sorted, deduplicated, each in [1, 4096]), else SGLang's list
/// 1, 2, 4, 8, 12, 16..256 step 8, 272..496 step 16, 512.. step 32, all cut at max_bs (max_bs itself
/// is appended when the list skips it). Empty when o.disable. Throws std::invalid_argument naming
/// --cuda-graph-bs / --cuda-graph-max-bs for sizes < 1 or > 4096.
std::vector<int> cuda_graph_batch_sizes(const CudaGraphOptions& o, int default_max_bs);

/// Parses --cuda-graph-bs: integers separated by commas or spaces ("1,2,4" or "1 2 4"). Throws
/// std::invalid_argument naming the flag on anything else.
std::vector<int> parse_cuda_graph_bs(const std::string& s);

/// Instantiated graphs keyed by batch size, replayed on one stream. Not thread-safe except the
/// counters (read from the metrics thread).
class GraphSet {
 public:
  GraphSet() = default;
  ~GraphSet();
  GraphSet(const GraphSet&) = delete;
  GraphSet& operator=(const GraphSet&) = delete;

  /// Captures the launches `enqueue()` makes on `stream` (cudaStreamCaptureModeThreadLocal; the
  /// caller has run the same enqueue once eagerly so no first-call attribute setting or allocation
  /// happens inside) and instantiates them as the graph of batch `bs` (replacing an old one).
  /// On a capture error the capture is ended and std::runtime_error names the batch size.
  void capture(int bs, const std::function<void()>& enqueue, cudaStream_t stream);
  /// Smallest captured size >= n; 0 when none.
  int pick(int n) const;
  /// Launches the graph of size `bs` (which must be captured) on `stream` and counts the replay.
  void replay(int bs, cudaStream_t stream);
  /// Destroys every graph (the KV pool or step buffers they point at are being replaced).
  void clear();
  std::vector<int> sizes() const;
  uint64_t replays() const { return replays_.load(); }

 private:
  std::map<int, cudaGraphExec_t> exec_;
  std::atomic<uint64_t> replays_{0};
};

}  // namespace ds::cuda
