#pragma once
// How a tuneloop track looks to an MPD client: a file `iteration-N/track-ID.wav` (or
// `other/track-ID.wav` for a track made outside an iteration, or one of a deleted
// iteration) with the tags a client shows, and the text MPD prints for a song or a
// directory. Pure: the values come from the daemon's JSON (see library.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tuneloop::mpd {

/// MPD 0.23's tag types, in its order (src/tag/Names.c); clients may name any of them in
/// `tagtypes`, `find` or `list`, though tuneloop fills only a few.
enum class Tag : int {
  artist, artist_sort, album, album_sort, album_artist, album_artist_sort, title, track,
  name, genre, date, original_date, composer, composer_sort, performer, conductor, work,
  movement, movement_number, ensemble, location, grouping, comment, disc, label,
  musicbrainz_artistid, musicbrainz_albumid, musicbrainz_albumartistid,
  musicbrainz_trackid, musicbrainz_releasetrackid, musicbrainz_workid,
  count  // not a tag: the number of them
};
inline constexpr int kTagCount = static_cast<int>(Tag::count);

/// A set of tags (bit i = Tag i), as a client's `tagtypes` mask.
using TagMask = std::uint64_t;
inline constexpr TagMask kAllTags = (TagMask{1} << kTagCount) - 1;
inline constexpr TagMask bit(Tag t) noexcept { return TagMask{1} << static_cast<int>(t); }
/// The tags tuneloop fills; `tagtypes` lists these (those the client has enabled).
inline constexpr TagMask kFilledTags = bit(Tag::artist) | bit(Tag::album) |
                                       bit(Tag::album_artist) | bit(Tag::title) |
                                       bit(Tag::track) | bit(Tag::genre) | bit(Tag::date);

/// MPD's spelling ("AlbumArtist", "MUSICBRAINZ_TRACKID").
std::string_view tag_name(Tag t) noexcept;
/// Case-insensitive, as MPD's tag_name_parse_i; nullopt for an unknown name.
std::optional<Tag> parse_tag(std::string_view name) noexcept;

/// One song as MPD prints it.
struct Song {
  std::int64_t id = 0;  // the track id; also the queue entry's Id
  std::string uri;      // iteration-N/track-ID.wav
  std::string directory;
  std::vector<std::pair<Tag, std::string>> tags;  // in print order; a tag may repeat
  double duration = 0;                            // seconds
  std::int64_t last_modified = 0;                 // Unix seconds

  /// Every value of a tag (empty if absent).
  std::vector<std::string_view> values(Tag t) const;
};

/// What the daemon knows of a track, as tracks.list / status report it.
struct TrackFacts {
  std::int64_t id = 0;
  std::optional<int> iteration_number;  // nullopt: no iteration, or a deleted one
  std::string tags;                     // "fast,drums"
  double duration = 0;
  std::int64_t created_at_ms = 0;
  int track_number = 0;  // 1-based place in its folder, by id
};

/// The folder of a track: "iteration-N", or "other".
std::string directory_of(const std::optional<int>& iteration_number);
/// "iteration-N/track-ID.wav".
std::string uri_of(const TrackFacts& t);
/// The track id a song URI names, if it has our shape (the folder is checked by the caller).
std::optional<std::int64_t> track_id_from_uri(std::string_view uri) noexcept;
/// The song with its tags: Title "Track ID (tags)", Artist/AlbumArtist "tuneloop",
/// Album "Iteration N" (or "Other tracks"), Track, Date (the year made), one Genre per tag.
Song make_song(const TrackFacts& t);

/// "2024-05-01T10:00:00Z" (MPD's Last-Modified form).
std::string iso8601(std::int64_t unix_seconds);

/// file, Last-Modified, the tags in `mask`, Time and duration (MPD's song_print_info).
std::string song_info(const Song& s, TagMask mask);
/// song_info plus "Pos" and "Id" (a queue entry).
std::string queue_entry(const Song& s, TagMask mask, unsigned position);

}  // namespace tuneloop::mpd
