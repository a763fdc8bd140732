#pragma once
// The loop's protocol methods: iterate, iterations.list/show/activate/delete,
// job.status, job.cancel, loop.status (docs/protocol.md, docs/loop.md).

#include "rpc/commands.hpp"
#include "loop/loop_service.hpp"
#include "store/store.hpp"

#include <functional>

namespace tuneloop::daemon {

struct LoopMethodContext {
  store::Store& store;
  loop::LoopService& loop;
  std::function<store::Id()> listener_id;
  /// The active iteration changed (rollback): the daemon reorders its play queue.
  std::function<void()> active_changed;
};

/// Adds the rows. Handlers run on the io thread and may throw RpcError / store errors.
void add_loop_methods(rpc::CommandTable& table, LoopMethodContext context);

}  // namespace tuneloop::daemon
