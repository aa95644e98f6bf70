#include "server/http_server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include <sys/socket.h>
#include <cerrno>
#include <cstring>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "common/version.h"
#include "server/client_liveness.h"
#include "server/completion_service.h"
#include "server/http_checks.h"
#include "server/metrics.h"
#include "server/text_endpoints.h"

namespace ds {

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {
constexpr size_t kMaxPayload = size_t(16) << 20;  // D21
// HTTP threads: cpp-httplib gives each open connection a thread while it waits for the connection's
// next request (up to kKeepAliveTimeoutS), so a fixed pool lets idle sockets take every thread from
// /health. The pool grows to one thread per connection up to kMaxHttpThreads and keeps
// --max-running-requests + kThreadHeadroom threads when quiet (tests/e2e/http_surface.test.mjs).
constexpr int kThreadHeadroom = 16;
constexpr size_t kMaxHttpThreads = 4096;
constexpr auto kIdleThreadLifetime = 30s;     // threads beyond the minimum exit after this idle
constexpr int kKeepAliveTimeoutS = 5;         // an idle keep-alive connection is closed after this
constexpr size_t kKeepAliveMaxCount = 1000;   // requests per connection (cpp-httplib's default: 5)
constexpr int kListenBacklog = SOMAXCONN;      // cpp-httplib's compiled-in backlog is 5
constexpr auto kHeartbeat = 200ms;                // non-streaming: whitespace so a closed socket is noticed

/// cpp-httplib task queue that starts a thread whenever every thread is busy (up to `max`), and
/// lets threads beyond `min` exit after kIdleThreadLifetime without work. shutdown() runs the
/// queued jobs, then waits for every thread to exit.
class GrowingThreadPool final : public httplib::TaskQueue {
 public:
  GrowingThreadPool(size_t min, size_t max) : min_(min), max_(std::max(min, max)) {}
  ~GrowingThreadPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lk(mu_);
    jobs_.push_back(std::move(fn));
    if (jobs_.size() > idle_ && live_ < max_) {
      ++live_;
      std::thread([this] { work(); }).detach();
    } else {
      cv_.notify_one();
    }
  }

  void shutdown() override {
    std::unique_lock<std::mutex> lk(mu_);
    stop_ = true;
    cv_.notify_all();
    done_.wait(lk, [this] { return live_ == 0; });
  }

 private:
  void work() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      ++idle_;
      const bool woke = cv_.wait_for(lk, kIdleThreadLifetime, [this] { return stop_ || !jobs_.empty(); });
      --idle_;
      if (!jobs_.empty()) {
        std::function<void()> fn = std::move(jobs_.front());
        jobs_.pop_front();
        lk.unlock();
        fn();
        lk.lock();
        continue;
      }
      if (stop_ || (!woke && live_ > min_)) break;
    }
    if (--live_ == 0) done_.notify_all();
  }

  const size_t min_, max_;
  std::mutex mu_;
  std::condition_variable cv_, done_;
  std::deque<std::function<void()>> jobs_;
  size_t live_ = 0, idle_ = 0;
  bool stop_ = false;
};

/// The string `code` of an error cpp-httplib answers itself (the envelope's other transport-level
/// errors use such names too: not_found, method_not_allowed, length_required, payload_too_large).
std::string http_error_code(int status) {
  switch (status) {
    case 400: return "bad_request";
    case 408: return "request_timeout";
    case 414: return "uri_too_long";
    case 416: return "range_not_satisfiable";
    case 431: return "request_header_fields_too_large";
    case 500: return "internal_server_error";
    case 503: return "service_unavailable";
    default: return "http_" + std::to_string(status);
  }
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_body(e).dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

ApiError not_found_error(const httplib::Request& req) {
  return ApiError(404, "Not found: " + req.method + " " + req.path, "", "invalid_request_error", "not_found");
}

ApiError method_not_allowed_error(const httplib::Request& req, const std::string& allow) {
  return ApiError(405, "Method Not Allowed: " + req.method + " " + req.path + " (allowed: " + allow + ")", "",
                  "invalid_request_error", "method_not_allowed");
}

/// True when `method` is one of the ", "-joined `allow` list.
bool method_listed(const std::string& allow, const std::string& method) {
  return (", " + allow + ",").find(" " + method + ",") != std::string::npos;
}

const ApiError kUnsupportedMediaType(400, "Unsupported Media Type: Only 'application/json' is allowed");
}  // namespace

