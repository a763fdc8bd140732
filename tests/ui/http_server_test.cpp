// The web player's request guards, without a network: which Host headers count as
// loopback, which URL paths map to files inside the UI folder, what a token looks like.
#include "daemon/http_server.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace fs = std::filesystem;
using namespace tuneloop::daemon;

namespace {

class UiFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(root_ / "ui" / "img");
    std::ofstream(root_ / "ui" / "index.html") << "<!doctype html>";
    std::ofstream(root_ / "ui" / "img" / "a.svg") << "<svg/>";
    std::ofstream(root_ / "ui" / ".secret") << "x";
    std::ofstream(root_ / "outside.txt") << "private";
    fs::create_symlink(root_ / "outside.txt", root_ / "ui" / "link.txt");
  }
  fs::path ui() const { return root_ / "ui"; }
  tuneloop::testing::TempDir dir_{"tuneloop-http"};
  const fs::path root_ = dir_.path();
};

}  // namespace

TEST(LoopbackHost, AcceptsLoopbackNamesOnTheServersPortOnly) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1:8754", 8754));
  EXPECT_TRUE(is_loopback_host("localhost:8754", 8754));
  EXPECT_TRUE(is_loopback_host("LocalHost:8754", 8754));
  EXPECT_TRUE(is_loopback_host("[::1]:8754", 8754));
  EXPECT_FALSE(is_loopback_host("127.0.0.1:8755", 8754));
  EXPECT_FALSE(is_loopback_host("localhost", 8754));
  EXPECT_FALSE(is_loopback_host("evil.example:8754", 8754));
  EXPECT_FALSE(is_loopback_host("localhost.evil.example:8754", 8754));
  EXPECT_FALSE(is_loopback_host("127.0.0.1:8754.evil.example", 8754));
  EXPECT_FALSE(is_loopback_host("", 8754));
}

TEST_F(UiFolder, ServesFilesInsideTheFolderAndIndexForTheRoot) {
  EXPECT_EQ(static_file(ui(), "/"), fs::canonical(ui() / "index.html"));
  EXPECT_EQ(static_file(ui(), "/img/a.svg"), fs::canonical(ui() / "img" / "a.svg"));
}

TEST_F(UiFolder, RefusesPathsThatCouldLeaveTheFolder) {
  for (const char* p : {"/../outside.txt", "/img/../../outside.txt", "/%2e%2e/outside.txt", "/.secret",
                        "//etc/passwd", "/img//a.svg", "/link.txt", "/missing.html", "/img", "relative",
                        "/a\\b", ""})
    EXPECT_EQ(static_file(ui(), p), std::nullopt) << p;
}

TEST(RandomToken, IsSixtyFourHexDigitsAndNeverRepeats) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    const std::string t = random_token();
    ASSERT_EQ(t.size(), 64u);
    EXPECT_EQ(t.find_first_not_of("0123456789abcdef"), std::string::npos);
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 20u);
}
