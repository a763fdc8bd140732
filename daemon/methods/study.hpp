#pragma once
// Human studies over IPC: study.start draws a blinded, shuffled playlist of tracks from
// chosen iterations; study.next / study.play / study.rate walk through it; study.finish and
// study.export write the same files as a simulated pilot study (events.csv, summary.json,
// report.md, plots). Study judgements live in the store's study tables, apart from the
// listener's feedback ratings, so an evaluation does not train the loop.
// See docs/study-guide.md §5.

#include "rpc/commands.hpp"
#include "store/store.hpp"

#include <filesystem>
#include <functional>

namespace tuneloop::daemon {

struct StudyMethodContext {
  store::Store& store;
  std::function<store::Id()> listener_id;
  /// Where blinded copies of the audio go (DATA/studies/...).
  std::function<std::filesystem::path()> data_dir;
  /// The table itself, so study.play can start playback through the player.play row.
  const rpc::CommandTable& table;
};

/// Adds study.start, study.next, study.play, study.rate, study.status, study.list,
/// study.finish and study.export. Handlers run on the io thread and throw RpcError /
/// store errors.
void add_study_methods(rpc::CommandTable& table, StudyMethodContext context);

}  // namespace tuneloop::daemon
