// The official Hugging Face tensor list of a DeepSeek-V3.2 checkpoint (spec/model.md section 3.2).
// One table used by the loader (missing / misshaped / unused checks) and by `deepserve make-model`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/numeric.h"
#include "model/config.h"

namespace ds {

/// One expected tensor. `fp8` = stored F8_E4M3 with a sibling `<name>_scale_inv` F32 tensor of
/// shape [ceil(rows/128), ceil(cols/128)] (the sibling is listed separately with is_scale = true).
/// `dtype` is the dtype make-model writes; the loader accepts BF16 or F32 for non-FP8 tensors.
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::BF16;
  bool fp8 = false;
  bool is_scale = false;
  bool mtp = false;  // belongs to the MTP layer (index num_hidden_layers)
};

/// Every tensor of the checkpoint for `cfg`, in a stable order (global, then layers 0..L-1, then
/// the MTP layers). FP8 weights are followed by their scale tensor. Includes MTP tensors (mtp=true)
/// when cfg.num_nextn_predict_layers > 0.
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& cfg);

}  // namespace ds
