// The connection itself and what the server offers (MPD's ClientCommands.cxx and parts
// of OtherCommands.cxx).
#include "mpd/arguments.hpp"
#include "mpd/handlers.hpp"

namespace tuneloop::mpd {

namespace {

// MPD's default max_output_buffer_size; binarylimit must leave room for the rest of a reply.
constexpr std::size_t kMaxOutputBytes = 8 * 1024 * 1024;

// Constant time, so a password cannot be guessed a character at a time.
bool same_secret(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size() || a.empty()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

TagMask parse_tag_mask(const Args& args) {
  if (args.size() < 2) throw MpdError(Ack::arg, "Not enough arguments");
  TagMask mask = 0;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const auto tag = parse_tag(args[i]);
    if (!tag) throw MpdError(Ack::arg, "Unknown tag type");
    mask |= bit(*tag);
  }
  return mask;
}

}  // namespace

Result handle_ping(Context&, const Args&) { return Result::ok; }

Result handle_close(Context&, const Args&) { return Result::close; }

Result handle_password(Context& ctx, const Args& args) {
  // Like MPD, a password is wrong when none is configured, too.
  if (!same_secret(args[0], ctx.shared.password)) throw MpdError(Ack::password, "incorrect password");
  ctx.client.permission = permission::all;
  return Result::ok;
}

Result handle_binarylimit(Context& ctx, const Args& args) {
  const unsigned value = parse_unsigned(args[0], static_cast<unsigned>(kMaxOutputBytes - 4096));
  if (value < 64) throw MpdError(Ack::arg, "Value too small");
  ctx.client.binary_limit = value;
  return Result::ok;
}

Result handle_tagtypes(Context& ctx, const Args& args) {
  if (args.empty()) {
    const TagMask shown = kFilledTags & ctx.client.tag_mask;
    for (int i = 0; i < kTagCount; ++i)
      if (shown & bit(static_cast<Tag>(i))) ctx.pair("tagtype", tag_name(static_cast<Tag>(i)));
    return Result::ok;
  }
  const std::string& sub = args[0];
  if (sub == "all" || sub == "clear") {
    if (args.size() > 1) throw MpdError(Ack::arg, "Too many arguments");
    ctx.client.tag_mask = sub == "all" ? kAllTags : TagMask{0};
  } else if (sub == "enable") {
    ctx.client.tag_mask |= parse_tag_mask(args);
  } else if (sub == "disable") {
    ctx.client.tag_mask &= ~parse_tag_mask(args);
  } else {
    throw MpdError(Ack::arg, "Unknown sub command");
  }
  return Result::ok;
}

Result handle_idle(Context& ctx, const Args& args) {
  unsigned flags = 0;
  for (const auto& name : args) {
    const unsigned f = parse_idle_name(name);
    if (f == 0) throw MpdError(Ack::arg, "Unrecognized idle event: " + name);
    flags |= f;
  }
  ctx.client.idle_subscriptions = flags == 0 ? idle::all : flags;
  return Result::idle;
}

// Nothing to list: no stream or file:// URLs are played (MPD lists file:// only to
// clients on its Unix socket).
Result handle_urlhandlers(Context&, const Args&) { return Result::ok; }

// One partition, as an MPD without `newpartition` has: myMPD and Cantata ask on connect.
Result handle_listpartitions(Context& ctx, const Args&) {
  ctx.pair("partition", "default");
  return Result::ok;
}

// No client-to-client channels; Cantata asks on connect and takes an empty list.
Result handle_channels(Context&, const Args&) { return Result::ok; }

Result handle_decoders(Context& ctx, const Args&) {
  ctx.pair("plugin", "sndfile");
  ctx.pair("suffix", "wav");
  ctx.pair("mime_type", "audio/wav");
  ctx.pair("mime_type", "audio/x-wav");
  return Result::ok;
}

// MPD answers `config` only on its Unix socket; this door is TCP.
Result handle_config(Context&, const Args&) {
  throw MpdError(Ack::permission, "Command only permitted to local clients");
}

Result handle_outputs(Context& ctx, const Args&) {
  const PlayerStatus s = PlayerStatus::load(ctx.daemon);
  ctx.pair("outputid", "0");
  ctx.pair("outputname", "tuneloop");
  ctx.pair("plugin", s.audio_available ? "portaudio" : "null");
  ctx.pair("outputenabled", s.audio_available ? "1" : "0");
  return Result::ok;
}

}  // namespace tuneloop::mpd
