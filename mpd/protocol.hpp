#pragma once
// MPD's wire format, without sockets: splitting a request line into a command and its
// arguments (MPD's quoting and escaping), the `OK` / `ACK` / `key: value` lines of a
// reply, the error codes, and the idle subsystem names. Facts from MPD 0.23.5's
// doc/protocol.rst and src/util/Tokenizer.cxx; the behaviour is MPD's, the code ours.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tuneloop::mpd {

/// The greeting: 0.23.x, which current mpc, ncmpcpp, Cantata and myMPD accept without
/// switching to 0.24's commands (which we would not serve).
inline constexpr std::string_view kGreeting = "OK MPD 0.23.5\n";
inline constexpr std::string_view kProtocolVersion = "0.23.5";

/// MPD reads into an 8 KiB buffer; a line that fills it without a newline closes the
/// connection ("Input buffer is full"). The newline counts.
inline constexpr std::size_t kMaxLineBytes = 8192;
/// MPD's COMMAND_ARGV_MAX (2 + 2 × 31 tag types) bounds the arguments; a line with this
/// many or more gets "Too many arguments".
inline constexpr std::size_t kMaxArguments = 64;

/// The ACK codes of MPD's src/protocol/Ack.hxx; the numbers never change.
enum class Ack : int {
  not_list = 1,
  arg = 2,
  password = 3,
  permission = 4,
  unknown = 5,
  no_exist = 50,
  playlist_max = 51,
  system = 52,
  playlist_load = 53,
  update_already = 54,
  player_sync = 55,
  exist = 56,
};

/// What a command handler throws to answer `ACK`; the one boundary (ClientState) formats it.
class MpdError : public std::runtime_error {
 public:
  MpdError(Ack code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Ack code() const noexcept { return code_; }

 private:
  Ack code_;
};

/// A line that cannot be split. `fatal`: the command name itself is malformed, so (as
/// MPD does) the ACK is sent and the connection closed: the peer does not speak MPD.
class TokenizeError : public MpdError {
 public:
  TokenizeError(Ack code, const std::string& message, bool fatal)
      : MpdError(code, message), fatal_(fatal) {}
  bool fatal() const noexcept { return fatal_; }

 private:
  bool fatal_;
};

struct CommandLine {
  std::string name;
  std::vector<std::string> args;
};

/// Splits one request line (without its newline). The name is a word (a letter, then
/// letters, digits or '_'); arguments are unquoted (no space, quote or control byte) or
/// double-quoted with backslash escapes. Throws TokenizeError with MPD's messages:
/// "No command given", "Letter expected", "Invalid word character" (code 5, fatal);
/// "Invalid unquoted character", "Missing closing '\"'", "Space expected after closing
/// '\"'", "Too many arguments" (code 2).
CommandLine tokenize(std::string_view line);

/// MPD closes a connection whose line does not start with a lower-case ASCII letter
/// (an empty line, a leading space, an HTTP request line), without an answer.
bool starts_like_a_command(std::string_view line) noexcept;

/// The line without trailing whitespace (bytes <= 0x20, as MPD strips), cut at a NUL.
std::string_view strip_line(std::string_view line) noexcept;

/// "ACK [code@index] {command} message\n"; a newline in the message becomes a space.
std::string ack_line(Ack code, unsigned list_index, std::string_view command,
                     std::string_view message);
/// "key: value\n"; a newline in the value becomes a space (it would end the pair).
std::string pair_line(std::string_view key, std::string_view value);
/// One argument as a client writes it: bare when safe, else quoted with `"` and `\`
/// escaped (libmpdclient's rule). For tests and transcripts.
std::string quote_argument(std::string_view arg);

// ---------------------------------------------------------------- idle

/// The idle subsystems as bit flags, in MPD's order (the order of "changed:" lines).
namespace idle {
inline constexpr unsigned database = 1u << 0;
inline constexpr unsigned stored_playlist = 1u << 1;
inline constexpr unsigned playlist = 1u << 2;
inline constexpr unsigned player = 1u << 3;
inline constexpr unsigned mixer = 1u << 4;
inline constexpr unsigned output = 1u << 5;
inline constexpr unsigned options = 1u << 6;
inline constexpr unsigned sticker = 1u << 7;
inline constexpr unsigned update = 1u << 8;
inline constexpr unsigned subscription = 1u << 9;
inline constexpr unsigned message = 1u << 10;
inline constexpr unsigned neighbor = 1u << 11;
inline constexpr unsigned mount = 1u << 12;
inline constexpr unsigned partition = 1u << 13;
inline constexpr unsigned all = (1u << 14) - 1;
}  // namespace idle

/// The flag of a subsystem name (case-insensitive), 0 if unknown.
unsigned parse_idle_name(std::string_view name) noexcept;
/// "changed: NAME\n" for each flag set, in MPD's order (no trailing OK).
std::string idle_changes(unsigned flags);

}  // namespace tuneloop::mpd
