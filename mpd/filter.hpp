#pragma once
// MPD's song filters for find, search, list and count: the old "TYPE VALUE …" pairs and
// the expression form "(Artist == 'x')", "((A) AND (B))", "(!(…))", "contains",
// "!contains", "base", "modified-since", "file", "any". Regular expressions (=~, !~)
// are refused as an MPD built without PCRE refuses them: a client's pattern must not be
// able to stall the daemon's one io thread. Messages are MPD's (src/song/Filter.cxx).

#include "mpd/song.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tuneloop::mpd {

class SongFilter {
 public:
  struct Node;

  SongFilter();
  ~SongFilter();
  SongFilter(SongFilter&&) noexcept;
  SongFilter& operator=(SongFilter&&) noexcept;

  /// Parses every argument as filter terms; `fold_case` is `search`'s case-insensitive
  /// substring matching (for the old form; expressions fold case only).
  /// Throws MpdError(Ack::arg) with MPD's message.
  static SongFilter parse(const std::vector<std::string>& args, bool fold_case);
  /// A single tag equality (list's old "list Album ARTIST" form).
  static SongFilter equals(Tag tag, std::string value);

  bool match(const Song& song) const;
  bool empty() const noexcept;

 private:
  std::vector<std::unique_ptr<Node>> terms_;  // all must match
};

}  // namespace tuneloop::mpd
