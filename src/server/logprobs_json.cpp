#include "server/logprobs_json.h"

#include <algorithm>

namespace ds {

using json = nlohmann::json;

namespace {
std::string token_text(const Tokenizer& tok, int32_t id) {
  const int32_t one[1] = {id};
  return tok.decode(one, false);
}
json bytes_of(const Tokenizer& tok, int32_t id) {
  json b = json::array();
  for (unsigned char c : tok.token_bytes(id)) b.push_back(int(c));
  return b;
}
}  // namespace

json chat_logprob_entry(const Tokenizer& tok, const TokenEvent& ev) {
  json top = json::array();
  for (const auto& [id, lp] : ev.top_logprobs)
    top.push_back({{"token", token_text(tok, id)}, {"bytes", bytes_of(tok, id)}, {"logprob", lp}});
  return json{{"token", token_text(tok, ev.token)},
              {"bytes", bytes_of(tok, ev.token)},
              {"logprob", ev.logprob.value_or(0.0f)},
              {"top_logprobs", std::move(top)}};
}

void CompletionLogprobs::add(const Tokenizer& tok, const TokenEvent& ev, size_t text_offset) {
  tokens_.push_back(token_text(tok, ev.token));
  logprobs_.push_back(ev.logprob.value_or(0.0f));
  json top = json::object();
  for (const auto& [id, lp] : ev.top_logprobs) {
    const std::string k = token_text(tok, id);
    if (!top.contains(k)) top[k] = lp;  // two ids may decode alike: keep the likelier
  }
  top_.push_back(std::move(top));
  offsets_.push_back(text_offset);
}

void CompletionLogprobs::add_prompt(const Tokenizer& tok, const std::vector<PromptTokenLogprob>& prompt) {
  for (const PromptTokenLogprob& e : prompt) {
    tokens_.push_back(token_text(tok, e.token));
    if (!e.logprob) {
      logprobs_.push_back(nullptr);
      top_.push_back(nullptr);
    } else {
      logprobs_.push_back(*e.logprob);
      json top = json::object();
      for (const auto& [id, lp] : e.top) {
        const std::string k = token_text(tok, id);
        if (!top.contains(k)) top[k] = lp;
      }
      top_.push_back(std::move(top));
    }
    const size_t i = prompt_pos_++;
    offsets_.push_back(i < prompt_offsets_.size() ? prompt_offsets_[i]
                                                  : (prompt_offsets_.empty() ? 0 : prompt_offsets_.back()));
  }
}

std::vector<size_t> prompt_text_offsets(const std::shared_ptr<const Tokenizer>& tok, const std::vector<int32_t>& ids,
                                        size_t added_ids, bool skip_special, size_t text_size) {
  IncrementalDetokenizer d(tok, skip_special);
  std::vector<size_t> out;
  out.reserve(ids.size());
  size_t off = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    out.push_back(std::min(off, text_size));
    if (i >= added_ids) off += d.push(ids[i]).size();
  }
  return out;
}

json CompletionLogprobs::to_json() const {
  return nlohmann::json{{"tokens", tokens_}, {"token_logprobs", logprobs_}, {"top_logprobs", top_}, {"text_offset", offsets_}};
}

json CompletionLogprobs::take() {
  nlohmann::json j = to_json();
  tokens_ = logprobs_ = top_ = offsets_ = nlohmann::json::array();
  return j;
}

json GenerateLogprobs::triple(const Tokenizer& tok, std::optional<float> lp, int32_t id) const {
  return json::array({lp ? json(*lp) : json(nullptr), id, with_text_ ? json(token_text(tok, id)) : json(nullptr)});
}

void GenerateLogprobs::add_prompt(const Tokenizer& tok, const std::vector<PromptTokenLogprob>& prompt) {
  for (const PromptTokenLogprob& e : prompt) {
    in_.push_back(triple(tok, e.logprob, e.token));
    if (!e.logprob) {
      in_top_.push_back(nullptr);
      continue;
    }
    json top = json::array();
    for (const auto& [id, lp] : e.top) top.push_back(triple(tok, lp, id));
    in_top_.push_back(std::move(top));
  }
}

void GenerateLogprobs::add_last_prompt_token(const Tokenizer& tok, int32_t id) {
  in_.push_back(triple(tok, std::nullopt, id));
  in_top_.push_back(nullptr);
}

void GenerateLogprobs::add_output(const Tokenizer& tok, const TokenEvent& ev) {
  out_.push_back(triple(tok, ev.logprob, ev.token));
  json top = json::array();
  for (const auto& [id, lp] : ev.top_logprobs) top.push_back(triple(tok, lp, id));
  out_top_.push_back(std::move(top));
}

void GenerateLogprobs::write(json& meta_info) const {
  meta_info["input_token_logprobs"] = in_;
  meta_info["output_token_logprobs"] = out_;
  meta_info["input_top_logprobs"] = in_top_;
  meta_info["output_top_logprobs"] = out_top_;
}

}  // namespace ds