struct HttpServer::Impl {
  const ServeContext& ctx;
  ServerArgs args;
  httplib::Server svr;
  int64_t created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::atomic<bool> stopping{false};
  /// Generation responses still being written; stop() lets them finish (their requests end with
  /// "abort" once the engine stops) before the listener and connections are closed.
  std::atomic<int> active_generations{0};
  /// The listening socket (set by the socket-options hook), re-listened with a larger backlog.
  int listen_sock = -1;

  /// Methods registered per route pattern (for 405 + Allow on a known route).
  std::map<std::string, std::set<std::string>> route_methods;

  Impl(const ServeContext& c, const ServerArgs& a) : ctx(c), args(a) {}

  /// "GET, HEAD" etc. for a path some route matches; "" for an unknown path.
  std::string allowed_methods(const std::string& path) const {
    std::set<std::string> m;
    for (const auto& [pattern, methods] : route_methods)
      if (pattern == path || (pattern.find('(') != std::string::npos && std::regex_match(path, std::regex(pattern))))
        m.insert(methods.begin(), methods.end());
    std::string out;
    for (const auto& x : m) out += (out.empty() ? "" : ", ") + x;
    return out;
  }

  bool authorized(const httplib::Request& req, httplib::Response& res) const {
    if (args.api_key.empty()) return true;
    if (req.get_header_value("Authorization") == "Bearer " + args.api_key) return true;
    send_error(res, ApiError(401, "Incorrect API key provided.", "", "invalid_request_error", "invalid_api_key"));
    return false;
  }

  json model_card() const {
    return json{{"id", ctx.served_model_name}, {"object", "model"}, {"created", created}, {"owned_by", "deepserve"},
                {"root", ctx.served_model_name}, {"parent", nullptr}, {"max_model_len", ctx.context_length}};
  }

  /// A generation route: auth, media type, `start(gone)` (ApiError -> its status; a client that
  /// leaves before the first event -> the requests aborted, no answer), then the session's response
  /// through a chunked content provider (D22).
  template <class Start>
  void generation(const httplib::Request& req, httplib::Response& res, Start start) {
    if (!authorized(req, res)) return;
    std::string ct = req.get_header_value("Content-Type");
    if (!ct.empty() && !is_json_media_type(ct)) {
      send_error(res, kUnsupportedMediaType);
      return;
    }
    decltype(start(ClientGone{})) s;
    const ClientGone gone = client_gone_check(req.remote_addr, req.remote_port, req.local_port);
    try {
      s = start(gone);
    } catch (const ClientDisconnected& e) {
      spdlog::info("{}: {}; aborted", req.path, e.what());
      send_error(res, ApiError(499, "Client closed the request before the first token.", "", "invalid_request_error",
                               "client_closed_request"));
      return;
    } catch (const ApiError& e) {
      if (e.status >= 500) spdlog::error("{} failed: {}", req.path, e.what());
      else spdlog::debug("{} rejected ({}): {}", req.path, e.status, e.what());
      send_error(res, e);
      return;
    }
    ++active_generations;
    std::shared_ptr<void> active(nullptr, [this](void*) { --active_generations; });  // released with the provider
    auto release = [s, active](bool) { s->abort(); };  // no-op when finished; aborts on a broken connection
    // HTTP/1.0 has no chunked coding (RFC 9112 7.1): its bodies end when the server closes.
    const bool http10 = req.version == "HTTP/1.0";
    if (s->streaming()) {
      res.set_header("Cache-Control", "no-cache");
      auto provider =
          [s, active, gone, path = req.path](size_t, httplib::DataSink& sink) {
            std::string out;
            bool more = s->next_stream(out);
            if (!out.empty() && !sink.write(out.data(), out.size())) {
              s->abort();
              return false;
            }
            if (!more) {
              sink.done();
              return true;
            }
            if (!sink.is_writable() || gone()) {
              spdlog::info("{}: the client closed the connection; request aborted", path);
              s->abort();
              return false;
            }
            return true;
          };
      if (http10) res.set_content_provider("text/event-stream", std::move(provider), release);
      else res.set_chunked_content_provider("text/event-stream", std::move(provider), release);
    } else {
      auto last_write = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
      auto provider =
          [s, last_write, active, gone, path = req.path](size_t, httplib::DataSink& sink) {
            std::string out;
            if (s->poll_complete(out)) {
              bool ok = sink.write(out.data(), out.size());
              if (ok) sink.done();
              return ok;
            }
            auto now = std::chrono::steady_clock::now();
            if (now - *last_write >= kHeartbeat) {  // JSON allows leading whitespace
              *last_write = now;
              if (!sink.write(" ", 1)) {
                s->abort();
                return false;
              }
            }
            if (!sink.is_writable() || gone()) {
              spdlog::info("{}: the client closed the connection; request aborted", path);
              s->abort();
              return false;
            }
            return true;
          };
      if (http10) res.set_content_provider("application/json", std::move(provider), release);
      else res.set_chunked_content_provider("application/json", std::move(provider), release);
    }
  }

