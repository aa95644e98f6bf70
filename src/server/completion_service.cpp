#include "server/completion_service.h"
#include "server/engine_request.h"

#include <chrono>
#include <deque>

#include <spdlog/spdlog.h>

#include "server/logprobs_json.h"
#include "server/metrics.h"
#include "server/response_format.h"

namespace ds {

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& msg) { throw ApiError(400, msg, param); }

std::vector<int32_t> parse_ids(const Tokenizer& tok, const ordered_json& v, const std::string& where) {
  std::vector<int32_t> ids;
  const int64_t vocab = tok.vocab_size();
  for (size_t i = 0; i < v.size(); ++i) {
    const auto& x = v[i];
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= vocab)
      bad(where, where + "[" + std::to_string(i) + "]: expected a token id in [0, " + std::to_string(vocab) + "), got " +
                     x.dump(-1, ' ', false, json::error_handler_t::replace));
    ids.push_back(x.get<int32_t>());
  }
  if (ids.empty()) bad(where, where + ": the prompt must not be empty");
  return ids;
}

TextPrompt text_prompt(const Tokenizer& tok, const std::string& text) {
  TextPrompt p;
  if (tok.add_bos_token() && tok.bos_id() >= 0) p.ids.push_back(tok.bos_id());  // D6
  auto t = tok.encode(text);
  p.ids.insert(p.ids.end(), t.begin(), t.end());
  p.text = text;
  return p;
}

void sse(std::string& out, const json& j) {
  out += "data: ";
  out += j.dump(-1, ' ', false, json::error_handler_t::replace);
  out += "\n\n";
}

std::string new_id(const char* prefix) {
  std::string id = new_completion_id();  // "chatcmpl-" + 32 hex
  return prefix + id.substr(id.find('-') + 1);
}

}  // namespace

std::vector<TextPrompt> parse_text_prompts(const Tokenizer& tok, const ordered_json& v, const std::string& param,
                                           bool skip_special_tokens) {
  std::vector<TextPrompt> out;
  if (v.is_string()) {
    out.push_back(text_prompt(tok, v.get<std::string>()));
    return out;
  }
  if (!v.is_array() || v.empty())
    bad(param, param + ": expected a string, a list of strings, a list of token ids or a list of token id lists");
  if (v[0].is_number()) {
    TextPrompt p;
    p.ids = parse_ids(tok, v, param);
    p.text = tok.decode(p.ids, skip_special_tokens);
    out.push_back(std::move(p));
    return out;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string w = param + "[" + std::to_string(i) + "]";
    if (v[i].is_string()) {
      out.push_back(text_prompt(tok, v[i].get<std::string>()));
    } else if (v[i].is_array()) {
      TextPrompt p;
      p.ids = parse_ids(tok, v[i], w);
      p.text = tok.decode(p.ids, skip_special_tokens);
      out.push_back(std::move(p));
    } else {
      bad(param, w + ": expected a string or a list of token ids");
    }
  }
  return out;
}

struct CompletionSession::Choice {
  int index = 0;
  int prompt = 0;
  std::shared_ptr<RequestStream> stream;
  IncrementalDetokenizer detok;
  ChoiceStream out;
  RequestMetrics metrics;
  CompletionLogprobs logprobs;       // all entries (non-streaming) / entries not sent (streaming)
  GenerateLogprobs gen_logprobs;     // /generate return_logprob (cumulative)
  std::deque<TokenEvent> queued;
  std::string text;                  // generated text so far (after stop-string hold-back)
  std::string unsent;                // streaming: text not yet sent
  std::string streamed;              // /generate streaming: cumulative text sent
  std::vector<int32_t> output_ids;   // generated ids (EOS included, as SGLang's output_ids)
  int unsent_tokens = 0;
  int completion_tokens = 0, cached_tokens = 0;
  int64_t max_new = 0;
  FinishReason finish = FinishReason::None;
  std::optional<int32_t> matched_stop;
  std::string error;
  bool finish_sent = false, echo_sent = false;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  Choice(std::shared_ptr<const Tokenizer> tok, ChoiceStream o, ServerMetrics* m, int prompt_tokens)
      : detok(std::move(tok), false), out(std::move(o)), metrics(m, prompt_tokens) {}
};

