// MPD's playback options (consume, random, repeat, single). Clients set and show them,
// so they are kept and reported, shared by every connection as MPD's partition shares
// them; tuneloop's queue does not follow them (the loop decides what plays next).
#include "mpd/arguments.hpp"
#include "mpd/handlers.hpp"

namespace tuneloop::mpd {

namespace {

Result set_option(Context& ctx, bool Options::*field, const std::string& value) {
  const bool on = parse_bool(value);
  if (ctx.shared.options.*field != on) {
    ctx.shared.options.*field = on;
    ctx.shared.raise_all(idle::options);
  }
  return Result::ok;
}

}  // namespace

Result handle_consume(Context& ctx, const Args& args) {
  return set_option(ctx, &Options::consume, args[0]);
}

Result handle_random(Context& ctx, const Args& args) {
  return set_option(ctx, &Options::random, args[0]);
}

Result handle_repeat(Context& ctx, const Args& args) {
  return set_option(ctx, &Options::repeat, args[0]);
}

Result handle_single(Context& ctx, const Args& args) {
  const std::string& mode = args[0];
  if (mode != "0" && mode != "1" && mode != "oneshot")
    throw MpdError(Ack::arg, "Unrecognized single mode, expected 0, 1, or oneshot");
  if (ctx.shared.options.single != mode) {
    ctx.shared.options.single = mode;
    ctx.shared.raise_all(idle::options);
  }
  return Result::ok;
}

// Tracks are played as generated, with no replay gain.
Result handle_replay_gain_status(Context& ctx, const Args&) {
  ctx.pair("replay_gain_mode", "off");
  return Result::ok;
}

}  // namespace tuneloop::mpd
