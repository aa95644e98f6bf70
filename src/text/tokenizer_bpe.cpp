// Byte-level BPE model (see tokenizer_bpe.h).
#include "text/tokenizer_bpe.h"

#include <mutex>
#include <queue>

#include "text/tokenizer.h"
#include "text/tokenizer_bytes.h"

namespace ds {
namespace {

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

BpeModel::BpeModel(const nlohmann::json& model, TokenizerJsonParts& parts, const std::string& file) {
  if (!model.is_object() || model.value("type", std::string()) != "BPE")
    throw TokenizerError(file + ": model.type must be \"BPE\" (byte-level BPE is the only supported model)");
  if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() && model["byte_fallback"].get<bool>())
    throw TokenizerError(file + ": model.byte_fallback=true is not supported");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(k) && model[k].is_string() && !model[k].get<std::string>().empty())
      throw TokenizerError(file + ": model." + k + " is not supported");
  ignore_merges_ = model.value("ignore_merges", false);
  if (!parts.has_vocab) throw TokenizerError(file + ": model.vocab must be an object");
  vocab_.reserve(parts.vocab.size() * 2);
  int32_t max_id = -1;
  for (auto& [tok, id64] : parts.vocab) {
    if (id64 < 0 || id64 > INT32_MAX)
      throw TokenizerError(file + ": model.vocab['" + tok + "'] is not a non-negative 32-bit id");
    int32_t id = static_cast<int32_t>(id64);
    max_id = std::max(max_id, id);
    vocab_.emplace(std::move(tok), id);
  }
  parts.vocab = {};
  id_bytes_.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto& [tok, id] : vocab_) {
    // Tokens that are not pure byte-level text (rare; e.g. specials duplicated into the vocab)
    // decode to their UTF-8 spelling, as HF's ByteLevel decoder does.
    auto raw = tokbytes::unicode_to_bytes(tok);
    id_bytes_[static_cast<size_t>(id)] = raw ? std::move(*raw) : tok;
  }
  const auto& b2u = tokbytes::byte_to_unicode();
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(b2u[b]);
    if (it == vocab_.end())
      throw TokenizerError(file + ": model.vocab lacks the byte-level token for byte " + std::to_string(b));
    byte_id_[b] = it->second;
  }
  if (!parts.has_merges) throw TokenizerError(file + ": model.merges must be an array");
  merges_.reserve(parts.merges.size() * 2);
  int32_t rank = 0;
  std::string ab;
  for (const auto& [a, b] : parts.merges) {
    ab.assign(a);
    ab += b;
    auto ia = vocab_.find(a), ib = vocab_.find(b), ir = vocab_.find(ab);
    if (ia == vocab_.end() || ib == vocab_.end() || ir == vocab_.end())
      throw TokenizerError(file + ": model.merges[" + std::to_string(rank) + "] '" + a + " " + b +
                           "' refers to a token missing from model.vocab");
    // First occurrence wins (a duplicate merge later in the list has a worse rank).
    merges_.emplace(pair_key(ia->second, ib->second), MergeInfo{rank, ir->second});
    ++rank;
  }
  parts.merges = {};
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (word.size() == 1) {
    out.push_back(byte_id_[static_cast<uint8_t>(word[0])]);
    return;
  }
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mu_);
    auto it = cache_.find(std::string(word));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  if (ignore_merges_) {
    auto it = vocab_.find(tokbytes::bytes_to_byte_level(word));
    if (it != vocab_.end()) ids.push_back(it->second);
  }
  if (ids.empty()) merge(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::unique_lock lock(cache_mu_);
    if (cache_.size() >= kCacheMax) cache_.clear();
    cache_.emplace(std::string(word), std::move(ids));
  }
}

void BpeModel::merge(std::string_view word, std::vector<int32_t>& out) const {
  // Symbols form a doubly linked list over the word's bytes; merged-away symbols get len 0.
  struct Sym {
    int32_t id;
    int32_t prev, next;
    int32_t len;
  };
  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<Sym> syms(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i)
    syms[static_cast<size_t>(i)] = {byte_id_[static_cast<uint8_t>(word[static_cast<size_t>(i)])], i - 1,
                                    i + 1 < n ? i + 1 : -1, 1};
  struct Cand {
    int32_t rank, pos, left_id, right_id, result;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> pq;
  auto push = [&](int32_t pos) {
    const Sym& l = syms[static_cast<size_t>(pos)];
    if (l.next < 0) return;
    const Sym& r = syms[static_cast<size_t>(l.next)];
    auto it = merges_.find(pair_key(l.id, r.id));
    if (it != merges_.end()) pq.push({it->second.rank, pos, l.id, r.id, it->second.result});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!pq.empty()) {
    Cand c = pq.top();
    pq.pop();
    Sym& l = syms[static_cast<size_t>(c.pos)];
    if (l.len == 0 || l.id != c.left_id || l.next < 0) continue;  // stale
    Sym& r = syms[static_cast<size_t>(l.next)];
    if (r.id != c.right_id) continue;  // stale
    l.id = c.result;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (l.next >= 0) syms[static_cast<size_t>(l.next)].prev = c.pos;
    if (l.prev >= 0) push(l.prev);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = syms[static_cast<size_t>(i)].next) out.push_back(syms[static_cast<size_t>(i)].id);
}

}  // namespace ds
