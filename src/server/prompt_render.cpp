#include "server/prompt_render.h"

#include <array>

#include "text/encoding_dsv32.h"
#include "text/encoding_v31.h"

namespace ds {

namespace {

/// Whether `s` leaves the model inside reasoning, given the state before it.
bool reasoning_after(std::string_view s, bool before) {
  size_t open = s.rfind(dsv32::kThinkStart), close = s.rfind(dsv32::kThinkEnd);
  if (open == std::string_view::npos && close == std::string_view::npos) return before;
  if (open == std::string_view::npos) return false;
  if (close == std::string_view::npos) return true;
  return open > close;
}

/// DeepSeek's V3.2 rule for `tool` messages (its encoder asserts it, naming its own message list
/// with the inserted system message): each answers one tool call of the nearest assistant message
/// before it, across the tool messages in between. 400 naming the client's messages[i].
void check_tool_messages(const ChatCompletionRequest& req) {
  const size_t shift = req.system_inserted ? 1 : 0;  // messages[0] of the request is req.messages[shift]
  const auto& ms = req.messages;
  for (size_t i = shift; i < ms.size(); ++i) {
    if (ms[i].role != "tool") continue;
    size_t j = i;
    while (j > shift && ms[j - 1].role == "tool") --j;
    const std::string w = "messages[" + std::to_string(i - shift) + "]";
    if (j == shift)
      throw ApiError(400, w + ": a 'tool' message must follow an assistant message with tool_calls, but it comes first",
                     w);
    const ChatMessage& prev = ms[j - 1];
    const std::string pw = "messages[" + std::to_string(j - 1 - shift) + "]";
    if (prev.role != "assistant")
      throw ApiError(400, w + ": a 'tool' message must follow an assistant message with tool_calls, but " + pw +
                              " is a '" + prev.role + "' message", w);
    const size_t order = i - j + 1;
    if (prev.tool_calls.size() < order)
      throw ApiError(400, w + ": tool message " + std::to_string(order) + " after " + pw + ", which has " +
                              std::to_string(prev.tool_calls.size()) + " tool_calls", w);
  }
}

/// The param of an encoder error: `tools[i]...` when the message names a tool, else "messages".
std::string encode_error_param(const std::string& msg) {
  if (msg.rfind("tools[", 0) == 0) return msg.substr(0, msg.find_first_of(" :"));
  return "messages";
}

}  // namespace

RenderedPrompt render_prompt(const Tokenizer& tok, PromptFormat format, const ChatCompletionRequest& req) {
  std::vector<PromptPiece> pieces;
  try {
    if (format == PromptFormat::Dsv32) {
      check_tool_messages(req);
      Dsv32EncodeOptions opts;
      opts.thinking = req.thinking;
      opts.tools = req.tools;
      pieces = encode_dsv32(req.messages, opts);
      if (req.assistant_prefix && !req.assistant_prefix->empty()) pieces.push_back(PromptPiece{*req.assistant_prefix, false});
    } else {
      V31EncodeOptions opts;
      opts.thinking = req.thinking;
      opts.tools = req.tools;
      opts.add_generation_prompt = req.add_generation_prompt;
      if (req.assistant_prefix) {
        opts.has_assistant_prefix = true;
        opts.assistant_prefix = *req.assistant_prefix;
      }
      std::vector<ChatMessage> msgs = req.messages;
      if (req.system_inserted && !msgs.empty()) msgs.erase(msgs.begin());  // the V3.1 template has no host
      pieces = encode_v31(msgs, opts);
    }
  } catch (const EncodeError& e) {
    throw ApiError(400, e.what(), encode_error_param(e.what()));
  }
  RenderedPrompt out;
  for (const auto& p : pieces) {
    out.text += p.text;
    if (p.special && (p.text == dsv32::kThinkStart || p.text == dsv32::kThinkEnd))
      out.opens_reasoning = p.text == dsv32::kThinkStart;
  }
  if (req.assistant_prefix) out.opens_reasoning = reasoning_after(*req.assistant_prefix, out.opens_reasoning);
  try {
    out.ids = tok.encode_pieces(pieces);
  } catch (const TokenizerError& e) {
    throw ApiError(500, std::string("Internal server error: ") + e.what(), "", "internal_server_error");
  }
  return out;
}

std::vector<int32_t> encode_with_markers(const Tokenizer& tok, std::string_view text) {
  static constexpr std::array<std::string_view, 20> kMarkers = {
      "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<｜User｜>", "<｜Assistant｜>", "<think>",
      "</think>", "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>",
      "<｜tool▁sep｜>", "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>", "<｜tool▁outputs▁begin｜>",
      "<｜tool▁outputs▁end｜>", "｜DSML｜", "<｜search▁begin｜>", "<｜search▁end｜>", "<|EOT|>"};
  std::vector<PromptPiece> pieces;
  auto add_text = [&](std::string_view s) {
    if (s.empty()) return;
    if (!pieces.empty() && !pieces.back().special) pieces.back().text.append(s);
    else pieces.push_back(PromptPiece{std::string(s), false});
  };
  while (!text.empty()) {
    size_t best = std::string_view::npos;
    std::string_view which;
    for (auto m : kMarkers) {
      size_t p = text.find(m);
      if (p == std::string_view::npos || p > best) continue;
      if (p == best && m.size() <= which.size()) continue;
      if (!tok.token_to_id(m)) continue;  // not a token of this tokenizer: text
      best = p;
      which = m;
    }
    if (best == std::string_view::npos) {
      add_text(text);
      break;
    }
    add_text(text.substr(0, best));
    pieces.push_back(PromptPiece{std::string(which), true});
    text.remove_prefix(best + which.size());
  }
  return tok.encode_pieces(pieces);
}

}  // namespace ds