CompletionSession::CompletionSession(const ServeContext& ctx, TextApi api)
    : ctx_(ctx), api_(api), id_(new_id(api == TextApi::Completions ? "cmpl-" : "")),
      created_(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()) {}

CompletionSession::~CompletionSession() { abort(); }

void CompletionSession::abort() {
  for (auto& c : choices_)
    if (c->finish == FinishReason::None) c->stream->abort();
}

std::shared_ptr<CompletionSession> CompletionSession::start(const ServeContext& ctx, const std::string& body, TextApi api,
                                                            const ClientGone& gone) {
  std::shared_ptr<CompletionSession> s(new CompletionSession(ctx, api));
  ordered_json b = parse_body(body);
  ChatCompletionRequest& r = s->req_;
  std::string prompt_param, max_param;
  int64_t default_max = 16;
  if (api == TextApi::Completions) {
    parse_common_fields(b, ctx.max_n, r);
    if (!b.contains("echo") || b["echo"].is_null()) s->echo_ = false;
    else if (b["echo"].is_boolean()) s->echo_ = b["echo"].get<bool>();
    else bad("echo", "echo: expected a boolean");
    if (b.contains("suffix") && b["suffix"].is_string() && !b["suffix"].get<std::string>().empty())
      bad("suffix", "suffix is not supported (no fill-in-the-middle)");
    if (b.contains("best_of") && !b["best_of"].is_null() &&
        !(b["best_of"].is_number_integer() && (b["best_of"].get<int64_t>() == 1 || b["best_of"].get<int64_t>() == r.n)))
      bad("best_of", "best_of is not supported (only 1 or equal to n)");
    if (!b.contains("prompt") || b["prompt"].is_null()) bad("prompt", "prompt: field required");
    prompt_param = "prompt";
    s->prompts_ = parse_text_prompts(*ctx.tokenizer, b["prompt"], prompt_param, r.skip_special_tokens);
    // max_tokens 0 only with echo (prompt scoring, e.g. echo + logprobs as lm-eval-harness sends it).
    if (r.max_tokens && (*r.max_tokens < 0 || (*r.max_tokens == 0 && !s->echo_)))
      bad(r.max_tokens_param, r.max_tokens_param + " must be at least 1 (0 only with echo), got " +
                                  std::to_string(*r.max_tokens) + ".");
    max_param = r.max_tokens_param.empty() ? "max_tokens" : r.max_tokens_param;
  } else {
    // SGLang's GenerateReqInput: text | input_ids, sampling_params (max_new_tokens default 128), stream.
    default_max = 128;
    ordered_json sp = ordered_json::object();
    if (b.contains("sampling_params") && !b["sampling_params"].is_null()) {
      if (!b["sampling_params"].is_object()) bad("sampling_params", "sampling_params: expected an object");
      sp = b["sampling_params"];
    }
    if (sp.contains("max_new_tokens")) {
      sp["max_tokens"] = sp["max_new_tokens"];
      sp.erase("max_new_tokens");
    }
    sp.erase("max_completion_tokens");
    if (sp.contains("min_new_tokens")) {
      sp["min_tokens"] = sp["min_new_tokens"];
      sp.erase("min_new_tokens");
    }
    if (b.contains("stream")) sp["stream"] = b["stream"];
    parse_common_fields(sp, ctx.max_n, r);
    max_param = "max_new_tokens";
    const bool has_text = b.contains("text") && !b["text"].is_null();
    const bool has_ids = b.contains("input_ids") && !b["input_ids"].is_null();
    if (has_text == has_ids) bad(has_text ? "input_ids" : "text", "Either text or input_ids should be provided (not both).");
    prompt_param = has_text ? "text" : "input_ids";
    const auto& pv = b[prompt_param];
    if (has_ids && !pv.is_array()) bad("input_ids", "input_ids: expected a list of token ids or a list of lists");
    if (has_text && !(pv.is_string() || pv.is_array())) bad("text", "text: expected a string or a list of strings");
    s->batch_ = pv.is_array() && !(pv.size() > 0 && pv[0].is_number());
    s->prompts_ = parse_text_prompts(*ctx.tokenizer, pv, prompt_param, r.skip_special_tokens);
    s->batch_ = s->batch_ || r.n > 1;
    s->parse_generate_logprobs(b);
  }
  if (!r.debug_model_text.empty()) bad("debug_model_text", "debug_model_text: only the chat route has the test hook");
  if (!r.debug_forced_prefix.empty()) bad("debug_forced_prefix", "debug_forced_prefix: only the chat route has the test hook");

  ChoiceOutputOptions o;
  o.separate_reasoning = false;
  o.stop = r.stop;
  for (size_t p = 0; p < s->prompts_.size(); ++p) {
    const int64_t K = fit_context(ctx, s->prompts_[p].ids, r.max_tokens.value_or(default_max), max_param, prompt_param,
                                  max_param);
    const int top = api == TextApi::Completions ? r.logprobs.value_or(-1)
                    : s->return_logprob_      ? s->top_logprobs_num_
                                              : -1;
    Request base = make_engine_request(ctx, r, s->prompts_[p].ids, K, top);
    if (api == TextApi::Completions && s->echo_ && r.logprobs) base.prompt_logprob_start = 0;
    if (api == TextApi::Generate && s->return_logprob_ && s->logprob_start_len_ >= 0) {
      if (s->logprob_start_len_ >= int64_t(base.prompt_ids.size()))
        bad("logprob_start_len", "logprob_start_len (" + std::to_string(s->logprob_start_len_) +
                                     ") must be smaller than the prompt length (" +
                                     std::to_string(base.prompt_ids.size()) + " tokens).");
      base.prompt_logprob_start = int(s->logprob_start_len_);
    }
    for (int j = 0; j < r.n; ++j) {
      const int index = int(p) * r.n + j;
      Request q = base;
      q.id = s->id_ + "-" + std::to_string(index);
      if (r.seed) q.sampling.seed = *r.seed + uint64_t(j);
      q.constraint = make_json_constraint(ctx, r.grammar, q.stop_token_ids, false);  // one per choice
      auto c = std::make_unique<Choice>(ctx.tokenizer, ChoiceStream(o, true, -1), ctx.metrics,
                                        int(base.prompt_ids.size()));
      c->index = index;
      c->prompt = int(p);
      c->max_new = K;
      c->logprobs = CompletionLogprobs(s->echo_ ? s->prompts_[p].text.size() : 0);
      c->gen_logprobs = GenerateLogprobs(s->text_in_logprobs_);
      if (s->return_logprob_ && s->logprob_start_len_ < 0)
        c->gen_logprobs.add_last_prompt_token(*ctx.tokenizer, base.prompt_ids.back());
      if (K == 0 && base.prompt_logprob_start < 0) {  // /generate max_new_tokens 0: nothing to sample
        c->stream = std::make_shared<RequestStream>(q.id);
        TokenEvent ev;
        ev.finish = FinishReason::Length;
        ev.prompt_tokens = int(q.prompt_ids.size());
        c->stream->push(ev);
      } else {
        c->stream = submit_or_503(ctx, std::move(q));
      }
      s->choices_.push_back(std::move(c));
    }
  }
  if (ctx.log_requests)
    spdlog::info("request {} received ({}): prompts={} n={} stream={}", s->id_,
                 api == TextApi::Completions ? "/v1/completions" : "/generate", s->prompts_.size(), r.n, r.stream);

  for (auto& c : s->choices_) {  // first event of every choice before any byte is sent
    c->queued.push_back(first_event(*c->stream, gone));
    if (c->queued.back().finish == FinishReason::Error) {
      s->abort();
      throw request_error(c->queued.back());
    }
  }
  return s;
}

