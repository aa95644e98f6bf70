// `deepserve --version`, `deepserve serve --version`, and the value types shown by `serve --help`
// (INT / FLOAT for SGLang's numeric flags instead of CLI11's TEXT). Runs the built binary.
#include <gtest/gtest.h>

#include <cstdio>
#include <regex>
#include <string>

#include "common/version.h"
#include "server/server_args.h"

namespace {

// stdout of `DEEPSERVE_BINARY args` and its exit status.
std::pair<std::string, int> run(const std::string& args) {
  const std::string cmd = std::string(DEEPSERVE_BINARY) + " " + args + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {"", -1};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  return {out, WIFEXITED(st) ? WEXITSTATUS(st) : -1};
}

}  // namespace

TEST(CliVersion, TopLevelAndServePrintTheVersion) {
  const std::string want = std::string("deepserve ") + ds::kVersion + "\n";
  EXPECT_EQ(run("--version"), std::make_pair(want, 0));
  EXPECT_EQ(run("serve --version"), std::make_pair(want, 0));
  // --version wins over other flags, even ones that would be refused (nothing is loaded).
  EXPECT_EQ(run("serve --tp 8 --version"), std::make_pair(want, 0));
  EXPECT_TRUE(std::regex_match(ds::kVersion, std::regex(R"(\d+\.\d+\.\d+)")));
}

TEST(CliVersion, ServeHelpShowsIntAndFloatTypes) {
  const auto [help, rc] = run("serve --help");
  ASSERT_EQ(rc, 0);
  for (const char* f : {"--port", "--max-running-requests", "--page-size", "--context-length", "--chunked-prefill-size",
                        "--max-total-tokens", "--tp,--tp-size", "--stream-interval"})
    EXPECT_TRUE(std::regex_search(help, std::regex(std::string(f) + " INT\\b"))) << f;
  for (const char* f : {"--mem-fraction-static", "--watchdog-timeout"})
    EXPECT_TRUE(std::regex_search(help, std::regex(std::string(f) + " FLOAT\\b"))) << f;
  for (const char* f : {"--host", "--model-path,--model", "--schedule-policy"})
    EXPECT_TRUE(std::regex_search(help, std::regex(std::string(f) + " TEXT\\b"))) << f;
  EXPECT_FALSE(std::regex_search(help, std::regex("--port TEXT")));
  EXPECT_NE(help.find("--version"), std::string::npos);
}

TEST(CliVersion, ParseSetsVersionRequested) {
  const char* argv[] = {"serve", "--version"};
  const ds::ServerArgs a = ds::parse_server_args(2, argv);
  EXPECT_TRUE(a.version_requested);
  EXPECT_FALSE(a.help_requested);
}
