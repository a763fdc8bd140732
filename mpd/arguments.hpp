#pragma once
// Parsing one command argument the way MPD's src/protocol/ArgParser.cxx does, with its
// messages ("Integer expected: x", "Number too large: x", …), so a bad argument gets the
// same ACK from tuneloopd as from MPD. Each parser throws MpdError(Ack::arg).

#include "mpd/protocol.hpp"

#include <cstdint>
#include <limits>
#include <string_view>

namespace tuneloop::mpd {

/// A half-open range of queue positions, "START:END", "START:" or "N" (one position).
struct Range {
  unsigned start = 0;
  unsigned end = std::numeric_limits<unsigned>::max();  // exclusive; max() = open-ended
  bool all() const noexcept { return start == 0 && end == std::numeric_limits<unsigned>::max(); }
};

unsigned parse_unsigned(std::string_view s,
                        unsigned max_value = std::numeric_limits<unsigned>::max());
int parse_int(std::string_view s, int min_value, int max_value);
/// "0" or "1"; "Boolean (0/1) expected: x" otherwise.
bool parse_bool(std::string_view s);
/// A decimal number (no hex, no inf/nan).
double parse_float(std::string_view s);
/// Seconds, not negative: "Negative value not allowed: x".
double parse_song_time(std::string_view s);
/// "N", "A:B", "A:"; "-1" means everything (an old MPD spelling).
Range parse_range(std::string_view s);
/// 0..2^32-1, as MPD's ParseCommandArgU32 (playlist versions).
std::uint32_t parse_u32(std::string_view s);

}  // namespace tuneloop::mpd
