#include "mpd/protocol.hpp"

#include <array>

namespace tuneloop::mpd {

namespace {

bool is_space_or_control(char c) noexcept { return static_cast<unsigned char>(c) <= 0x20; }
bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_word_char(char c) noexcept { return is_alpha(c) || is_digit(c) || c == '_'; }
bool is_unquoted_char(char c) noexcept { return !is_space_or_control(c) && c != '"' && c != '\''; }

// Reads through one line, as MPD's Tokenizer does, keeping the position between calls.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool at_end() const noexcept { return i_ >= s_.size(); }

  void skip_spaces() noexcept {
    while (!at_end() && is_space_or_control(s_[i_])) ++i_;
  }

  std::string word() {
    if (!is_alpha(s_[i_])) throw TokenizeError(Ack::unknown, "Letter expected", true);
    const std::size_t begin = i_;
    while (!at_end() && !is_space_or_control(s_[i_])) {
      if (!is_word_char(s_[i_])) throw TokenizeError(Ack::unknown, "Invalid word character", true);
      ++i_;
    }
    std::string w(s_.substr(begin, i_ - begin));
    skip_spaces();
    return w;
  }

  std::string param() { return s_[i_] == '"' ? quoted() : unquoted(); }

 private:
  std::string unquoted() {
    const std::size_t begin = i_;
    while (!at_end() && !is_space_or_control(s_[i_])) {
      if (!is_unquoted_char(s_[i_]))
        throw TokenizeError(Ack::arg, "Invalid unquoted character", false);
      ++i_;
    }
    std::string w(s_.substr(begin, i_ - begin));
    skip_spaces();
    return w;
  }

  std::string quoted() {
    ++i_;  // the opening quote
    std::string out;
    for (;;) {
      if (at_end()) throw TokenizeError(Ack::arg, "Missing closing '\"'", false);
      char c = s_[i_];
      if (c == '"') break;
      if (c == '\\') {
        ++i_;
        if (at_end()) throw TokenizeError(Ack::arg, "Missing closing '\"'", false);
        c = s_[i_];
      }
      out.push_back(c);
      ++i_;
    }
    ++i_;  // the closing quote
    if (!at_end() && !is_space_or_control(s_[i_]))
      throw TokenizeError(Ack::arg, "Space expected after closing '\"'", false);
    skip_spaces();
    return out;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  return out;
}

constexpr std::array<std::string_view, 14> kIdleNames = {
    "database", "stored_playlist", "playlist", "player",  "mixer",   "output", "options",
    "sticker",  "update",          "subscription", "message", "neighbor", "mount", "partition"};

bool equals_ignore_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

CommandLine tokenize(std::string_view line) {
  line = strip_line(line);
  if (line.empty()) throw TokenizeError(Ack::unknown, "No command given", true);
  Cursor cursor(line);
  CommandLine out;
  out.name = cursor.word();
  for (;;) {
    // Checked before reading, as MPD does: the limit counts even when nothing follows.
    if (out.args.size() == kMaxArguments)
      throw TokenizeError(Ack::arg, "Too many arguments", false);
    if (cursor.at_end()) break;
    out.args.push_back(cursor.param());
  }
  return out;
}

bool starts_like_a_command(std::string_view line) noexcept {
  return !line.empty() && line.front() >= 'a' && line.front() <= 'z';
}

std::string_view strip_line(std::string_view line) noexcept {
  if (auto nul = line.find('\0'); nul != std::string_view::npos) line = line.substr(0, nul);
  while (!line.empty() && is_space_or_control(line.back())) line.remove_suffix(1);
  return line;
}

std::string ack_line(Ack code, unsigned list_index, std::string_view command,
                     std::string_view message) {
  return "ACK [" + std::to_string(static_cast<int>(code)) + "@" + std::to_string(list_index) +
         "] {" + one_line(command) + "} " + one_line(message) + "\n";
}

std::string pair_line(std::string_view key, std::string_view value) {
  std::string out(key);
  out += ": ";
  out += one_line(value);
  out += '\n';
  return out;
}

std::string quote_argument(std::string_view arg) {
  bool bare = !arg.empty();
  for (char c : arg) bare = bare && is_unquoted_char(c) && c != '\\';
  if (bare) return std::string(arg);
  std::string out = "\"";
  for (char c : arg) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

unsigned parse_idle_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kIdleNames.size(); ++i)
    if (equals_ignore_case(name, kIdleNames[i])) return 1u << i;
  return 0;
}

std::string idle_changes(unsigned flags) {
  std::string out;
  for (std::size_t i = 0; i < kIdleNames.size(); ++i)
    if (flags & (1u << i)) out += pair_line("changed", kIdleNames[i]);
  return out;
}

}  // namespace tuneloop::mpd
