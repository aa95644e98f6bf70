// safetensors reading (mmap, strict header validation), checkpoint directories and writing
// (spec/model.md section 3.1).
#include "common/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace ds {

namespace fs = std::filesystem;
using nlohmann::json;

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

// Headers larger than this are refused (the Python library's limit is 100 MB as well).
constexpr uint64_t kMaxHeader = 100ull << 20;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw CheckpointError(path + ": " + what);
}

// Non-negative integer JSON value that fits in uint64_t, else nullopt.
std::optional<uint64_t> as_u64(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return uint64_t(v.get<int64_t>());
  return std::nullopt;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw CheckpointError(p.string() + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  const uint64_t size = uint64_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, "truncated: " + std::to_string(size) + " bytes, need at least 8 for the header length");
  }
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (m == MAP_FAILED) fail(path, std::string("mmap failed: ") + std::strerror(err));
  f->map_ = m;
  f->map_size_ = size;
  const auto* base = static_cast<const uint8_t*>(m);

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | base[i];
  if (n > size - 8)
    fail(path, "header length " + std::to_string(n) + " exceeds the file size " + std::to_string(size) +
                   " (truncated or corrupt file)");
  if (n > kMaxHeader) fail(path, "header length " + std::to_string(n) + " exceeds 100 MiB");
  if (n < 2) fail(path, "header length " + std::to_string(n) + " is too small for a JSON object");
  const char* hb = reinterpret_cast<const char*>(base + 8);
  json header = json::parse(hb, hb + n, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) fail(path, "header is not valid JSON");
  if (!header.is_object()) fail(path, "header is not a JSON object");

  const uint64_t blob = size - 8 - n;
  const uint8_t* data = base + 8 + n;
  struct Span {
    uint64_t b, e;
    std::string name;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (v.is_null()) continue;
      if (!v.is_object()) fail(path, "__metadata__ is not an object");
      for (auto m2 = v.begin(); m2 != v.end(); ++m2) {
        if (!m2.value().is_string()) fail(path, "__metadata__ value '" + m2.key() + "' is not a string");
        f->metadata_[m2.key()] = m2.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!v.is_object()) fail(path, where + ": entry is not an object");
    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) fail(path, where + ": missing or non-string 'dtype'");
    auto dtype = dtype_from_name(dt->get<std::string>());
    if (!dtype) fail(path, where + ": unknown dtype '" + dt->get<std::string>() + "'");
    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array()) fail(path, where + ": missing or non-array 'shape'");
    TensorView t;
    t.name = name;
    t.dtype = *dtype;
    t.file = path;
    uint64_t numel = 1;
    bool overflow = false;
    for (const json& d : *sh) {
      auto dv = as_u64(d);
      if (!dv) fail(path, where + ": shape entries must be non-negative integers");
      if (*dv > uint64_t(std::numeric_limits<int64_t>::max())) fail(path, where + ": shape entry too large");
      if (*dv != 0 && numel > std::numeric_limits<uint64_t>::max() / *dv) overflow = true;
      numel *= *dv;
      t.shape.push_back(int64_t(*dv));
    }
    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      fail(path, where + ": 'data_offsets' must be an array of two integers");
    auto b = as_u64((*off)[0]), e = as_u64((*off)[1]);
    if (!b || !e) fail(path, where + ": 'data_offsets' must be non-negative integers");
    if (*b > *e) fail(path, where + ": data_offsets begin " + std::to_string(*b) + " > end " + std::to_string(*e));
    if (*e > blob)
      fail(path, where + ": data_offsets end " + std::to_string(*e) + " is past the data blob (" +
                     std::to_string(blob) + " bytes; truncated file?)");
    const uint64_t es = dtype_size(*dtype);
    if (overflow || numel > std::numeric_limits<uint64_t>::max() / es || numel * es != *e - *b)
      fail(path, where + ": shape x dtype size does not match the data_offsets span of " +
                     std::to_string(*e - *b) + " bytes");
    t.data = data + *b;
    t.nbytes = size_t(*e - *b);
    spans.push_back({*b, *e, name});
    f->tensors_.emplace(name, std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.b != b.b ? a.b < b.b : a.e < b.e;
  });
  uint64_t end = 0;
  const std::string* last = nullptr;
  for (const Span& s : spans) {
    if (s.b == s.e) continue;  // empty tensors occupy no bytes
    if (last && s.b < end) fail(path, "tensor '" + s.name + "' overlaps tensor '" + *last + "'");
    end = s.e;
    last = &s.name;
  }
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