  /// A JSON-in / JSON-out route (the text endpoints): auth, media type, ApiError -> its status.
  void json_route(const httplib::Request& req, httplib::Response& res,
                  json (*handler)(const ServeContext&, const std::string&)) {
    if (!authorized(req, res)) return;
    std::string ct = req.get_header_value("Content-Type");
    if (!ct.empty() && !is_json_media_type(ct)) {
      send_error(res, kUnsupportedMediaType);
      return;
    }
    try {
      res.set_content(handler(ctx, req.body).dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    } catch (const ApiError& e) {
      send_error(res, e);
    }
  }

  json model_info() const {
    return json{{"model_path", args.model_path.empty() ? ctx.served_model_name : args.model_path},
                {"tokenizer_path", args.tokenizer_path.empty() ? args.model_path : args.tokenizer_path},
                {"is_generation", true},
                {"preferred_sampling_params", nullptr},
                {"weight_version", "default"},
                {"served_model_name", ctx.served_model_name},
                {"max_model_len", ctx.context_length}};
  }

  json server_info() const {
    const auto& eo = ctx.engine->options();
    return json{{"model_path", args.model_path},
                {"tokenizer_path", args.tokenizer_path},
                {"served_model_name", ctx.served_model_name},
                {"host", args.host},
                {"port", args.port},
                {"context_length", ctx.context_length},
                {"max_running_requests", args.max_running_requests},
                {"max_total_num_tokens", eo.max_total_tokens},
                {"page_size", args.page_size},
                {"chunked_prefill_size", args.chunked_prefill_size},
                {"max_prefill_tokens", args.max_prefill_tokens},
                {"schedule_policy", args.schedule_policy},
                {"disable_radix_cache", args.disable_radix_cache},
                {"disable_cuda_graph", args.disable_cuda_graph},
                {"cuda_graph_bs", ctx.engine->cuda_graph_sizes()},
                {"tp_size", 1},
                {"dp_size", 1},
                {"device", args.device},
                {"numerics", args.numerics},
                {"sampling_defaults", args.sampling_defaults},
                {"stream_interval", args.stream_interval},
                {"reasoning_parser", args.reasoning_parser.empty() ? json(nullptr) : json(args.reasoning_parser)},
                {"tool_call_parser", args.tool_call_parser.empty() ? json(nullptr) : json(args.tool_call_parser)},
                {"allow_auto_truncate", args.allow_auto_truncate},
                {"enable_metrics", args.enable_metrics},
                {"log_requests", args.log_requests},
                {"api_key_set", !args.api_key.empty()},
                {"internal_states", json::array({{{"last_gen_throughput", ctx.metrics ? ctx.metrics->gen_throughput() : 0.0},
                                                     {"num_running_reqs", ctx.engine->in_flight()}}})},
                {"version", kVersion}};
  }

  EngineGauges gauges() const {
    EngineGauges g;
    const int inflight = ctx.engine->in_flight();
    const auto& eo = ctx.engine->options();
    g.num_running_reqs = std::min(inflight, eo.max_running_requests);
    g.num_queue_reqs = std::max(0, inflight - eo.max_running_requests);
    g.cuda_graph_replays = ctx.engine->cuda_graph_replays();
    if (ctx.metrics && eo.max_total_tokens > 0)
      g.token_usage = std::min(1.0, double(ctx.metrics->active_tokens()) / double(eo.max_total_tokens));
    return g;
  }

  void health(httplib::Response& res) {
    if (stopping.load()) {
      res.status = 503;
      return;
    }
    // SGLang's health check: a 1-token greedy generation from input_ids [0], healthy when it
    // answers within 20 s, or as soon as the engine completes any step after the check began (a
    // full server queues the probe behind the running requests, but a stepping engine is alive).
    Request r;
    r.id = "health";
    r.prompt_ids = {0};
    r.sampling.temperature = 0.0f;
    r.max_new_tokens = 1;
    try {
      const uint64_t steps0 = ctx.engine->steps();
      auto stream = ctx.engine->submit(std::move(r));
      const auto deadline = std::chrono::steady_clock::now() + 20s;
      std::optional<TokenEvent> ev;
      bool stepped = false;
      while (!ev && !stepped && std::chrono::steady_clock::now() < deadline) {
        ev = stream->pop(100ms);
        stepped = !ev && ctx.engine->steps() > steps0 + 1;  // a whole step began and ended after submit
      }
      if (!ev) stream->abort();
      res.status = stepped || (ev && ev->finish != FinishReason::Error && ev->finish != FinishReason::Abort) ? 200 : 503;
      if (ev) spdlog::debug("health check: generated token {} (finish {})", ev->token, finish_reason_name(ev->finish));
    } catch (const std::exception&) {
      res.status = 503;
    }
  }

  void routes() {
    auto on = [this](const char* method, const std::string& path, httplib::Server::Handler h) {
      if (std::string(method) == "GET") svr.Get(path, std::move(h));
      else if (std::string(method) == "POST") svr.Post(path, std::move(h));
      else svr.Put(path, std::move(h));
      route_methods[path].insert(method);
      if (std::string(method) == "GET") route_methods[path].insert("HEAD");  // cpp-httplib answers HEAD with GET's handler
    };
    auto get = [&](const std::string& p, httplib::Server::Handler h) { on("GET", p, std::move(h)); };
    auto post = [&](const std::string& p, httplib::Server::Handler h) { on("POST", p, std::move(h)); };
    auto put = [&](const std::string& p, httplib::Server::Handler h) { on("PUT", p, std::move(h)); };
    post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      generation(req, res, [&](const ClientGone& gone) { return ChatSession::start(ctx, req.body, gone); });
    });
    post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      generation(req, res, [&](const ClientGone& gone) {
        return CompletionSession::start(ctx, req.body, TextApi::Completions, gone);
      });
    });
    auto native = [this](const httplib::Request& req, httplib::Response& res) {
      generation(req, res, [&](const ClientGone& gone) {
        return CompletionSession::start(ctx, req.body, TextApi::Generate, gone);
      });
    };
    post("/generate", native);
    put("/generate", native);
    get("/get_model_info", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      res.set_content(model_info().dump(), "application/json");
    });
    get("/get_server_info", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      res.set_content(server_info().dump(), "application/json");
    });
    if (ctx.metrics && args.enable_metrics)  // open like /health (Prometheus scrapers carry no key)
      get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(ctx.metrics->render(gauges()), "text/plain; version=0.0.4; charset=utf-8");
      });
    get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      res.set_content(json{{"object", "list"}, {"data", json::array({model_card()})}}.dump(), "application/json");
    });
    get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      std::string name = req.matches[1];
      if (name != ctx.served_model_name) {
        send_error(res, ApiError(404, "The model '" + name + "' does not exist", "model", "invalid_request_error", "model_not_found"));
        return;
      }
      res.set_content(model_card().dump(), "application/json");
    });
    using Handler = json (*)(const ServeContext&, const std::string&);
    const std::pair<const char*, Handler> text_routes[] = {
        {"/tokenize", tokenize_endpoint},
        {"/v1/tokenize", tokenize_endpoint},
        {"/detokenize", detokenize_endpoint},
        {"/v1/detokenize", detokenize_endpoint},
        {"/separate_reasoning", separate_reasoning_endpoint},
        {"/parse_function_call", parse_function_call_endpoint},
    };
    for (const auto& [path, handler] : text_routes)
      post(path, [this, h = handler](const httplib::Request& req, httplib::Response& res) { json_route(req, res, h); });
    get("/health", [this](const httplib::Request&, httplib::Response& res) { health(res); });
    get("/health_generate", [this](const httplib::Request&, httplib::Response& res) { health(res); });
    // SGLang's /flush_cache (GET or POST): 200 when flushed, 400 when requests are queued or running.
    auto flush = [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      const bool ok = ctx.engine->flush_cache();
      res.status = ok ? 200 : 400;
      // SGLang answers "Cache flushed." with its 400 too; say what happened instead.
      res.set_content(ok ? "Cache flushed.\n"
                         : "Cache not flushed: requests are running or waiting. Retry when the server is idle.\n",
                      "text/plain");
    };
    get("/flush_cache", flush);
    post("/flush_cache", flush);
    // Before any body is read (cpp-httplib 0.11 reads a body without Content-Length until EOF and
    // does not apply the payload limit to chunked bodies):
    // - a CORS preflight (OPTIONS + Origin + Access-Control-Request-Method), any path, gets 200 with
    //   the Access-Control-Allow-* headers, without auth (Starlette's CORSMiddleware, SGLang);
    // - Content-Length must be one decimal number (repeated headers that disagree: 400, request
    //   smuggling; "-5": 400) and at most 16 MiB (413 at once, before cpp-httplib would wait for a
    //   body that may never come); these answers close the connection (the body is not read);
    // - a POST/PUT without Content-Length: an unknown path gets 404, a known one of other methods
    //   405 + Allow, a bodyless POST /flush_cache (no Transfer-Encoding; RFC 9112 6.3) is answered,
    //   anything else 411: chunked or unframed bodies are refused, so the 16 MiB limit (D21) cannot
    //   be bypassed and no handler thread waits for EOF.
    svr.set_pre_routing_handler([this, flush](const httplib::Request& req, httplib::Response& res) {
      if (is_cors_preflight(req)) {
        answer_cors_preflight(req, res, allowed_methods(req.path));
        return httplib::Server::HandlerResponse::Handled;
      }
      if (auto e = content_length_error(req, kMaxPayload)) {
        send_error_and_close(res, *e, &req);
        return httplib::Server::HandlerResponse::Handled;
      }
      if (req.method != "POST" && req.method != "PUT") return httplib::Server::HandlerResponse::Unhandled;
      const bool chunked = req.has_header("Transfer-Encoding");
      if (req.has_header("Content-Length") && !chunked) return httplib::Server::HandlerResponse::Unhandled;
      auto reply = [&](const ApiError& e) {  // a chunked body is left unread: close after answering
        if (chunked) send_error_and_close(res, e, &req);
        else send_error(res, e);
        return httplib::Server::HandlerResponse::Handled;
      };
      const std::string allow = allowed_methods(req.path);
      if (allow.empty()) return reply(not_found_error(req));
      if (!method_listed(allow, req.method)) {
        res.set_header("Allow", allow);
        return reply(method_not_allowed_error(req, allow));
      }
      if (req.path == "/flush_cache" && !chunked) {
        flush(req, res);
        return httplib::Server::HandlerResponse::Handled;
      }
      return reply(ApiError(411, "A request body must be sent with Content-Length (chunked or unframed bodies are "
                                 "not accepted; the limit is 16 MiB).", "", "invalid_request_error",
                            "length_required"));
    });
    // cpp-httplib adds Keep-Alive to every answer; not to one that closes the connection.
    svr.set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.get_header_value("Connection") == "close") res.headers.erase("Keep-Alive");
    });
    // Every error answer is an OpenAI error envelope (D18), also those cpp-httplib makes itself
    // (404 unknown route, 413 body over the limit, 400 unparsable request line). Those about a
    // request whose body was not read or cannot be framed (400, 413, 414, 416, 431) close the
    // connection: the bytes that follow cannot be trusted to start the next request.
    svr.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty() || res.content_provider_) return httplib::Server::HandlerResponse::Unhandled;
      if (res.status == 404 && !allowed_methods(req.path).empty()) {  // a known route, another method
        const std::string allow = allowed_methods(req.path);
        res.set_header("Allow", allow);
        send_error(res, method_not_allowed_error(req, allow));
      } else if (res.status == 404) {
        send_error(res, not_found_error(req));
      } else if (res.status == 413) {
        send_error_and_close(res, ApiError(413, "Request body too large: the limit is 16 MiB.", "",
                                           "invalid_request_error", "payload_too_large"), &req);
      } else {
        const int status = res.status;
        const ApiError e(status, status == 400   ? "Bad request: the HTTP request could not be parsed."
                                 : status == 414 ? "URI too long: the request line exceeds the server's limit."
                                                 : "HTTP error " + std::to_string(status) + ".",
                         "", status >= 500 ? "internal_server_error" : "invalid_request_error", http_error_code(status));
        if (status == 400 || status == 414 || status == 416 || status == 431) send_error_and_close(res, e, &req);
        else send_error(res, e);
      }
      return httplib::Server::HandlerResponse::Handled;
    }));
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string msg = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        msg = e.what();
      } catch (...) {
      }
      spdlog::error("unhandled exception in a handler: {}", msg);
      send_error(res, ApiError(500, "Internal server error: " + msg, "", "internal_server_error"));
    });
    svr.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      spdlog::debug("{} {} -> {}", req.method, req.path, res.status);
    });
  }
};

