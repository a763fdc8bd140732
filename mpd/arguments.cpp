#include "mpd/arguments.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

namespace tuneloop::mpd {

namespace {

MpdError arg_error(const char* what, std::string_view value) {
  return MpdError(Ack::arg, std::string(what) + ": " + std::string(value));
}

// strtol/strtoul on a terminated copy, so the accepted spellings are MPD's own.
struct Parsed {
  long long value = 0;
  bool whole = false;  // the entire text was a number
  std::size_t used = 0;
};

Parsed parse_signed(const std::string& s) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  Parsed p;
  p.value = errno == ERANGE ? (v < 0 ? std::numeric_limits<long long>::min()
                                     : std::numeric_limits<long long>::max())
                            : v;
  p.used = static_cast<std::size_t>(end - s.c_str());
  p.whole = p.used > 0 && p.used == s.size();
  return p;
}

}  // namespace

unsigned parse_unsigned(std::string_view s, unsigned max_value) {
  const std::string text(s);
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0') throw arg_error("Integer expected", s);
  // strtoull wraps "-1" to a huge value, which MPD also reports as too large.
  if (errno == ERANGE || v > max_value) throw arg_error("Number too large", s);
  return static_cast<unsigned>(v);
}

int parse_int(std::string_view s, int min_value, int max_value) {
  const Parsed p = parse_signed(std::string(s));
  if (!p.whole) throw arg_error("Integer expected", s);
  if (p.value < min_value || p.value > max_value) throw arg_error("Number too large", s);
  return static_cast<int>(p.value);
}

bool parse_bool(std::string_view s) {
  const Parsed p = parse_signed(std::string(s));
  if (!p.whole || (p.value != 0 && p.value != 1)) throw arg_error("Boolean (0/1) expected", s);
  return p.value == 1;
}

double parse_float(std::string_view s) {
  std::string_view digits = s;
  // from_chars takes no '+'; MPD's strtof does, and seekcur relies on it ("+10").
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  double v = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v,
                                         std::chars_format::general);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() ||
      !std::isfinite(v))
    throw arg_error("Float expected", s);
  return v;
}

double parse_song_time(std::string_view s) {
  const double v = parse_float(s);
  if (v < 0) throw arg_error("Negative value not allowed", s);
  return v;
}

Range parse_range(std::string_view s) {
  const std::string text(s);
  const Parsed first = parse_signed(text);
  const bool colon = first.used < text.size() && text[first.used] == ':';
  if (first.used == 0 || (first.used != text.size() && !colon))
    throw arg_error("Integer or range expected", s);
  if (first.value == -1 && !colon) return Range{};
  if (first.value < 0) throw arg_error("Number is negative", s);
  if (first.value > std::numeric_limits<int>::max()) throw arg_error("Number too large", s);
  Range r;
  r.start = static_cast<unsigned>(first.value);
  if (!colon) {
    r.end = r.start + 1;
    return r;
  }
  const std::string rest = text.substr(first.used + 1);
  if (rest.empty()) return r;  // "A:" is open-ended
  const Parsed second = parse_signed(rest);
  if (!second.whole) throw arg_error("Integer or range expected", s);
  if (second.value < 0) throw arg_error("Number is negative", s);
  if (second.value > std::numeric_limits<int>::max()) throw arg_error("Number too large", s);
  r.end = static_cast<unsigned>(second.value);
  if (r.end < r.start) throw arg_error("Malformed range", s);
  return r;
}

std::uint32_t parse_u32(std::string_view s) {
  const std::string text(s);
  char* end = nullptr;
  const unsigned long v = std::strtoul(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0') throw arg_error("Integer expected", s);
  return static_cast<std::uint32_t>(v);
}

}  // namespace tuneloop::mpd
