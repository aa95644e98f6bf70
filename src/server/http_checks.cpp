#include "server/http_checks.h"

#include <algorithm>
#include <cctype>
#include <memory>

#include "server/client_liveness.h"

namespace ds {

namespace {
constexpr int kLingerMs = 2000;  // lingering close: how long a refused body is read and discarded

std::string lower_trim(std::string s) {
  const auto not_space = [](unsigned char c) { return c != ' ' && c != '\t'; };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}
}  // namespace

bool is_json_media_type(const std::string& content_type) {
  return lower_trim(content_type.substr(0, content_type.find(';'))) == "application/json";
}

std::optional<ApiError> content_length_error(const httplib::Request& req, size_t limit) {
  const size_t n = req.get_header_value_count("Content-Length");
  if (n == 0) return std::nullopt;
  const std::string first = req.get_header_value("Content-Length", 0);
  for (size_t i = 0; i < n; ++i) {
    const std::string v = req.get_header_value("Content-Length", i);
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
      return ApiError(400, "Bad request: Content-Length '" + v.substr(0, 40) + "' is not a decimal number of bytes.",
                      "", "invalid_request_error", "bad_request");
    if (v != first)
      return ApiError(400, "Bad request: conflicting Content-Length headers (" + first.substr(0, 40) + " and " +
                               v.substr(0, 40) + ").", "", "invalid_request_error", "bad_request");
  }
  const std::string digits = first.substr(std::min(first.find_first_not_of('0'), first.size()));
  if (digits.size() > 18 || std::stoull(digits.empty() ? "0" : digits) > limit)
    return ApiError(413, "Request body too large: Content-Length " + first.substr(0, 40) + " exceeds the limit of " +
                             std::to_string(limit >> 20) + " MiB.", "", "invalid_request_error", "payload_too_large");
  return std::nullopt;
}

bool is_cors_preflight(const httplib::Request& req) {
  return req.method == "OPTIONS" && req.has_header("Origin") && req.has_header("Access-Control-Request-Method");
}

void answer_cors_preflight(const httplib::Request& req, httplib::Response& res, const std::string& methods) {
  res.status = 200;
  res.set_header("Access-Control-Allow-Methods",
                 methods.empty() ? "GET, HEAD, OPTIONS, POST, PUT" : methods + ", OPTIONS");
  const std::string asked = req.get_header_value("Access-Control-Request-Headers");
  res.set_header("Access-Control-Allow-Headers", asked.empty() ? "*" : asked);
  res.set_header("Access-Control-Max-Age", "600");
  res.set_content("OK", "text/plain");
}

void send_error_and_close(httplib::Response& res, const ApiError& e, const httplib::Request* req) {
  res.status = e.status;
  auto body = std::make_shared<std::string>(
      error_body(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  res.set_header("Connection", "close");
  std::string addr;
  int port = 0, local = 0;
  if (req && !req->remote_addr.empty()) addr = req->remote_addr, port = req->remote_port, local = req->local_port;
  res.set_content_provider(body->size(), "application/json",
                           [body, addr, port, local](size_t offset, size_t length, httplib::DataSink& sink) {
                             sink.write(body->data() + offset, length);
                             if (!addr.empty()) drain_request_socket(addr, port, local, kLingerMs);
                             return false;  // written; "failure" ends the keep-alive loop (socket closed)
                           });
}

}  // namespace ds
