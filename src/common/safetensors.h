// Reading and writing safetensors files and Hugging Face checkpoint directories
// (spec/model.md section 3.1). Files are mmap'd; tensors are views into the mapping.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/numeric.h"

namespace ds {

/// Error in a checkpoint file or directory; the message names the file and tensor.
struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One tensor inside a mapped safetensors file. `data` points into the mmap (row-major, no padding)
/// and stays valid while the owning file/Checkpoint lives. nbytes == numel * dtype_size(dtype).
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // path of the shard it lives in (for messages)
  int64_t numel() const;
};

/// One mmap'd safetensors file. open() validates the header fully: the 8-byte length, JSON, known
/// dtypes, shape x dtype size == offset span, offsets inside the file, no overlaps; any violation is
/// a CheckpointError naming the file (and tensor). Never reads out of bounds on corrupt input.
class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// A Hugging Face checkpoint directory: `model.safetensors.index.json` + shards, or one
/// `model.safetensors`. Each name in the index must exist in the shard the index names (and vice
/// versa: a shard tensor missing from the index is an error). Throws CheckpointError.
class Checkpoint {
 public:
  static Checkpoint open(const std::string& dir);
  /// The tensor called `name`, or nullptr.
  const TensorView* find(const std::string& name) const;
  /// The tensor called `name`; CheckpointError "missing tensor NAME in DIR" if absent.
  const TensorView& get(const std::string& name) const;
  /// All tensor names, sorted.
  std::vector<std::string> names() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

/// A tensor to write: raw little-endian bytes of `shape` in `dtype`.
struct TensorData {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

/// Writes one safetensors file with tensors in the given order (header keys sorted as the
/// Python library does, data in the given order, 8-byte aligned header padding with spaces).
void write_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace ds
