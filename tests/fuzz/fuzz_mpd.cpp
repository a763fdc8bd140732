// Whole MPD conversations into one connection's ClientState, a line at a time, as the MPD
// door hands them over: the tokenizer, command lists, idle, every command's argument
// parsing, song filters (nested expressions included), stickers and the replies. The
// daemon behind it is the command-layer tests' fake, so every command can run.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "mpd/client_state.hpp"
#include "rpc/dispatcher.hpp"
#include "tests/mpd/fake_daemon.hpp"

#include <spdlog/spdlog.h>

using namespace tuneloop;

namespace {

// The daemon each input starts from.
void reset(mpd_testing::FakeDaemon& fake, bool audio) {
  fake = mpd_testing::FakeDaemon{};
  fake.audio = audio;
  fake.tracks = {{1, 1, "fast,drums", 8.0}, {2, 1, "slow", 6.0}, {3, std::nullopt, "", 4.0}};
  fake.upcoming = {1, 2, 3};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // One table for every input (its rows point at `fake`); the fake's state is reset per input.
  static mpd_testing::FakeDaemon fake;
  static const rpc::CommandTable table = [] {
    rpc::CommandTable t;
    fake.add_rows(t);
    return t;
  }();
  static const rpc::Dispatcher dispatcher(table);
  static const bool quiet = [] {  // the daemon's log lines about bad peers, by the million
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  reset(fake, size % 2 == 0);  // half the runs with an audio device, half without
  mpd::Shared shared(dispatcher, size % 3 == 0 ? "secret" : "");
  mpd::ClientState client(shared, "fuzz");

  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty()) {
    const auto end = rest.find('\n');
    const auto line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (line.size() >= mpd::kMaxLineBytes) break;  // the server closes such a connection
    const auto outcome = client.on_line(line);
    if (outcome.after != mpd::ClientState::After::read_on) break;
  }
  (void)client.raise(~0u);
  return 0;
}
