// Transport-level checks (src/server/http_checks.h): media type, Content-Length framing, CORS
// preflight, close-after-error; each case is a problem found by a new-user trial of `deepserve serve`.
#include <gtest/gtest.h>

#include "server/http_checks.h"

namespace {

httplib::Request request(const std::string& method, std::initializer_list<std::pair<std::string, std::string>> headers) {
  httplib::Request r;
  r.method = method;
  r.path = "/v1/chat/completions";
  for (const auto& [k, v] : headers) r.headers.emplace(k, v);
  return r;
}

TEST(HttpChecks, JsonMediaTypeIsCaseInsensitiveWithParameters) {
  for (const char* ok : {"application/json", "Application/JSON", "APPLICATION/JSON; charset=utf-8",
                         "application/json;charset=UTF-8", " application/json ; charset=utf-8"})
    EXPECT_TRUE(ds::is_json_media_type(ok)) << ok;
  for (const char* bad : {"", "text/plain", "application/jsonx", "application/json-patch+json", "application"})
    EXPECT_FALSE(ds::is_json_media_type(bad)) << bad;
}

TEST(HttpChecks, ContentLengthFraming) {
  const size_t limit = size_t(16) << 20;
  EXPECT_FALSE(ds::content_length_error(request("POST", {}), limit));
  EXPECT_FALSE(ds::content_length_error(request("POST", {{"Content-Length", "2"}}), limit));
  EXPECT_FALSE(ds::content_length_error(request("POST", {{"Content-Length", "2"}, {"Content-Length", "2"}}), limit));
  EXPECT_FALSE(ds::content_length_error(request("POST", {{"Content-Length", "16777216"}}), limit));  // exactly 16 MiB
  auto dup = ds::content_length_error(request("POST", {{"Content-Length", "2"}, {"Content-Length", "30"}}), limit);
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->status, 400);
  EXPECT_EQ(std::string(dup->what()), "Bad request: conflicting Content-Length headers (2 and 30).");
  EXPECT_EQ(dup->code, "bad_request");
  for (const char* v : {"-5", "abc", "12abc", "5, 5", "", "+5"}) {
    auto e = ds::content_length_error(request("POST", {{"Content-Length", v}}), limit);
    ASSERT_TRUE(e) << v;
    EXPECT_EQ(e->status, 400) << v;
    EXPECT_EQ(std::string(e->what()), "Bad request: Content-Length '" + std::string(v) +
                                          "' is not a decimal number of bytes.");
  }
  for (const char* v : {"16777217", "99999999999", "99999999999999999999999"}) {
    auto e = ds::content_length_error(request("POST", {{"Content-Length", v}}), limit);
    ASSERT_TRUE(e) << v;
    EXPECT_EQ(e->status, 413) << v;
    EXPECT_EQ(std::string(e->what()), "Request body too large: Content-Length " + std::string(v) +
                                          " exceeds the limit of 16 MiB.");
    EXPECT_EQ(e->code, "payload_too_large");
  }
}

TEST(HttpChecks, CorsPreflight) {
  EXPECT_TRUE(ds::is_cors_preflight(
      request("OPTIONS", {{"Origin", "http://a.example"}, {"Access-Control-Request-Method", "POST"}})));
  EXPECT_FALSE(ds::is_cors_preflight(request("OPTIONS", {{"Origin", "http://a.example"}})));
  EXPECT_FALSE(ds::is_cors_preflight(request("OPTIONS", {})));
  EXPECT_FALSE(ds::is_cors_preflight(
      request("POST", {{"Origin", "http://a.example"}, {"Access-Control-Request-Method", "POST"}})));

  httplib::Response res;
  ds::answer_cors_preflight(request("OPTIONS", {{"Origin", "o"}, {"Access-Control-Request-Method", "POST"},
                                                {"Access-Control-Request-Headers", "authorization,content-type"}}),
                            res, "POST");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.get_header_value("Access-Control-Allow-Methods"), "POST, OPTIONS");
  EXPECT_EQ(res.get_header_value("Access-Control-Allow-Headers"), "authorization,content-type");
  EXPECT_EQ(res.get_header_value("Access-Control-Max-Age"), "600");
  EXPECT_EQ(res.body, "OK");
  httplib::Response any;
  ds::answer_cors_preflight(request("OPTIONS", {{"Origin", "o"}, {"Access-Control-Request-Method", "GET"}}), any, "");
  EXPECT_EQ(any.get_header_value("Access-Control-Allow-Methods"), "GET, HEAD, OPTIONS, POST, PUT");
  EXPECT_EQ(any.get_header_value("Access-Control-Allow-Headers"), "*");
}

TEST(HttpChecks, SendErrorAndCloseWritesTheWholeBodyThenFails) {
  httplib::Response res;
  ds::send_error_and_close(res, ds::ApiError(400, "Bad request: x.", "", "invalid_request_error", "bad_request"));
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.get_header_value("Connection"), "close");
  EXPECT_TRUE(res.body.empty());
  const std::string want =
      R"({"error":{"code":"bad_request","message":"Bad request: x.","param":null,"type":"invalid_request_error"}})";
  ASSERT_EQ(res.content_length_, want.size());
  std::string got;
  httplib::DataSink sink;
  sink.write = [&](const char* d, size_t n) { got.append(d, n); return true; };
  EXPECT_FALSE(res.content_provider_(0, res.content_length_, sink));  // false: cpp-httplib closes the socket
  EXPECT_EQ(got, want);
}

}  // namespace
