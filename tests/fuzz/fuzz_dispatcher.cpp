// Whole JSON-RPC request lines into the dispatcher, as any front door (socket, TCP, POST
// /rpc) hands them over. The table has a row of every parameter shape the daemon's methods
// use, so argument checking runs on everything the fuzzer finds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rpc/dispatcher.hpp"

using namespace tuneloop::rpc;
using nlohmann::json;

namespace {

const CommandTable& table() {
  static const CommandTable t = [] {
    CommandTable t;
    auto echo = [](const Params& p, Session&) { return json(p.has("x") ? "x" : "none"); };
    t.add({"ping", {}, [](const Params&, Session&) { return json("pong"); }, "0.1", "pong"});
    t.add({"rate",
           {Param::req("track_id", JsonType::integer).range(1, 9e15),
            Param::opt("stars", JsonType::number).range(1, 5)},
           echo, "0.1", "numbers"});
    t.add({"songs.add", {Param::req("path", JsonType::string)}, echo, "0.1", "a string"});
    t.add({"listener.export",
           {Param::req("dir", JsonType::string), Param::opt("format", JsonType::string).choices({"json", "csv"})},
           echo, "0.1", "choices"});
    t.add({"listener.delete", {Param::req("confirm", JsonType::boolean)}, echo, "0.1", "a boolean"});
    t.add({"study.start", {Param::opt("iterations", JsonType::array), Param::opt("x", JsonType::object)},
           echo, "0.1", "arrays and objects"});
    t.add({"fail", {}, [](const Params&, Session&) -> json { throw std::runtime_error("boom"); }, "0.1", "throws"});
    return t;
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Dispatcher dispatcher(table());
  Session session("fuzz");
  const json reply = dispatcher.handle(std::string_view(reinterpret_cast<const char*>(data), size), session);
  // Whatever came in, what goes out must be sendable.
  (void)reply.dump(-1, ' ', false, json::error_handler_t::replace);
  return 0;
}