Checkpoint Checkpoint::open(const std::string& dir) {
  Checkpoint ck;
  ck.dir_ = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw CheckpointError("checkpoint directory " + dir + " does not exist");
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single = fs::path(dir) / "model.safetensors";
  if (fs::exists(index_path, ec)) {
    const std::string ip = index_path.string();
    json idx = json::parse(read_text(index_path), nullptr, false);
    if (idx.is_discarded() || !idx.is_object()) fail(ip, "not valid JSON");
    auto wm = idx.find("weight_map");
    if (wm == idx.end() || !wm->is_object()) fail(ip, "missing object 'weight_map'");
    std::map<std::string, std::set<std::string>> by_shard;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string()) fail(ip, "weight_map entry '" + it.key() + "' is not a string");
      const std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        fail(ip, "weight_map entry '" + it.key() + "' names an invalid shard file '" + shard + "'");
      by_shard[shard].insert(it.key());
    }
    if (by_shard.empty()) fail(ip, "weight_map is empty");
    for (const auto& [shard, names] : by_shard) {
      const fs::path sp = fs::path(dir) / shard;
      if (!fs::exists(sp, ec))
        fail(ip, "shard " + shard + " (holding tensor '" + *names.begin() + "') does not exist in " + dir);
      auto file = SafetensorsFile::open(sp.string());
      for (const std::string& n : names)
        if (!file->tensors().count(n))
          fail(sp.string(), "tensor '" + n + "' named by model.safetensors.index.json is missing from this shard");
      for (const auto& [n, t] : file->tensors())
        if (!names.count(n))
          fail(sp.string(), "tensor '" + n + "' is not assigned to this shard by model.safetensors.index.json");
      for (const auto& [n, t] : file->tensors()) ck.index_[n] = &t;
      ck.files_.push_back(std::move(file));
    }
  } else if (fs::exists(single, ec)) {
    auto file = SafetensorsFile::open(single.string());
    for (const auto& [n, t] : file->tensors()) ck.index_[n] = &t;
    ck.files_.push_back(std::move(file));
  } else {
    throw CheckpointError("no weights in " + dir +
                          ": expected model.safetensors.index.json (+ shards) or model.safetensors");
  }
  return ck;
}

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorView& Checkpoint::get(const std::string& name) const {
  const TensorView* t = find(name);
  if (!t) throw CheckpointError("missing tensor " + name + " in " + dir_);
  return *t;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [n, t] : index_) out.push_back(n);
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();  // std::map-backed: keys are written sorted
  uint64_t off = 0;
  std::set<std::string> seen;
  for (const TensorData& t : tensors) {
    if (t.name == "__metadata__" || !seen.insert(t.name).second)
      throw CheckpointError(path + ": duplicate or reserved tensor name '" + t.name + "'");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw CheckpointError(path + ": tensor '" + t.name + "' has a negative dimension");
      numel *= uint64_t(d);
    }
    if (numel * dtype_size(t.dtype) != t.bytes.size())
      throw CheckpointError(path + ": tensor '" + t.name + "' has " + std::to_string(t.bytes.size()) +
                            " bytes, shape x dtype size needs " + std::to_string(numel * dtype_size(t.dtype)));
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string h = header.dump();
  while (h.size() % 8 != 0) h.push_back(' ');
  std::FILE* fp = std::fopen(path.c_str(), "wb");
  if (!fp) throw CheckpointError(path + ": cannot create: " + std::strerror(errno));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(h.size()) >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, fp) == 8 && std::fwrite(h.data(), 1, h.size(), fp) == h.size();
  for (const TensorData& t : tensors)
    ok = ok && (t.bytes.empty() || std::fwrite(t.bytes.data(), 1, t.bytes.size(), fp) == t.bytes.size());
  ok = (std::fclose(fp) == 0) && ok;
  if (!ok) throw CheckpointError(path + ": write failed: " + std::strerror(errno));
}

}  // namespace ds
