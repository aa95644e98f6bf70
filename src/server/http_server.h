// HTTP front end (cpp-httplib; the only file that includes httplib.h is http_server.cpp). D22:
// a task queue that grows with the open connections (--max-running-requests + 16 threads when quiet),
// every generation response through a content provider (disconnects seen each step), 16 MiB payload
// limit, read/write timeouts, keep-alive timeout, 405 + Allow for a known route with another method.
#pragma once
#include <memory>
#include <string>

#include "server/chat_service.h"
#include "server/server_args.h"

namespace ds {

class HttpServer {
 public:
  /// Routes: POST /v1/chat/completions, /v1/completions, POST|PUT /generate, GET /v1/models,
  /// GET /v1/models/{model}, GET /health, /health_generate, /get_model_info, /get_server_info,
  /// /metrics (--enable-metrics), POST /tokenize, /detokenize (and /v1/...), /separate_reasoning,
  /// /parse_function_call, GET|POST /flush_cache.
  HttpServer(const ServeContext& ctx, const ServerArgs& args);
  ~HttpServer();
  /// Binds host:port (port 0: any free port). Returns the bound port; throws std::runtime_error.
  int bind();
  /// Serves until stop(). Returns when the listener is closed and handlers have finished.
  void listen();
  /// Stops accepting connections (thread-safe; callable from a signal-watching thread).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ds
