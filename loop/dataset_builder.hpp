#pragma once
// The dataset builder: turns a listener's songs and scored tracks into the training set
// of the next iteration, and writes down exactly what went in and why (the Manifest,
// the audit trail a researcher reads). Rules: docs/feedback.md.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "loop/preference.hpp"
#include "loop/statistics.hpp"  // percentile

namespace tuneloop::loop {

/// One of the listener's own songs.
struct SongInput {
  std::int64_t song_id = 0;
  std::string path;
  std::string name;
};

/// What a build starts from: one listener's songs and generated tracks with feedback.
struct DatasetInputs {
  std::int64_t listener_id = 0;
  std::vector<SongInput> songs;
  std::vector<TrackInput> tracks;
};

struct ManifestItem {
  enum class Kind { song, track };
  Kind kind = Kind::track;
  std::int64_t id = 0;
  std::string path;
  std::optional<double> score;  // empty for songs
  double weight = 1;            // relative sampling weight in training
  std::string reason;           // e.g. "score 0.82 ≥ p75 0.71 (rated 4.5 → 0.88, heard 100 %)"
  bool operator==(const ManifestItem&) const = default;
};

std::string_view to_string(ManifestItem::Kind kind) noexcept;

/// Why tracks stayed out.
struct ExclusionCounts {
  int no_feedback = 0;      // never rated, never heard
  int below_threshold = 0;  // scored, but below the percentile
  bool operator==(const ExclusionCounts&) const = default;
};

/// The record of one dataset build. Serialised to JSON with to_json().
struct Manifest {
  static constexpr int kFormatVersion = 1;
  int format_version = kFormatVersion;
  int iteration = 0;
  std::int64_t listener_id = 0;
  UnixMs created_at = 0;
  config::FeedbackConfig feedback;  // the settings used
  config::DatasetConfig dataset;
  double song_weight = 1;
  bool ratings_used = false;  // false while there are fewer than dataset.min_ratings
  int ratings_count = 0;
  std::optional<RatingRange> rating_range;
  int tracks_considered = 0;
  int tracks_with_feedback = 0;
  std::optional<double> threshold;  // score at the percentile; empty without feedback
  std::optional<double> negative_threshold;
  std::vector<ManifestItem> items;      // training items: songs, then tracks by score
  std::vector<ManifestItem> negatives;  // disliked tracks, only if dataset.use_negatives
  ExclusionCounts excluded;

  int song_count() const noexcept;
  int track_count() const noexcept;
};

bool operator==(const RatingRange& a, const RatingRange& b) noexcept;
bool operator==(const Manifest& a, const Manifest& b) noexcept;

/// A manifest that cannot be read back; the message says which key is wrong.
class ManifestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// JSON text of the manifest (pretty-printed with two-space indents).
std::string to_json(const Manifest& manifest);
/// Throws ManifestError on malformed JSON, a missing or mistyped key, or a newer format.
Manifest manifest_from_json(std::string_view json);

class DatasetBuilder {
 public:
  /// `song_weight` is the sampling weight of each of the listener's own songs.
  DatasetBuilder(config::FeedbackConfig feedback, config::DatasetConfig dataset,
                 double song_weight = 1.0);

  /// Builds the manifest of `iteration` from the inputs; `now` stamps it and anchors
  /// recency decay. Throws std::invalid_argument if dataset.percentile is outside 0..100.
  Manifest build(const DatasetInputs& inputs, int iteration, UnixMs now) const;

 private:
  config::FeedbackConfig feedback_;
  config::DatasetConfig dataset_;
  double song_weight_;
};

}  // namespace tuneloop::loop
