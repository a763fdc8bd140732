#pragma once
// Where listener.export and study.export may write: never through a link, never into a
// folder another user owns or can write to (they could plant links to the listener's own
// files, or a gnuplot script that study.export would run).
#include <filesystem>

namespace tuneloop::daemon {

/// Creates `dir` (0700, parents as needed) when it is missing; an existing one must be a
/// real folder of this user's, closed to other users' writes, and empty. Throws RpcError
/// (invalid params, naming the parameter `param`) saying what is wrong.
void prepare_export_folder(const std::filesystem::path& dir, const char* param);

}  // namespace tuneloop::daemon
