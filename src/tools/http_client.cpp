// libcurl-backed HTTP client. See http_client.h.
#include "tools/http_client.h"

#include <cstdlib>
#include <mutex>

#include <curl/curl.h>

namespace ds::http {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Sink {
  CURL* curl = nullptr;
  const LineCallback* on_line = nullptr;
  std::string buffer;  // partial line (streaming) or whole body
  std::string body;
  bool streaming_200 = false;
  bool status_known = false;
};

void emit_lines(Sink& s, bool final) {
  size_t start = 0;
  for (;;) {
    const size_t nl = s.buffer.find('\n', start);
    if (nl == std::string::npos) break;
    size_t end = nl;
    if (end > start && s.buffer[end - 1] == '\r') --end;
    (*s.on_line)(s.buffer.substr(start, end - start));
    start = nl + 1;
  }
  s.buffer.erase(0, start);
  if (final && !s.buffer.empty()) {
    (*s.on_line)(s.buffer);
    s.buffer.clear();
  }
}

size_t on_write(char* data, size_t size, size_t nmemb, void* user) {
  auto& s = *static_cast<Sink*>(user);
  const size_t n = size * nmemb;
  if (!s.status_known) {
    long code = 0;
    curl_easy_getinfo(s.curl, CURLINFO_RESPONSE_CODE, &code);
    s.streaming_200 = (code == 200) && s.on_line && *s.on_line;
    s.status_known = true;
  }
  if (s.streaming_200) {
    s.buffer.append(data, n);
    emit_lines(s, false);
  } else {
    s.body.append(data, n);
  }
  return n;
}

Response perform(CURL* curl, Sink& sink, curl_slist* hdrs, long timeout_s) {
  Response r;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  const CURLcode rc = curl_easy_perform(curl);
  if (sink.streaming_200) emit_lines(sink, true);
  if (rc != CURLE_OK) {
    r.error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  if (rc != CURLE_OK && r.status == 200) r.status = 0;  // broken stream: not a success
  r.body = std::move(sink.body);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(curl);
  return r;
}

curl_slist* make_headers(const std::vector<std::string>& headers, bool json) {
  curl_slist* h = nullptr;
  if (json) h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "Expect:");  // no 100-continue round trip for large prompts
  for (const auto& x : headers) h = curl_slist_append(h, x.c_str());
  return h;
}

}  // namespace

std::vector<std::string> auth_headers() {
  const char* key = std::getenv("OPENAI_API_KEY");
  if (key && *key) return {std::string("Authorization: Bearer ") + key};
  return {};
}

std::string describe_failure(const Response& r) {
  if (r.status == 0) return r.error;
  std::string out = "HTTP " + std::to_string(r.status) + ": " + r.body;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (r.status == 401) {
    const char* key = std::getenv("OPENAI_API_KEY");
    out += (key && *key) ? " (hint: the server refused the key in OPENAI_API_KEY, sent as 'Authorization: Bearer'; "
                           "set it to the server's --api-key)"
                         : " (hint: the server wants an API key; set OPENAI_API_KEY to its --api-key, sent as "
                           "'Authorization: Bearer')";
  }
  return out;
}

Response post_json(const std::string& url, const std::string& body, const std::vector<std::string>& headers,
                   const LineCallback& on_line, long timeout_s) {
  global_init();
  CURL* curl = curl_easy_init();
  if (!curl) return Response{0, "", "curl_easy_init failed"};
  Sink sink;
  sink.curl = curl;
  sink.on_line = &on_line;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  return perform(curl, sink, make_headers(headers, true), timeout_s);
}

Response get(const std::string& url, const std::vector<std::string>& headers, long timeout_s) {
  global_init();
  CURL* curl = curl_easy_init();
  if (!curl) return Response{0, "", "curl_easy_init failed"};
  Sink sink;
  sink.curl = curl;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  return perform(curl, sink, make_headers(headers, false), timeout_s);
}

}  // namespace ds::http
