#include "server/chat_service.h"

#include <chrono>
#include <deque>

#include <spdlog/spdlog.h>

#include "server/choice_stream.h"
#include "server/engine_request.h"
#include "server/logprobs_json.h"
#include "server/metrics.h"
#include "server/response_format.h"
#include "text/encoding_dsv32.h"

namespace ds {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct ChatSession::Choice {
  int index = 0;
  std::shared_ptr<RequestStream> stream;
  IncrementalDetokenizer detok;   // never skips: apply() drops skipped special ids itself
  ChoiceStream out;               // this choice's parsers (separate state per choice)
  std::deque<TokenEvent> queued;  // popped by start() before streaming began
  std::string text;               // full raw text so far (logging)
  int unsent_tokens = 0;
  int completion_tokens = 0;
  FinishReason finish = FinishReason::None;
  std::optional<int32_t> matched_stop;
  std::string error;
  bool finish_sent = false;
  int cached_tokens = 0;
  nlohmann::json logprobs = nlohmann::json::array();  // logprobs.content entries (all so far)
  size_t logprobs_sent = 0;                            // streaming: entries already sent
  RequestMetrics metrics;  // --enable-metrics (no-op when off)
  Choice(int i, std::shared_ptr<RequestStream> s, std::shared_ptr<const Tokenizer> tok, ChoiceStream o,
         ServerMetrics* m, int prompt_tokens)
      : index(i), stream(std::move(s)), detok(std::move(tok), false), out(std::move(o)), metrics(m, prompt_tokens) {}
};

RenderedPrompt render_chat_prompt(const ServeContext& ctx, const ChatCompletionRequest& req) {
  return render_prompt(*ctx.tokenizer, ctx.prompt_format, req);
}

namespace {
/// The test hook's stand-in for the engine: the events the engine would post if it had sampled
/// `ids` (then EOS when `ids` holds none of `stop_ids`), stopping at `max_new` tokens.
std::shared_ptr<RequestStream> injected_stream(const std::string& id, std::vector<int32_t> ids, const Request& q) {
  auto stream = std::make_shared<RequestStream>(id);
  const auto& stops = q.stop_token_ids;
  bool has_stop = false;
  for (int32_t t : ids) has_stop = has_stop || std::find(stops.begin(), stops.end(), t) != stops.end();
  if (!has_stop && !stops.empty()) ids.push_back(stops.front());
  int n = 0;
  for (int32_t t : ids) {
    TokenEvent ev;
    ev.token = t;
    ev.prompt_tokens = int(q.prompt_ids.size());
    ev.completion_tokens = ++n;
    if (!q.ignore_eos && std::find(stops.begin(), stops.end(), t) != stops.end()) {
      ev.finish = FinishReason::Stop;
      ev.matched_stop = t;
    } else if (n >= q.max_new_tokens) {
      ev.finish = FinishReason::Length;
    }
    const bool last = ev.finished();
    stream->push(std::move(ev));
    if (last) return stream;
  }
  TokenEvent ev;  // ignore_eos and the text ran out
  ev.finish = FinishReason::Length;
  ev.prompt_tokens = int(q.prompt_ids.size());
  ev.completion_tokens = n;
  stream->push(ev);
  return stream;
}
}  // namespace

ChatSession::ChatSession(const ServeContext& ctx, ChatCompletionRequest req)
    : ctx_(ctx), req_(std::move(req)), id_(new_completion_id()),
      created_(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()) {}

ChatSession::~ChatSession() { abort(); }

void ChatSession::abort() {
  for (auto& c : choices_)
    if (c->finish == FinishReason::None) c->stream->abort();
}

std::shared_ptr<ChatSession> ChatSession::start(const ServeContext& ctx, const std::string& body,
                                                const ClientGone& gone) {
  std::shared_ptr<ChatSession> s(new ChatSession(ctx, parse_chat_request(body, ctx.max_n)));
  const ChatCompletionRequest& r = s->req_;
  if (!r.debug_model_text.empty() && !ctx.debug_inject)
    throw ApiError(400, "debug_model_text: test hook not enabled (start the server with --debug-inject-output)",
                   "debug_model_text");
  if (!r.debug_forced_prefix.empty() && !ctx.debug_inject)
    throw ApiError(400, "debug_forced_prefix: test hook not enabled (start the server with --debug-inject-output)",
                   "debug_forced_prefix");
  RenderedPrompt rendered = render_chat_prompt(ctx, r);
  s->prompt_ids_ = std::move(rendered.ids);
  s->opens_reasoning_ = rendered.opens_reasoning;
  if (auto d = ctx.tokenizer->token_to_id(dsv32::kDsml)) s->dsml_id_ = *d;

  // Context checks (spec/serving.md 4.6).
  const int64_t K = fit_context(ctx, s->prompt_ids_, r.max_tokens, r.max_tokens_param, "messages",
                                "max_completion_tokens");
  const int64_t N = int64_t(s->prompt_ids_.size());
  Request base = make_engine_request(ctx, r, s->prompt_ids_, K, r.logprobs.value_or(-1));
  for (int i = 0; i < r.n; ++i) {
    Request q = base;
    q.id = s->id_ + (r.n > 1 ? std::string("-") + std::to_string(i) : "");
    if (r.seed) q.sampling.seed = *r.seed + uint64_t(i);  // n choices from one seed differ
    q.constraint = make_json_constraint(ctx, r.grammar, q.stop_token_ids, s->opens_reasoning_);  // per choice
    if (!r.debug_forced_prefix.empty()) q.forced_output = encode_with_markers(*ctx.tokenizer, r.debug_forced_prefix);
    std::shared_ptr<RequestStream> stream;
    if (!r.debug_model_text.empty()) {
      const std::string& text = r.debug_model_text[std::min<size_t>(size_t(i), r.debug_model_text.size() - 1)];
      stream = injected_stream(q.id, encode_with_markers(*ctx.tokenizer, text), q);
      s->injected_ = true;
    } else {
      stream = submit_or_503(ctx, std::move(q));
    }
    s->choices_.push_back(std::make_unique<Choice>(i, stream, ctx.tokenizer, s->make_output(),
                                                   s->injected_ ? nullptr : ctx.metrics, int(N)));
  }
  if (ctx.log_requests) {
    std::string extra;
    if (ctx.log_requests_level >= 1)
      extra = fmt::format(" temperature={} top_p={} top_k={} min_p={} max_new_tokens={} n={} stream={}",
                          base.sampling.temperature, base.sampling.top_p, base.sampling.top_k, base.sampling.min_p, K,
                          r.n, r.stream);
    spdlog::info("request {} received: prompt_tokens={}{}", s->id_, N, extra);
  }

  // First event of every choice before any byte is sent (SGLang's newer builds do the same).
  for (auto& c : s->choices_) {
    c->queued.push_back(first_event(*c->stream, gone));
    if (c->queued.back().finish == FinishReason::Error) {
      s->abort();
      throw request_error(c->queued.back(), "messages");
    }
  }
  return s;
}

ChoiceStream ChatSession::make_output() const {
  ChoiceOutputOptions o;
  o.separate_reasoning = req_.separate_reasoning && !ctx_.reasoning_parser.empty();
  o.start_in_reasoning = opens_reasoning_;
  if (!ctx_.tool_call_parser.empty() && !req_.tools.empty() && !req_.tool_choice_none) {
    o.tool_parser = ctx_.tool_call_parser;
    for (const auto& t : req_.tools)
      if (t.is_object() && t.contains("function") && t["function"].is_object() && t["function"].contains("name") &&
          t["function"]["name"].is_string())
        o.tools.tool_names.push_back(t["function"]["name"].get<std::string>());
  }
  o.stop = req_.stop;
  auto think_end = ctx_.tokenizer->token_to_id(dsv32::kThinkEnd);
  return ChoiceStream(std::move(o), req_.stream_reasoning, think_end ? *think_end : -1);
}

void ChatSession::apply(Choice& c, const TokenEvent& ev) {
  if (c.out.stopped()) return;  // a stop string ended this choice; later events are the abort's
  c.cached_tokens = std::max(c.cached_tokens, ev.cached_tokens);
  if (ev.token >= 0) c.metrics.tokens(1);
  // The EOS/stop id that ended the request is not text. Other special ids are dropped when
  // skip_special_tokens, except the parsers' markers (spec 1.2: `｜DSML｜` is flagged special, D11).
  const bool stop_token = ev.finish == FinishReason::Stop && ev.matched_stop && *ev.matched_stop == ev.token;
  if (ev.token >= 0 && !stop_token) {
    const bool skip = req_.skip_special_tokens && ctx_.tokenizer->is_special(ev.token) && ev.token != dsml_id_;
    if (!skip) {
      if (ev.logprob) c.logprobs.push_back(chat_logprob_entry(*ctx_.tokenizer, ev));
      std::string t = c.detok.push(ev.token);
      c.text += t;
      if (c.out.feed(t, ev.token)) {  // stop string (D17): end generation now
        c.stream->abort();
        c.out.finish();
        c.completion_tokens = std::max(c.completion_tokens, ev.completion_tokens);
        c.finish = FinishReason::Stop;
        c.matched_stop.reset();
        c.metrics.finish(c.completion_tokens, c.cached_tokens, false);
        return;
      }
    }
  }
  if (ev.token >= 0) ++c.unsent_tokens;
  c.completion_tokens = std::max(c.completion_tokens, ev.completion_tokens);
  if (ev.finished()) {
    std::string t = c.detok.flush();
    c.text += t;
    c.out.feed(t, -1);
    c.out.finish();
    c.finish = ev.finish;
    c.matched_stop = ev.matched_stop;
    c.error = ev.error;
    c.metrics.finish(c.completion_tokens, c.cached_tokens, ev.finish == FinishReason::Abort);
  }
}

bool ChatSession::pump(bool wait) {
  bool any = false;
  Choice* first_open = nullptr;
  for (auto& c : choices_) {
    while (!c->queued.empty()) {
      apply(*c, c->queued.front());
      c->queued.pop_front();
      any = true;
    }
    if (c->finish != FinishReason::None) continue;
    if (injected_) {  // one token per step, as the engine would deliver them
      if (auto ev = c->stream->pop(std::chrono::milliseconds(0))) {
        apply(*c, *ev);
        any = true;
      }
    } else {
      for (const TokenEvent& ev : c->stream->drain()) {
        apply(*c, ev);
        any = true;
      }
    }
    if (!first_open && c->finish == FinishReason::None) first_open = c.get();
  }
  if (!any && wait && first_open) {
    if (auto ev = first_open->stream->pop(50ms)) {
      apply(*first_open, *ev);
      any = true;
    }
  }
  return any;
}

json ChatSession::usage() const {
  int completion = 0, reasoning = 0, cached = 0;
  for (const auto& c : choices_) {
    completion += c->completion_tokens;
    reasoning += c->out.reasoning_tokens();
    cached = std::max(cached, c->cached_tokens);  // the prompt is counted once, so is its cached part
  }
  int prompt = int(prompt_ids_.size());
  // D20: reported whenever the radix cache served tokens (with or without --enable-cache-report).
  return json{{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion},
              {"prompt_tokens_details", cached > 0 ? json{{"cached_tokens", cached}} : json(nullptr)},
              {"reasoning_tokens", reasoning}};
}

json ChatSession::chunk(json choices) const {
  return json{{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_}, {"model", req_.model},
              {"choices", std::move(choices)}, {"usage", nullptr}};
}

namespace {
/// SGLang's matched_stop: the stop string, else the stop/EOS id; null for tool_calls and length.
json matched(const std::string& reason, const std::optional<std::string>& str, const std::optional<int32_t>& id) {
  if (reason != "stop") return nullptr;
  if (str) return json(*str);
  return id ? json(*id) : json(nullptr);
}
void sse(std::string& out, const json& j) {
  out += "data: ";
  out += j.dump(-1, ' ', false, json::error_handler_t::replace);
  out += "\n\n";
}
}  // namespace

void ChatSession::log_finish() const {
  if (!ctx_.log_requests) return;
  for (const auto& c : choices_) {
    std::string io;
    if (ctx_.log_requests_level >= 3) io = std::string(" output=") + json(c->text).dump(-1, ' ', false, json::error_handler_t::replace);
    else if (ctx_.log_requests_level == 2) io = std::string(" output=") + json(c->text.substr(0, 200)).dump(-1, ' ', false, json::error_handler_t::replace);
    spdlog::info("request {} choice {} finished: {} completion_tokens={}{}", id_, c->index,
                 finish_reason_name(c->finish), c->completion_tokens, io);
  }
}

bool ChatSession::poll_complete(std::string& out) {
  pump(true);
  for (const auto& c : choices_)
    if (c->finish == FinishReason::None) return false;
  log_finish();
  for (const auto& c : choices_)
    if (c->finish == FinishReason::Error) {  // headers are out already: the body carries the error
      out = error_body(ApiError(500, std::string("Internal server error: ") + c->error, "", "internal_server_error")).dump();
      return true;
    }
  json cs = json::array();
  for (const auto& c : choices_) {
    std::string reason = c->out.finish_reason(finish_reason_name(c->finish));
    cs.push_back({{"index", c->index},
                  {"message", c->out.message()},
                  {"logprobs", req_.logprobs ? json{{"content", c->logprobs}} : json(nullptr)},
                  {"finish_reason", reason},
                  {"matched_stop", matched(reason, c->out.matched_stop(), c->matched_stop)}});
  }
  json body = {{"id", id_}, {"object", "chat.completion"}, {"created", created_}, {"model", req_.model},
               {"choices", cs}, {"usage", usage()}, {"metadata", {{"weight_version", "default"}}}};
  out = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return true;
}

json ChatSession::unsent_logprobs(Choice& c) const {
  if (!req_.logprobs || c.logprobs_sent >= c.logprobs.size()) return nullptr;
  json content = json::array();
  for (size_t i = c.logprobs_sent; i < c.logprobs.size(); ++i) content.push_back(c.logprobs[i]);
  c.logprobs_sent = c.logprobs.size();
  return json{{"content", std::move(content)}};
}

bool ChatSession::next_stream(std::string& out) {
  if (done_sent_) return false;
  if (!role_sent_) {
    for (const auto& c : choices_)
      sse(out, chunk(json::array({{{"index", c->index}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                                   {"logprobs", nullptr}, {"finish_reason", nullptr}, {"matched_stop", nullptr}}})));
    role_sent_ = true;
  }
  pump(true);
  bool all_done = true;
  for (auto& c : choices_) {
    if (c->finish_sent) continue;
    const bool finished = c->finish != FinishReason::None;
    if (c->finish == FinishReason::Error) {
      sse(out, error_body(ApiError(500, std::string("Internal server error: ") + c->error, "", "internal_server_error")));
      c->finish_sent = true;
      continue;
    }
    if (c->out.has_pending() && (finished || c->unsent_tokens >= ctx_.stream_interval)) {
      for (json& delta : c->out.take_deltas()) {
        json ch = chunk(json::array({{{"index", c->index}, {"delta", std::move(delta)}, {"logprobs", unsent_logprobs(*c)},
                                      {"finish_reason", nullptr}, {"matched_stop", nullptr}}}));
        if (req_.continuous_usage_stats) ch["usage"] = usage();
        sse(out, ch);
      }
      c->unsent_tokens = 0;
    }
    if (finished) {
      std::string reason = c->out.finish_reason(finish_reason_name(c->finish));
      sse(out, chunk(json::array({{{"index", c->index}, {"delta", json::object()}, {"logprobs", unsent_logprobs(*c)},
                                   {"finish_reason", reason},
                                   {"matched_stop", matched(reason, c->out.matched_stop(), c->matched_stop)}}})));
      c->finish_sent = true;
    } else {
      all_done = false;
    }
  }
  if (all_done) {
    log_finish();
    if (req_.include_usage) {
      json u = chunk(json::array());
      u["usage"] = usage();
      sse(out, u);
    }
    out += "data: [DONE]\n\n";
    done_sent_ = true;
  }
  return true;
}

}  // namespace ds
