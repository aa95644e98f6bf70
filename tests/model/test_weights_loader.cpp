// Loader validation (spec/model.md 3.2b): missing, unexpected, misshaped and wrong-dtype tensors are
// CheckpointErrors naming the tensor; MTP tensors are bound only with_mtp.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <vector>

#include "common/safetensors.h"
#include "model/deepseek_v32.h"
#include "model/weights.h"
#include "tools/make_model.h"

namespace fs = std::filesystem;
using namespace ds;

namespace {

// Removes tiny-a and its variants when the test binary exits.
struct Cleanup {
  std::vector<std::string> dirs;
  ~Cleanup() {
    for (auto& d : dirs) {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  }
};
Cleanup& cleanup() {
  static Cleanup c;
  return c;
}

const std::string& base_dir() {
  static std::string dir = [] {
    fs::path d = fs::temp_directory_path() / ("ds_loader_test_" + std::to_string(::getpid()));
    make_model("tiny-a", d.string());
    cleanup().dirs.push_back(d.string());
    return d.string();
  }();
  return dir;
}

// Copies tiny-a into a one-file checkpoint after `mutate` edits its tensor list.
std::string variant(const std::string& name, const std::function<void(std::vector<TensorData>&)>& mutate) {
  Checkpoint ck = Checkpoint::open(base_dir());
  std::vector<TensorData> ts;
  for (const auto& n : ck.names()) {
    const TensorView& t = ck.get(n);
    ts.push_back(TensorData{n, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
  }
  mutate(ts);
  fs::path d = fs::path(base_dir() + "_" + name);
  fs::create_directories(d);
  cleanup().dirs.push_back(d.string());
  fs::copy_file(fs::path(base_dir()) / "config.json", d / "config.json", fs::copy_options::overwrite_existing);
  write_safetensors((d / "model.safetensors").string(), ts);
  return d.string();
}

std::string load_error(const std::string& dir) {
  try {
    DeepseekV32::load(dir, Numerics::Official);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kNorm = "model.layers.1.self_attn.kv_a_layernorm.weight";

}  // namespace

TEST(WeightsLoader, LoadsTinyAWithAndWithoutMtp) {
  auto m = DeepseekV32::load(base_dir(), Numerics::Official, true);
  EXPECT_EQ(m->config().hidden_size, 256);
  Checkpoint ck = Checkpoint::open(base_dir());
  ModelWeights w;
  bind_weights(ck, m->config(), true, true, w);
  ASSERT_EQ(w.mtp.size(), 1u);
  EXPECT_EQ(w.mtp[0].eh_proj.cols, 512);
  EXPECT_TRUE(w.layers[0].kv_a.fp8());
  EXPECT_EQ(w.layers[0].kv_a.rows, 192);  // the partial FP8 row block (spec 10.1)
  ModelWeights w2;
  bind_weights(ck, m->config(), false, true, w2);
  EXPECT_TRUE(w2.mtp.empty());
  EXPECT_FALSE(w2.layers[0].moe);
  EXPECT_TRUE(w2.layers[1].moe);
  EXPECT_EQ(w2.layers[1].experts.size(), 8u);
}

TEST(WeightsLoader, MissingTensorIsNamed) {
  auto dir = variant("missing", [](auto& ts) {
    std::erase_if(ts, [](const TensorData& t) { return t.name == kNorm; });
  });
  auto msg = load_error(dir);
  EXPECT_NE(msg.find("missing tensor"), std::string::npos) << msg;
  EXPECT_NE(msg.find(kNorm), std::string::npos) << msg;
}

TEST(WeightsLoader, UnexpectedTensorIsNamed) {
  auto dir = variant("extra", [](auto& ts) {
    ts.push_back(TensorData{"model.layers.0.self_attn.q_proj.weight", DType::F32, {2}, std::vector<uint8_t>(8, 0)});
  });
  auto msg = load_error(dir);
  EXPECT_NE(msg.find("unexpected tensor model.layers.0.self_attn.q_proj.weight"), std::string::npos) << msg;
}

TEST(WeightsLoader, MisshapedTensorIsNamed) {
  auto dir = variant("shape", [](auto& ts) {
    for (auto& t : ts)
      if (t.name == kNorm) t.shape = {2, 64};  // same bytes, wrong shape
  });
  auto msg = load_error(dir);
  EXPECT_NE(msg.find(std::string("tensor ") + kNorm), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2, 64]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected [128]"), std::string::npos) << msg;
}

TEST(WeightsLoader, WrongDtypeIsNamed) {
  const std::string q = "model.layers.0.self_attn.q_b_proj.weight";
  auto dir = variant("dtype", [&](auto& ts) {
    for (auto& t : ts)
      if (t.name == q) t.dtype = DType::U8;  // same bytes, FP8 slot now U8
  });
  auto msg = load_error(dir);
  EXPECT_NE(msg.find("tensor " + q), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected F8_E4M3"), std::string::npos) << msg;
}

TEST(WeightsLoader, F32NormsAreAccepted) {
  auto dir = variant("f32norm", [](auto& ts) {
    for (auto& t : ts)
      if (t.name == kNorm) {
        std::vector<uint8_t> b(t.bytes.size() * 2);
        for (size_t i = 0; i < t.bytes.size() / 2; ++i) {
          uint16_t h;
          std::memcpy(&h, t.bytes.data() + 2 * i, 2);
          float f = bf16_to_f32(h);
          std::memcpy(b.data() + 4 * i, &f, 4);
        }
        t.dtype = DType::F32;
        t.bytes = b;
      }
  });
  EXPECT_EQ(load_error(dir), "(no error)");
}
