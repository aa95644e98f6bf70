// Minimal blocking HTTP/1.1 client (libcurl) for `deepserve bench` / `deepserve eval`: JSON POST
// with line-by-line streaming of the response body (SSE), and GET. Thread-safe: each call uses its
// own easy handle.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace ds::http {

/// Result of one request. `status` 0 means no HTTP response (then `error` holds curl's message).
/// `body` holds the whole body for non-streaming calls, and for streaming calls whose status is
/// not 200 (the error text); for a 200 stream the lines went to the callback instead.
struct Response {
  long status = 0;
  std::string body;
  std::string error;
};

/// Called for every response line of a 200 streaming response (without the trailing "\n" / "\r\n"),
/// as soon as the line has arrived.
using LineCallback = std::function<void(const std::string& line)>;

/// Extra request headers ("Name: value"). `auth_headers()` gives `Authorization: Bearer $OPENAI_API_KEY`
/// when that variable is set (bench_serving's convention), else nothing.
std::vector<std::string> auth_headers();

/// "HTTP <status>: <body>" for a failed response (or the transport error when no status came). A
/// 401 gets a hint: the key is read from OPENAI_API_KEY (sent as `Authorization: Bearer`), and
/// whether it was set.
std::string describe_failure(const Response& r);

/// POST `body` (Content-Type: application/json) to `url`. With `on_line`, a 200 body is delivered
/// line by line; a final unterminated line is delivered at the end. `timeout_s` 0 = none.
Response post_json(const std::string& url, const std::string& body, const std::vector<std::string>& headers,
                   const LineCallback& on_line = nullptr, long timeout_s = 0);

/// GET `url`; the whole body in Response::body.
Response get(const std::string& url, const std::vector<std::string>& headers, long timeout_s = 30);

}  // namespace ds::http
