#include "server/logprobs_json.h"

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

void CompletionLogprobs::add(const Tokenizer& tok, const TokenEvent& ev) {
  const std::string t = token_text(tok, ev.token);
  tokens_.push_back(t);
  logprobs_.push_back(ev.logprob.value_or(0.0f));
  json top = json::object();
  for (const auto& [id, lp] : ev.top_logprobs) {
    const std::string k = token_text(tok, id);
    if (!top.contains(k)) top[k] = lp;  // two ids may decode alike: keep the likelier
  }
  top_.push_back(std::move(top));
  offsets_.push_back(offset_);
  offset_ += t.size();
}

json CompletionLogprobs::to_json() const {
  return nlohmann::json{{"tokens", tokens_}, {"token_logprobs", logprobs_}, {"top_logprobs", top_}, {"text_offset", offsets_}};
}

json CompletionLogprobs::take() {
  nlohmann::json j = to_json();
  tokens_ = logprobs_ = top_ = offsets_ = nlohmann::json::array();
  return j;
}

}  // namespace ds
