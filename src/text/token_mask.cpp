#include "text/token_mask.h"

#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>

#include "text/tokenizer.h"

namespace ds {

TokenTrie::TokenTrie(std::vector<std::string> token_bytes, const std::vector<bool>& included)
    : bytes_(std::move(token_bytes)), included_(bytes_.size(), false) {
  std::vector<int32_t> order;
  for (size_t i = 0; i < bytes_.size(); ++i)
    if (i < included.size() && included[i] && !bytes_[i].empty()) {
      included_[i] = true;
      order.push_back(int32_t(i));
    }
  std::sort(order.begin(), order.end(), [&](int32_t x, int32_t y) {
    return bytes_[size_t(x)] != bytes_[size_t(y)] ? bytes_[size_t(x)] < bytes_[size_t(y)] : x < y;
  });
  // Sorted insertion: `path[d]` is the node of the previous token's first d bytes; children are
  // created in byte order, so each node's children list is sorted.
  nodes_.emplace_back();
  std::vector<int32_t> path = {0};
  std::vector<int32_t> node_of(order.size());
  const std::string* prev = nullptr;
  for (size_t k = 0; k < order.size(); ++k) {
    const std::string& s = bytes_[size_t(order[k])];
    size_t common = 0;
    if (prev)
      while (common < s.size() && common < prev->size() && s[common] == (*prev)[common]) ++common;
    path.resize(common + 1);
    for (size_t d = common; d < s.size(); ++d) {
      Node n;
      n.byte = uint8_t(s[d]);
      const int32_t idx = int32_t(nodes_.size());
      const int32_t parent = path.back();
      if (nodes_[size_t(parent)].first_child < 0) {
        nodes_[size_t(parent)].first_child = idx;
      } else {  // append after the last child (the largest byte so far)
        int32_t c = nodes_[size_t(parent)].first_child;
        while (nodes_[size_t(c)].next_sibling >= 0) c = nodes_[size_t(c)].next_sibling;
        nodes_[size_t(c)].next_sibling = idx;
      }
      nodes_.push_back(n);
      path.push_back(idx);
    }
    node_of[k] = path.back();
    prev = &s;
  }
  // Ids grouped by node (tokens with equal bytes share one node).
  std::vector<int32_t> count(nodes_.size(), 0);
  for (int32_t n : node_of) ++count[size_t(n)];
  int32_t pos = 0;
  for (size_t n = 0; n < nodes_.size(); ++n) {
    nodes_[n].tok_begin = nodes_[n].tok_end = pos;
    pos += count[n];
  }
  ids_.resize(order.size());
  for (size_t k = 0; k < order.size(); ++k) ids_[size_t(nodes_[size_t(node_of[k])].tok_end++)] = order[k];
}

std::shared_ptr<const TokenTrie> TokenTrie::for_tokenizer(const Tokenizer& tok) {
  static std::mutex mu;
  static std::map<const Tokenizer*, std::shared_ptr<const TokenTrie>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[&tok];
  if (!slot) {
    const int32_t V = tok.vocab_size();
    std::vector<std::string> bytes(static_cast<size_t>(V));
    std::vector<bool> inc(static_cast<size_t>(V));
    for (int32_t id = 0; id < V; ++id) {
      bytes[size_t(id)] = tok.token_bytes(id);
      inc[size_t(id)] = !tok.is_added(id) && !tok.is_special(id);
    }
    slot = std::make_shared<const TokenTrie>(std::move(bytes), inc);
  }
  return slot;
}

TokenBitmask compute_token_mask(JsonRecognizer& rec, const TokenTrie& trie) {
  TokenBitmask mask(size_t(trie.vocab_size() + 63) / 64, 0);
  const auto& nodes = trie.nodes();
  const auto& ids = trie.ids();
  struct Level {
    int32_t child;
    size_t cfg_begin, cfg_end, arena_mark;
  };
  std::vector<int32_t> buf(rec.configs().begin(), rec.configs().end());
  std::vector<Level> stack;
  stack.push_back({nodes[0].first_child, 0, buf.size(), rec.arena_size()});
  while (!stack.empty()) {
    Level& L = stack.back();
    if (L.child < 0) {
      rec.rollback(L.arena_mark);
      buf.resize(L.cfg_begin);
      stack.pop_back();
      continue;
    }
    const int32_t c = L.child;
    L.child = nodes[size_t(c)].next_sibling;
    const size_t begin = L.cfg_begin, end = L.cfg_end, mark = rec.arena_size(), out = buf.size();
    for (size_t i = begin; i < end; ++i) rec.step(buf[i], nodes[size_t(c)].byte, buf);  // buf[i] read by value
    if (buf.size() - out > JsonRecognizer::kMaxConfigs) buf.resize(out + JsonRecognizer::kMaxConfigs);
    if (buf.size() == out) {
      rec.rollback(mark);
      continue;
    }
    const TokenTrie::Node& n = nodes[size_t(c)];
    for (int32_t t = n.tok_begin; t < n.tok_end; ++t) {
      const int32_t id = ids[size_t(t)];
      mask[size_t(id) / 64] |= uint64_t(1) << (id % 64);
    }
    if (n.first_child >= 0) {
      stack.push_back({n.first_child, out, buf.size(), mark});
    } else {
      rec.rollback(mark);
      buf.resize(out);
    }
  }
  return mask;
}

JsonConstraint::JsonConstraint(std::shared_ptr<const JsonGrammar> grammar, std::shared_ptr<const TokenTrie> trie,
                               std::vector<int32_t> end_ids, int32_t think_end_id)
    : trie_(std::move(trie)), rec_(std::move(grammar)), end_ids_(std::move(end_ids)), think_end_id_(think_end_id),
      active_(think_end_id < 0) {}

bool JsonConstraint::apply(std::span<float> logits) {
  if (!active_ || failed_) return true;
  const std::string key = rec_.state_key();
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    if (cache_.size() >= 64) cache_.clear();
    it = cache_.emplace(key, compute_token_mask(rec_, *trie_)).first;
  }
  const TokenBitmask& mask = it->second;
  // End ids are added tokens (not in the trie): keep their logits when the JSON is complete.
  std::vector<float> end_logits;
  for (int32_t e : end_ids_) end_logits.push_back(e >= 0 && size_t(e) < logits.size() ? logits[size_t(e)] : 0.0f);
  bool any = false;
  const size_t V = std::min(logits.size(), size_t(trie_->vocab_size()));
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (size_t w = 0; w < mask.size(); ++w) {
    const uint64_t m = mask[w];
    any = any || m != 0;
    if (m == ~uint64_t(0)) continue;
    for (size_t id = w * 64, e = std::min(V, w * 64 + 64); id < e; ++id)
      if (!((m >> (id % 64)) & 1)) logits[id] = kNegInf;
  }
  for (size_t id = V; id < logits.size(); ++id) logits[id] = kNegInf;
  // Complete: the end ids are allowed. A dead end (no token can continue; only possible with a
  // vocabulary lacking single-byte tokens) also allows them, rather than sampling from nothing.
  if (rec_.can_end() || !any)
    for (size_t k = 0; k < end_ids_.size(); ++k)
      if (end_ids_[k] >= 0 && size_t(end_ids_[k]) < logits.size()) logits[size_t(end_ids_[k])] = end_logits[k];
  return any;
}

void JsonConstraint::accept(int32_t token) {
  if (failed_) return;
  if (!active_) {
    if (token == think_end_id_) active_ = true;
    return;
  }
  if (std::find(end_ids_.begin(), end_ids_.end(), token) != end_ids_.end()) return;
  if (!trie_->included(token) || !rec_.feed(trie_->bytes(token))) failed_ = true;
}

}  // namespace ds
