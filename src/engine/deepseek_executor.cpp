// ModelExecutor over the CPU DeepseekV32 model (kept apart so engine tests need no model code).
#include <stdexcept>

#include "engine/engine.h"
#include "model/deepseek_v32.h"

namespace ds {

namespace {
class DeepseekExecutor final : public ModelExecutor {
 public:
  explicit DeepseekExecutor(std::shared_ptr<DeepseekV32> m) : model_(std::move(m)) {
    if (!model_) throw std::invalid_argument("make_deepseek_executor: model is null");
  }
  void init_kv(int page_size, int64_t num_pages) override { model_->init_kv_pool(page_size, num_pages); }
  Logits forward(const BatchPlan& plan) override { return model_->forward(plan); }
  int vocab_size() const override { return model_->config().vocab_size; }

 private:
  std::shared_ptr<DeepseekV32> model_;
};
}  // namespace

std::unique_ptr<ModelExecutor> make_deepseek_executor(std::shared_ptr<DeepseekV32> model) {
  return std::make_unique<DeepseekExecutor>(std::move(model));
}

}  // namespace ds
