// The IPC server's guards that need no daemon: the socket folder in a shared place, and
// lines from a web page.
#include "daemon/ipc_server.hpp"
#include "rpc/http_lines.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

using namespace tuneloop::daemon;
using tuneloop::rpc::looks_like_http;
namespace fs = std::filesystem;

namespace {

std::string refusal(const fs::path& dir) {
  try {
    ensure_private_folder(dir);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(SocketFolder, AMissingOneIsCreatedPrivate) {
  tuneloop::testing::TempDir tmp("tuneloop-sock");
  const fs::path dir = fs::path(tmp.file("run"));
  EXPECT_EQ(refusal(dir), "");
  struct stat st{};
  ASSERT_EQ(::lstat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(refusal(dir), "");  // and is accepted as it is the next time
}

TEST(SocketFolder, ALinkOrAFolderOpenToOthersIsRefusedSayingWhy) {
  tuneloop::testing::TempDir tmp("tuneloop-sock");
  const fs::path open = fs::path(tmp.file("open"));
  fs::create_directory(open);
  fs::permissions(open, fs::perms::owner_all | fs::perms::group_all | fs::perms::others_all,
                  fs::perm_options::replace);
  EXPECT_NE(refusal(open).find("open to other users (mode 777)"), std::string::npos) << refusal(open);

  const fs::path target = fs::path(tmp.file("target"));
  fs::create_directory(target);
  const fs::path link = fs::path(tmp.file("link"));
  fs::create_directory_symlink(target, link);
  EXPECT_NE(refusal(link).find("symbolic link"), std::string::npos) << refusal(link);
}

TEST(HttpLines, RequestAndHeaderLinesAreRecognisedAndJsonIsNot) {
  EXPECT_TRUE(looks_like_http("POST / HTTP/1.1"));
  EXPECT_TRUE(looks_like_http("GET /rpc HTTP/1.0"));
  EXPECT_TRUE(looks_like_http("Host: 127.0.0.1:6601"));
  EXPECT_FALSE(looks_like_http(R"({"jsonrpc":"2.0","id":1,"method":"ping"})"));
  EXPECT_FALSE(looks_like_http(R"([{"jsonrpc":"2.0","method":"ping"}])"));
}
