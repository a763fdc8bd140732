#include "mpd/song.hpp"

#include "mpd/protocol.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace tuneloop::mpd {

namespace {

constexpr std::array<std::string_view, kTagCount> kTagNames = {
    "Artist", "ArtistSort", "Album", "AlbumSort", "AlbumArtist", "AlbumArtistSort", "Title",
    "Track", "Name", "Genre", "Date", "OriginalDate", "Composer", "ComposerSort", "Performer",
    "Conductor", "Work", "Movement", "MovementNumber", "Ensemble", "Location", "Grouping",
    "Comment", "Disc", "Label", "MUSICBRAINZ_ARTISTID", "MUSICBRAINZ_ALBUMID",
    "MUSICBRAINZ_ALBUMARTISTID", "MUSICBRAINZ_TRACKID", "MUSICBRAINZ_RELEASETRACKID",
    "MUSICBRAINZ_WORKID"};

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

std::vector<std::string> split_tags(std::string_view tags) {
  std::vector<std::string> out;
  while (!tags.empty()) {
    const auto comma = tags.find(',');
    std::string one = trim(tags.substr(0, comma));
    if (!one.empty()) out.push_back(std::move(one));
    if (comma == std::string_view::npos) break;
    tags.remove_prefix(comma + 1);
  }
  return out;
}

std::string fixed3(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

}  // namespace

std::string_view tag_name(Tag t) noexcept {
  const int i = static_cast<int>(t);
  return i >= 0 && i < kTagCount ? kTagNames[static_cast<std::size_t>(i)] : std::string_view();
}

std::optional<Tag> parse_tag(std::string_view name) noexcept {
  for (int i = 0; i < kTagCount; ++i) {
    const std::string_view n = kTagNames[static_cast<std::size_t>(i)];
    if (n.size() != name.size()) continue;
    bool same = true;
    for (std::size_t k = 0; k < n.size() && same; ++k) same = lower(n[k]) == lower(name[k]);
    if (same) return static_cast<Tag>(i);
  }
  return std::nullopt;
}

std::vector<std::string_view> Song::values(Tag t) const {
  std::vector<std::string_view> out;
  for (const auto& [tag, value] : tags)
    if (tag == t) out.push_back(value);
  return out;
}

std::string directory_of(const std::optional<int>& iteration_number) {
  return iteration_number ? "iteration-" + std::to_string(*iteration_number) : "other";
}

std::string uri_of(const TrackFacts& t) {
  return directory_of(t.iteration_number) + "/track-" + std::to_string(t.id) + ".wav";
}

std::optional<std::int64_t> track_id_from_uri(std::string_view uri) noexcept {
  const auto slash = uri.rfind('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view file = uri.substr(slash + 1);
  constexpr std::string_view prefix = "track-", suffix = ".wav";
  if (file.size() <= prefix.size() + suffix.size() || file.substr(0, prefix.size()) != prefix ||
      file.substr(file.size() - suffix.size()) != suffix)
    return std::nullopt;
  file = file.substr(prefix.size(), file.size() - prefix.size() - suffix.size());
  if (file.size() > 15 || file.front() == '0') return std::nullopt;  // one spelling per id
  std::int64_t id = 0;
  for (char c : file) {
    if (c < '0' || c > '9') return std::nullopt;
    id = id * 10 + (c - '0');
  }
  return id;
}

std::string iso8601(std::int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Song make_song(const TrackFacts& t) {
  Song s;
  s.id = t.id;
  s.directory = directory_of(t.iteration_number);
  s.uri = uri_of(t);
  s.duration = t.duration;
  s.last_modified = t.created_at_ms / 1000;
  const std::vector<std::string> genres = split_tags(t.tags);
  std::string title = "Track " + std::to_string(t.id);
  if (!genres.empty()) {
    title += " (";
    for (std::size_t i = 0; i < genres.size(); ++i) title += (i ? ", " : "") + genres[i];
    title += ")";
  }
  s.tags.emplace_back(Tag::artist, "tuneloop");
  s.tags.emplace_back(Tag::album_artist, "tuneloop");
  s.tags.emplace_back(Tag::title, std::move(title));
  s.tags.emplace_back(Tag::album, t.iteration_number
                                      ? "Iteration " + std::to_string(*t.iteration_number)
                                      : std::string("Other tracks"));
  if (t.track_number > 0) s.tags.emplace_back(Tag::track, std::to_string(t.track_number));
  if (s.last_modified > 0) s.tags.emplace_back(Tag::date, iso8601(s.last_modified).substr(0, 4));
  for (const auto& g : genres) s.tags.emplace_back(Tag::genre, g);
  return s;
}

std::string song_info(const Song& s, TagMask mask) {
  std::string out = pair_line("file", s.uri);
  if (s.last_modified > 0) out += pair_line("Last-Modified", iso8601(s.last_modified));
  for (const auto& [tag, value] : s.tags)
    if (mask & bit(tag)) out += pair_line(tag_name(tag), value);
  if (s.duration > 0) {
    out += pair_line("Time", std::to_string(std::llround(s.duration)));
    out += pair_line("duration", fixed3(s.duration));
  }
  return out;
}

std::string queue_entry(const Song& s, TagMask mask, unsigned position) {
  return song_info(s, mask) + pair_line("Pos", std::to_string(position)) +
         pair_line("Id", std::to_string(s.id));
}

}  // namespace tuneloop::mpd