// SGLang's GenerateReqInput logprob fields (top level of the /generate body).
void CompletionSession::parse_generate_logprobs(const ordered_json& b) {
  auto flag = [&](const char* k) {
    if (!b.contains(k) || b[k].is_null()) return false;
    if (!b[k].is_boolean()) bad(k, std::string(k) + ": expected a boolean");
    return b[k].get<bool>();
  };
  auto integer = [&](const char* k, int64_t dflt) {
    if (!b.contains(k) || b[k].is_null()) return dflt;
    if (!b[k].is_number_integer()) bad(k, std::string(k) + ": expected an integer");
    return b[k].get<int64_t>();
  };
  return_logprob_ = flag("return_logprob");
  text_in_logprobs_ = flag("return_text_in_logprobs");
  logprob_start_len_ = integer("logprob_start_len", -1);
  if (logprob_start_len_ < -1) bad("logprob_start_len", "logprob_start_len must be -1 or >= 0, got " + std::to_string(logprob_start_len_) + ".");
  const int64_t top = integer("top_logprobs_num", 0);
  if (top < 0 || top > 20) bad("top_logprobs_num", "top_logprobs_num must be in [0, 20], got " + std::to_string(top) + ".");
  top_logprobs_num_ = int(top);
}

void CompletionSession::apply(Choice& c, const TokenEvent& ev) {
  if (c.out.stopped()) return;
  c.cached_tokens = std::max(c.cached_tokens, ev.cached_tokens);
  if (!ev.prompt_logprobs.empty()) {
    if (api_ == TextApi::Completions) c.logprobs.add_prompt(*ctx_.tokenizer, ev.prompt_logprobs);
    else c.gen_logprobs.add_prompt(*ctx_.tokenizer, ev.prompt_logprobs);
  }
  if (ev.token >= 0 && ev.logprob && api_ == TextApi::Generate) c.gen_logprobs.add_output(*ctx_.tokenizer, ev);
  if (ev.token >= 0) {
    c.output_ids.push_back(ev.token);
    c.metrics.tokens(1);
    ++c.unsent_tokens;
  }
  const bool stop_token = ev.finish == FinishReason::Stop && ev.matched_stop && *ev.matched_stop == ev.token;
  if (ev.token >= 0 && !stop_token && !(req_.skip_special_tokens && ctx_.tokenizer->is_special(ev.token))) {
    if (ev.logprob) c.logprobs.add(*ctx_.tokenizer, ev);
    if (c.out.feed(c.detok.push(ev.token), ev.token)) {  // stop string (D17)
      c.stream->abort();
      c.out.finish();
      c.completion_tokens = std::max(c.completion_tokens, ev.completion_tokens);
      c.finish = FinishReason::Stop;
      c.matched_stop.reset();
    }
  }
  c.completion_tokens = std::max(c.completion_tokens, ev.completion_tokens);
  if (ev.finished() && c.finish == FinishReason::None) {
    c.out.feed(c.detok.flush(), -1);
    c.out.finish();
    c.finish = ev.finish;
    c.matched_stop = ev.matched_stop;
    c.error = ev.error;
  }
  for (json& d : c.out.take_deltas())
    if (d.contains("content")) c.unsent += d["content"].get<std::string>();
  if (c.finish != FinishReason::None) {
    c.text = c.out.message()["content"].get<std::string>();
    c.metrics.finish(c.completion_tokens, c.cached_tokens, c.finish == FinishReason::Abort);
  }
}

