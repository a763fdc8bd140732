#include "mpd/client_state.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

namespace tuneloop::mpd {

ClientState::ClientState(Shared& shared, std::string peer)
    : shared_(shared), session_(std::move(peer)), daemon_(shared.dispatcher, session_) {
  // With a password configured nothing but the harmless commands runs before `password`.
  info_.permission = shared.password.empty() ? permission::all : permission::none;
}

ClientState::Outcome ClientState::on_line(std::string_view raw) noexcept {
  try {
    const std::string_view line = strip_line(raw);
    if (!starts_like_a_command(line)) {
      // Every MPD command starts with a lower-case letter: this peer speaks something
      // else (an HTTP request, a stray byte); MPD hangs up without a word.
      spdlog::warn("mpd: malformed line from peer={}; closing the connection", peer());
      return Outcome("", After::close_now);
    }
    if (line == "noidle") {
      // Outside idle it is ignored: the idle answer has already gone out.
      if (!idle_waiting_) return Outcome();
      idle_waiting_ = false;
      return Outcome("OK\n");
    }
    if (idle_waiting_) {
      spdlog::warn("mpd: a command other than noidle during idle from peer={}; closing", peer());
      return Outcome("", After::close_now);
    }
    if (in_list_) {
      if (line == "command_list_end") return run_list();
      list_bytes_ += line.size() + 1;
      if (list_bytes_ > kMaxCommandListBytes) {
        spdlog::warn("mpd: command list over {} bytes from peer={}; closing", kMaxCommandListBytes,
                     peer());
        return Outcome("", After::close_now);
      }
      list_.emplace_back(line);
      return Outcome();
    }
    if (line == "command_list_begin" || line == "command_list_ok_begin") {
      in_list_ = true;
      list_ok_ = line == "command_list_ok_begin";
      list_.clear();
      list_bytes_ = 0;
      return Outcome();
    }
    Outcome o;
    const StepResult r = run(line, 0, o.reply);
    switch (r.step) {
      case Step::ok: o.reply += "OK\n"; break;
      case Step::error:
        if (r.fatal) o.after = After::close_after_flush;
        break;
      case Step::idle: o.reply += begin_idle(); break;
      case Step::close: o.after = After::close_after_flush; break;
    }
    return o;
  } catch (...) {
    // Only allocation can fail here; the connection cannot be answered sensibly.
    return Outcome("", After::close_now);
  }
}

ClientState::Outcome ClientState::run_list() {
  in_list_ = false;
  std::vector<std::string> list;
  list.swap(list_);
  list_bytes_ = 0;
  Outcome o;
  for (unsigned i = 0; i < list.size(); ++i) {
    const StepResult r = run(list[i], i, o.reply);
    switch (r.step) {
      case Step::ok:
        if (list_ok_) o.reply += "list_OK\n";
        continue;
      case Step::error:
        if (r.fatal) o.after = After::close_after_flush;
        return o;  // the ACK ends the list: no OK
      case Step::idle: o.reply += begin_idle(); return o;
      case Step::close: o.after = After::close_after_flush; return o;
    }
  }
  o.reply += "OK\n";
  return o;
}

ClientState::StepResult ClientState::run(std::string_view line, unsigned index, std::string& out) {
  CommandLine cmd;
  try {
    cmd = tokenize(line);
  } catch (const TokenizeError& e) {
    // The command is not known yet, so MPD names none: "{}".
    out += ack_line(e.code(), index, "", e.what());
    return StepResult{Step::error, e.fatal()};
  }
  const CommandRow* row = find_command(cmd.name);
  if (!row) {
    out += ack_line(Ack::unknown, index, "", "unknown command \"" + cmd.name + "\"");
    return StepResult{Step::error, false};
  }
  auto refuse = [&](Ack code, const std::string& message) {
    out += ack_line(code, index, row->name, message);
    return StepResult{Step::error, false};
  };
  std::string quoted_name(1, '"');
  quoted_name.append(row->name).append(1, '"');
  if ((row->permission & info_.permission) != row->permission)
    return refuse(Ack::permission, "you don't have permission for " + quoted_name);
  const int n = static_cast<int>(cmd.args.size());
  if (row->min_args >= 0) {
    if (row->min_args == row->max_args && n != row->max_args)
      return refuse(Ack::arg, "wrong number of arguments for " + quoted_name);
    if (n < row->min_args) return refuse(Ack::arg, "too few arguments for " + quoted_name);
    if (row->max_args >= 0 && n > row->max_args)
      return refuse(Ack::arg, "too many arguments for " + quoted_name);
  }

  Context ctx{shared_, info_, daemon_, out};
  StepResult result{Step::error, false};
  try {
    switch (row->handler(ctx, cmd.args)) {
      case Result::ok: result.step = Step::ok; break;
      case Result::idle: result.step = Step::idle; break;
      case Result::close: result.step = Step::close; break;
    }
  } catch (const MpdError& e) {
    spdlog::debug("mpd: peer={} command={} ACK {}: {}", peer(), row->name,
                  static_cast<int>(e.code()), e.what());
    out += ack_line(e.code(), index, row->name, e.what());
  } catch (const std::exception& e) {
    spdlog::error("mpd: peer={} command={} failed: {}", peer(), row->name, e.what());
    out += ack_line(Ack::unknown, index, row->name, e.what());
  }
  // Even a failed command may have changed something (a play started, then a seek failed).
  if (row->changes_player && shared_.check_soon) shared_.check_soon();
  return result;
}

std::string ClientState::begin_idle() {
  idle_waiting_ = true;
  return raise(0);
}

std::string ClientState::raise(unsigned flags) {
  idle_flags_ |= flags;
  const unsigned due = idle_flags_ & info_.idle_subscriptions;
  if (!idle_waiting_ || due == 0) return {};
  // MPD clears every pending flag with the answer, the ones not asked for too.
  idle_flags_ = 0;
  idle_waiting_ = false;
  return idle_changes(due) + "OK\n";
}

}  // namespace tuneloop::mpd
