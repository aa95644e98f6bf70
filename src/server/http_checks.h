#pragma once
// Transport-level request checks of the HTTP server (docs/server.md "HTTP surface"): media type,
// Content-Length framing, CORS preflight. Pure functions over cpp-httplib's Request so they are
// unit-tested without a socket (tests/unit/test_server_http_checks.cpp).

#include <cstddef>
#include <optional>
#include <string>

#include <httplib.h>

#include "server/openai_protocol.h"

namespace ds {

/// True when `content_type` names application/json: the media type before any `;` parameters,
/// trimmed, compared case-insensitively (RFC 9110 8.3.1), e.g. "Application/JSON; charset=utf-8".
/// An empty header is not JSON here (callers accept a missing Content-Type separately).
bool is_json_media_type(const std::string& content_type);

/// The framing error of `req`'s Content-Length headers, if any: 400 when a value is not a decimal
/// number (e.g. "-5", "abc", "5, 5") or when repeated headers disagree (RFC 9112 6.3: request
/// smuggling), 413 when the declared length exceeds `limit` bytes. nullopt when absent or valid.
std::optional<ApiError> content_length_error(const httplib::Request& req, size_t limit);

/// True for a CORS preflight: OPTIONS with both `Origin` and `Access-Control-Request-Method`.
bool is_cors_preflight(const httplib::Request& req);

/// Answers a preflight with 200 "OK" and Access-Control-Allow-{Origin: *, Methods: `methods` (plus
/// OPTIONS), Headers: the requested headers echoed, or * when none were requested},
/// Access-Control-Max-Age: 600 -- what Starlette's CORSMiddleware with allow_* = ["*"] sends
/// (SGLang). `methods` is a ", "-joined list; empty -> every method the server routes.
void answer_cors_preflight(const httplib::Request& req, httplib::Response& res, const std::string& methods);

/// Writes `e` as the JSON error envelope with `Connection: close`, and makes cpp-httplib close the
/// socket once the body is written (a content provider that reports failure after writing it all):
/// for requests whose body was not read or whose framing cannot be trusted. With `req` (a parsed
/// request: its remote address is known) the close lingers: FIN first, then what the client still
/// sends is read and discarded for up to 2 s (drain_request_socket), so a client still sending a
/// refused body reads the answer instead of a connection reset.
void send_error_and_close(httplib::Response& res, const ApiError& e, const httplib::Request* req = nullptr);

}  // namespace ds
