// The listener's data as a whole: export and deletion. Rows of the command table (docs/protocol.md).
#include "daemon/daemon.hpp"
#include "daemon/methods/loop.hpp"
#include "daemon/methods/study.hpp"
#include "rpc/errors.hpp"
#include "daemon/daemon_helpers.hpp"
#include "daemon/export_folder.hpp"
#include "audio/audio.hpp"
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace tuneloop::daemon {

namespace fs = std::filesystem;
using nlohmann::json;
using rpc::ErrorCode;
using rpc::Params;
using rpc::RpcError;
using rpc::Session;
using namespace detail;

void Daemon::add_listener_methods() {
  using P = rpc::Param;
  using T = rpc::JsonType;
  auto& t = table_;

  t.add({"listener.export", {P::req("dir", T::string), P::opt("format", T::string).choices({"json", "csv"})},
         [this](const Params& p, Session&) -> json {
           return export_listener(p.get<std::string>("dir"), p.value<std::string>("format", "json"));
         }, "0.1", "Writes everything recorded about the listener (and the audio) to a folder."});

  t.add({"listener.delete", {P::req("confirm", T::boolean)},
         [this](const Params& p, Session&) -> json {
           if (!p.get<bool>("confirm"))
             throw RpcError(ErrorCode::invalid_params, "parameter 'confirm' must be true to delete the listener",
                            {{"param", "confirm"}});
           return delete_listener();
         }, "0.1", "Deletes the listener's ratings, plays, songs, tracks and iterations."});
}

}  // namespace tuneloop::daemon
