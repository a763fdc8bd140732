// The daemon itself: liveness, status, the method list, event subscriptions, shutdown. Rows of the command table (docs/protocol.md).
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

void Daemon::add_daemon_methods() {
  using P = rpc::Param;
  using T = rpc::JsonType;
  auto& t = table_;

  t.add({"ping", {}, [](const Params&, Session&) { return json("pong"); }, "0.1",
         "Answers \"pong\"; for liveness checks and latency measurements."});

  t.add({"status", {}, [this](const Params&, Session&) { return status_json(); }, "0.1",
         "What is playing, the audio device, the listener and the queue."});

  t.add({"methods", {}, [this](const Params&, Session&) {
           json out = json::array();
           for (const auto& [name, c] : table_.all()) {
             json params = json::array();
             for (const auto& p : c.params)
               params.push_back({{"name", p.name}, {"type", to_string(p.type)}, {"required", p.required}});
             out.push_back({{"name", name}, {"since", c.since}, {"summary", c.summary}, {"params", params}});
           }
           return out;
         }, "0.1", "Every method with its parameters and the version that introduced it."});

  t.add({"subscribe", {P::opt("events", T::array)},
         [](const Params& p, Session& s) -> json {
           std::set<std::string> events;
           if (p.has("events")) {
             for (const auto& e : p.json().at("events")) {
               if (!e.is_string() || !rpc::event_names().count(e.get<std::string>()))
                 throw RpcError(ErrorCode::invalid_params, "parameter 'events' has an unknown event " + e.dump(),
                                {{"param", "events"}});
               events.insert(e.get<std::string>());
             }
           } else {
             events = rpc::event_names();
           }
           s.subscribe(events);
           return {{"subscribed", s.subscriptions()}};
         }, "0.1", "Sends the given events (default: all) to this connection as notifications."});

  t.add({"unsubscribe", {}, [](const Params&, Session& s) -> json {
           s.unsubscribe_all();
           return {{"subscribed", json::array()}};
         }, "0.1", "Stops all notifications to this connection."});

  t.add({"shutdown", {}, [this](const Params&, Session& s) -> json {
           spdlog::info("daemon: shutdown requested by peer={}", s.peer());
           // After this reply is on its way.
           asio::post(io_, [this] { shutdown("shutdown method"); });
           return {{"shutting_down", true}};
         }, "0.1", "Stops the daemon gracefully."});
}

}  // namespace tuneloop::daemon