void CompletionSession::pump(bool wait) {
  bool any = false;
  std::shared_ptr<RequestStream> first_open;
  Choice* first = nullptr;
  for (auto& c : choices_) {
    while (!c->queued.empty()) {
      apply(*c, c->queued.front());
      c->queued.pop_front();
      any = true;
    }
    if (c->finish != FinishReason::None) continue;
    for (const TokenEvent& ev : c->stream->drain()) {
      apply(*c, ev);
      any = true;
    }
    if (!first && c->finish == FinishReason::None) first = c.get();
  }
  if (!any && wait && first)
    if (auto ev = first->stream->pop(50ms)) apply(*first, *ev);
}

json CompletionSession::usage() const {
  int prompt = 0, completion = 0, cached = 0;
  for (const auto& p : prompts_) prompt += int(p.ids.size());  // counted once per prompt (spec 4.3)
  for (const auto& c : choices_) completion += c->completion_tokens;
  for (size_t i = 0; i < choices_.size(); i += size_t(req_.n)) cached += choices_[i]->cached_tokens;
  return json{{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion},
              {"prompt_tokens_details", cached > 0 ? json{{"cached_tokens", cached}} : json(nullptr)}};
}

namespace {
json matched_json(const std::string& reason, const std::optional<std::string>& str, const std::optional<int32_t>& id) {
  if (reason != "stop") return nullptr;
  if (str) return json(*str);
  return id ? json(*id) : json(nullptr);
}
}  // namespace