HttpServer::HttpServer(const ServeContext& ctx, const ServerArgs& args) : impl_(std::make_unique<Impl>(ctx, args)) {
  const size_t threads = size_t(args.max_running_requests + kThreadHeadroom);
  impl_->svr.new_task_queue = [threads] { return new GrowingThreadPool(threads, std::max(threads, kMaxHttpThreads)); };
  impl_->svr.set_payload_max_length(kMaxPayload);
  impl_->svr.set_read_timeout(60, 0);
  impl_->svr.set_write_timeout(60, 0);
  // Streams write one small SSE event per token: without TCP_NODELAY, Nagle's algorithm holds each
  // write until the client's (delayed) ACK of the previous one, tens of ms per token.
  impl_->svr.set_tcp_nodelay(true);
  // SO_REUSEADDR only: cpp-httplib's default also sets SO_REUSEPORT, which lets a second server bind
  // the same port and silently share its connections.
  impl_->svr.set_keep_alive_timeout(kKeepAliveTimeoutS);
  impl_->svr.set_keep_alive_max_count(kKeepAliveMaxCount);
  impl_->svr.set_socket_options([this](socket_t sock) {
    impl_->listen_sock = sock;  // the last socket configured is the one that got bound
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
  });
  impl_->svr.set_default_headers({{"Access-Control-Allow-Origin", "*"}});
  impl_->routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  int port = impl_->args.port;
  auto failed = [&](int err) {
    const std::string why = err == EADDRINUSE      ? "the port is in use"
                            : err == EADDRNOTAVAIL ? "the address is not one of this machine's (--host)"
                            : err == EACCES        ? "permission denied (ports below 1024 need privileges)"
                            : err != 0             ? std::string(std::strerror(err))
                                                   : "--host is not an address of this machine, or the port is in use";
    return std::runtime_error("cannot bind " + impl_->args.host + ":" + std::to_string(port) + ": " + why);
  };
  errno = 0;
  if (port == 0) {
    port = impl_->svr.bind_to_any_port(impl_->args.host);
    if (port < 0) {
      port = 0;
      throw failed(errno);
    }
  } else if (!impl_->svr.bind_to_port(impl_->args.host, port)) {
    throw failed(errno);
  }
  // cpp-httplib listens with a backlog of 5, so a burst of connections beyond the threads gets SYN
  // drops and retries; Linux lets listen() be called again to raise it.
  if (impl_->listen_sock >= 0 && ::listen(impl_->listen_sock, kListenBacklog) != 0)
    spdlog::warn("could not raise the listen backlog to {}", kListenBacklog);
  return port;
}

void HttpServer::listen() { impl_->svr.listen_after_bind(); }

void HttpServer::stop() {
  impl_->stopping.store(true);
  // Let in-flight responses write their last chunk ("abort" finish, [DONE]) first; bounded so a
  // stuck client cannot hold the shutdown.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (impl_->active_generations.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  impl_->svr.stop();
}

}  // namespace ds
