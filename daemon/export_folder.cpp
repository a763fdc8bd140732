#include "daemon/export_folder.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "rpc/errors.hpp"

namespace tuneloop::daemon {

namespace fs = std::filesystem;
using rpc::ErrorCode;
using rpc::RpcError;

void prepare_export_folder(const fs::path& dir, const char* param) {
  auto refuse = [&](const std::string& why) {
    throw RpcError(ErrorCode::invalid_params, dir.string() + ": " + why, {{"param", param}});
  };
  std::error_code ec;
  if (!dir.parent_path().empty()) fs::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) == 0) return;
  if (errno != EEXIST)
    throw RpcError(ErrorCode::storage_error, "cannot create " + dir.string() + ": " + std::strerror(errno));
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0)
    throw RpcError(ErrorCode::storage_error, "cannot inspect " + dir.string() + ": " + std::strerror(errno));
  if (S_ISLNK(st.st_mode)) refuse("is a symbolic link; name the real folder or a new one");
  if (!S_ISDIR(st.st_mode)) refuse("exists and is not a folder");
  if (st.st_uid != ::geteuid()) refuse("belongs to another user; name a new folder");
  if ((st.st_mode & 022) != 0) refuse("other users can write to it; name a new folder");
  if (!fs::is_empty(dir, ec)) refuse("is not empty; name a new or an empty folder");
}

}  // namespace tuneloop::daemon