json CompletionSession::generate_object(const Choice& c, bool streaming) const {
  json fr = nullptr;
  if (c.finish != FinishReason::None) {
    const std::string reason = finish_reason_name(c.finish);
    fr = {{"type", reason}};
    if (reason == "stop") fr["matched"] = matched_json(reason, c.out.matched_stop(), c.matched_stop);
    else if (reason == "length") fr["length"] = c.completion_tokens;
    else fr["message"] = c.error.empty() ? std::string("Aborted") : c.error;
  }
  const double e2e = std::chrono::duration<double>(std::chrono::steady_clock::now() - c.start).count();
  json o = {{"text", streaming ? c.streamed : c.text},
            {"output_ids", c.output_ids},
            {"meta_info",
             {{"id", id_ + "-" + std::to_string(c.index)},
              {"finish_reason", fr},
              {"prompt_tokens", int(prompts_[size_t(c.prompt)].ids.size())},
              {"completion_tokens", c.completion_tokens},
              {"cached_tokens", c.cached_tokens},
              {"e2e_latency", e2e},
              {"weight_version", "default"}}}};
  if (return_logprob_) c.gen_logprobs.write(o["meta_info"]);
  if (streaming && batch_) o["index"] = c.index;
  return o;
}

json CompletionSession::completion_chunk(json choices) const {
  return json{{"id", id_}, {"object", "text_completion"}, {"created", created_}, {"model", req_.model},
              {"choices", std::move(choices)}, {"usage", nullptr}};
}

bool CompletionSession::poll_complete(std::string& out) {
  pump(true);
  for (const auto& c : choices_)
    if (c->finish == FinishReason::None) return false;
  for (const auto& c : choices_)
    if (c->finish == FinishReason::Error) {
      out = error_body(ApiError(500, std::string("Internal server error: ") + c->error, "", "internal_server_error")).dump();
      return true;
    }
  json body;
  if (api_ == TextApi::Generate) {
    body = json::array();
    for (const auto& c : choices_) body.push_back(generate_object(*c, false));
    if (!batch_) body = body[0];
  } else {
    json cs = json::array();
    for (const auto& c : choices_) {
      const std::string reason = c->out.finish_reason(finish_reason_name(c->finish));
      cs.push_back({{"index", c->index},
                    {"text", (echo_ ? prompts_[size_t(c->prompt)].text : std::string()) + c->text},
                    {"logprobs", req_.logprobs ? c->logprobs.to_json() : json(nullptr)},
                    {"finish_reason", reason},
                    {"matched_stop", matched_json(reason, c->out.matched_stop(), c->matched_stop)}});
    }
    body = {{"id", id_}, {"object", "text_completion"}, {"created", created_}, {"model", req_.model},
            {"choices", cs}, {"usage", usage()}};
  }
  out = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return true;
}

bool CompletionSession::next_stream(std::string& out) {
  if (done_sent_) return false;
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
    const bool flush = finished || c->unsent_tokens >= ctx_.stream_interval;
    if (api_ == TextApi::Generate) {
      if (flush && (c->unsent_tokens > 0 || finished)) {  // cumulative text (SGLang's default)
        c->streamed += c->unsent;
        c->unsent.clear();
        c->unsent_tokens = 0;
        sse(out, generate_object(*c, true));
        if (finished) c->finish_sent = true;
      }
    } else {
      std::string text;
      if (echo_ && !c->echo_sent) text = prompts_[size_t(c->prompt)].text;
      c->echo_sent = true;
      if (flush) {
        text += c->unsent;
        c->unsent.clear();
        c->unsent_tokens = 0;
      }
      if (!text.empty() || (flush && req_.logprobs && !c->logprobs.empty()))
        sse(out, completion_chunk(json::array({{{"index", c->index}, {"text", text},
                                                {"logprobs", req_.logprobs ? c->logprobs.take() : json(nullptr)},
                                                {"finish_reason", nullptr}, {"matched_stop", nullptr}}})));
      if (finished) {
        const std::string reason = c->out.finish_reason(finish_reason_name(c->finish));
        sse(out, completion_chunk(json::array({{{"index", c->index}, {"text", ""}, {"logprobs", nullptr},
                                                {"finish_reason", reason},
                                                {"matched_stop", matched_json(reason, c->out.matched_stop(), c->matched_stop)}}})));
        c->finish_sent = true;
      }
    }
    if (!c->finish_sent) all_done = false;
  }
  if (all_done) {
    if (api_ == TextApi::Completions && req_.include_usage) {
      json u = completion_chunk(json::array());
      u["usage"] = usage();
      sse(out, u);
    }
    out += "data: [DONE]\n\n";
    done_sent_ = true;
  }
  return true;
}

}  // namespace ds
