#include "loop/dataset_builder.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

namespace tuneloop::loop {

using nlohmann::json;

namespace {

std::string format_number(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

// "p75", "p62.5"
std::string percentile_label(double p) {
  std::string label(1, 'p');  // built up in place: GCC 12 warns (-Wrestrict) on "p" + string&&
  label += std::fabs(p - std::round(p)) < 1e-9 ? format_number(p, 0) : format_number(p, 1);
  return label;
}

json optional_number(const std::optional<double>& value) {
  return value ? json(*value) : json(nullptr);
}

// Reading: every accessor names the key that was wrong.
const json& field(const json& object, const char* key, const std::string& where) {
  if (!object.is_object()) throw ManifestError("manifest: " + where + " is not an object");
  auto it = object.find(key);
  if (it == object.end())
    throw ManifestError("manifest: missing key \"" + where + "." + key + "\"");
  return *it;
}

template <typename T>
T get(const json& object, const char* key, const std::string& where) {
  const json& value = field(object, key, where);
  try {
    return value.get<T>();
  } catch (const json::exception& e) {
    throw ManifestError("manifest: key \"" + where + "." + key +
                        "\" has the wrong type: " + e.what());
  }
}

std::optional<double> get_optional_number(const json& object, const char* key,
                                          const std::string& where) {
  const json& value = field(object, key, where);
  if (value.is_null()) return std::nullopt;
  if (!value.is_number())
    throw ManifestError("manifest: key \"" + where + "." + key + "\" is not a number or null");
  return value.get<double>();
}

json item_to_json(const ManifestItem& item) {
  return json{
      {"kind", to_string(item.kind)},         {"id", item.id},         {"path", item.path},
      {"score", optional_number(item.score)}, {"weight", item.weight}, {"reason", item.reason}};
}

ManifestItem item_from_json(const json& value, const std::string& where) {
  ManifestItem item;
  const auto kind = get<std::string>(value, "kind", where);
  if (kind == "song") {
    item.kind = ManifestItem::Kind::song;
  } else if (kind == "track") {
    item.kind = ManifestItem::Kind::track;
  } else {
    throw ManifestError("manifest: key \"" + where + ".kind\" is \"" + kind +
                        "\", expected song or track");
  }
  item.id = get<std::int64_t>(value, "id", where);
  item.path = get<std::string>(value, "path", where);
  item.score = get_optional_number(value, "score", where);
  item.weight = get<double>(value, "weight", where);
  item.reason = get<std::string>(value, "reason", where);
  return item;
}

std::vector<ManifestItem> items_from_json(const json& object, const char* key) {
  const json& list = field(object, key, "manifest");
  if (!list.is_array())
    throw ManifestError(std::string("manifest: key \"") + key + "\" is not a list");
  std::vector<ManifestItem> items;
  for (std::size_t i = 0; i < list.size(); ++i)
    items.push_back(item_from_json(list[i], std::string(key) + "[" + std::to_string(i) + "]"));
  return items;
}

}  // namespace

std::string_view to_string(ManifestItem::Kind kind) noexcept {
  return kind == ManifestItem::Kind::song ? "song" : "track";
}

int Manifest::song_count() const noexcept {
  return static_cast<int>(std::count_if(items.begin(), items.end(), [](const ManifestItem& i) {
    return i.kind == ManifestItem::Kind::song;
  }));
}

int Manifest::track_count() const noexcept {
  return static_cast<int>(items.size()) - song_count();
}

bool operator==(const RatingRange& a, const RatingRange& b) noexcept {
  return a.min == b.min && a.max == b.max;
}

bool operator==(const Manifest& a, const Manifest& b) noexcept {
  return a.format_version == b.format_version && a.iteration == b.iteration &&
         a.listener_id == b.listener_id && a.created_at == b.created_at &&
         a.feedback == b.feedback && a.dataset == b.dataset && a.song_weight == b.song_weight &&
         a.ratings_used == b.ratings_used && a.ratings_count == b.ratings_count &&
         a.rating_range == b.rating_range && a.tracks_considered == b.tracks_considered &&
         a.tracks_with_feedback == b.tracks_with_feedback && a.threshold == b.threshold &&
         a.negative_threshold == b.negative_threshold && a.items == b.items &&
         a.negatives == b.negatives && a.excluded == b.excluded;
}

std::string to_json(const Manifest& m) {
  const auto& f = m.feedback;
  const auto& d = m.dataset;
  json items = json::array();
  for (const auto& item : m.items) items.push_back(item_to_json(item));
  json negatives = json::array();
  for (const auto& item : m.negatives) negatives.push_back(item_to_json(item));
  json range = m.rating_range ? json{{"min", m.rating_range->min}, {"max", m.rating_range->max}}
                              : json(nullptr);
  json doc = {
      {"format_version", m.format_version},
      {"iteration", m.iteration},
      {"listener_id", m.listener_id},
      {"created_at", m.created_at},
      {"config",
       {{"feedback",
         {{"skip_fraction", f.skip_fraction},
          {"rating_weight", f.rating_weight},
          {"listen_weight", f.listen_weight},
          {"unrated_weight", f.unrated_weight},
          {"replay_bonus", f.replay_bonus},
          {"recency_half_life_days", f.recency_half_life_days}}},
        {"dataset",
         {{"percentile", d.percentile},
          {"include_songs", d.include_songs},
          {"use_negatives", d.use_negatives},
          {"negative_percentile", d.negative_percentile},
          {"min_ratings", d.min_ratings}}},
        {"song_weight", m.song_weight}}},
      {"ratings_used", m.ratings_used},
      {"ratings_count", m.ratings_count},
      {"rating_range", range},
      {"tracks_considered", m.tracks_considered},
      {"tracks_with_feedback", m.tracks_with_feedback},
      {"threshold", optional_number(m.threshold)},
      {"negative_threshold", optional_number(m.negative_threshold)},
      {"counts",
       {{"songs", m.song_count()},
        {"tracks", m.track_count()},
        {"negatives", static_cast<int>(m.negatives.size())}}},
      {"excluded",
       {{"no_feedback", m.excluded.no_feedback}, {"below_threshold", m.excluded.below_threshold}}},
      {"items", items},
      {"negatives", negatives},
  };
  return doc.dump(2);
}

Manifest manifest_from_json(std::string_view text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw ManifestError(std::string("manifest: not valid JSON: ") + e.what());
  }
  Manifest m;
  m.format_version = get<int>(doc, "format_version", "manifest");
  if (m.format_version > Manifest::kFormatVersion)
    throw ManifestError("manifest: format_version " + std::to_string(m.format_version) +
                        " is newer than this build reads (" +
                        std::to_string(Manifest::kFormatVersion) + ")");
  m.iteration = get<int>(doc, "iteration", "manifest");
  m.listener_id = get<std::int64_t>(doc, "listener_id", "manifest");
  m.created_at = get<std::int64_t>(doc, "created_at", "manifest");

  const json& config = field(doc, "config", "manifest");
  const json& f = field(config, "feedback", "config");
  m.feedback.skip_fraction = get<double>(f, "skip_fraction", "config.feedback");
  m.feedback.rating_weight = get<double>(f, "rating_weight", "config.feedback");
  m.feedback.listen_weight = get<double>(f, "listen_weight", "config.feedback");
  m.feedback.unrated_weight = get<double>(f, "unrated_weight", "config.feedback");
  m.feedback.replay_bonus = get<double>(f, "replay_bonus", "config.feedback");
  m.feedback.recency_half_life_days = get<double>(f, "recency_half_life_days", "config.feedback");
  const json& d = field(config, "dataset", "config");
  m.dataset.percentile = get<double>(d, "percentile", "config.dataset");
  m.dataset.include_songs = get<bool>(d, "include_songs", "config.dataset");
  m.dataset.use_negatives = get<bool>(d, "use_negatives", "config.dataset");
  m.dataset.negative_percentile = get<double>(d, "negative_percentile", "config.dataset");
  m.dataset.min_ratings = get<int>(d, "min_ratings", "config.dataset");
  m.song_weight = get<double>(config, "song_weight", "config");

  m.ratings_used = get<bool>(doc, "ratings_used", "manifest");
  m.ratings_count = get<int>(doc, "ratings_count", "manifest");
  const json& range = field(doc, "rating_range", "manifest");
  if (!range.is_null())
    m.rating_range = RatingRange{get<double>(range, "min", "rating_range"),
                                 get<double>(range, "max", "rating_range")};
  m.tracks_considered = get<int>(doc, "tracks_considered", "manifest");
  m.tracks_with_feedback = get<int>(doc, "tracks_with_feedback", "manifest");
  m.threshold = get_optional_number(doc, "threshold", "manifest");
  m.negative_threshold = get_optional_number(doc, "negative_threshold", "manifest");
  const json& excluded = field(doc, "excluded", "manifest");
  m.excluded.no_feedback = get<int>(excluded, "no_feedback", "excluded");
  m.excluded.below_threshold = get<int>(excluded, "below_threshold", "excluded");
  m.items = items_from_json(doc, "items");
  m.negatives = items_from_json(doc, "negatives");
  return m;
}

DatasetBuilder::DatasetBuilder(config::FeedbackConfig feedback, config::DatasetConfig dataset,
                               double song_weight)
    : feedback_(std::move(feedback)), dataset_(std::move(dataset)), song_weight_(song_weight) {}

Manifest DatasetBuilder::build(const DatasetInputs& inputs, int iteration, UnixMs now) const {
  if (!(dataset_.percentile >= 0.0 && dataset_.percentile <= 100.0))
    throw std::invalid_argument("dataset.percentile = " + format_number(dataset_.percentile, 3) +
                                " is outside 0..100");
  if (dataset_.use_negatives &&
      !(dataset_.negative_percentile >= 0.0 && dataset_.negative_percentile <= 100.0))
    throw std::invalid_argument(
        "dataset.negative_percentile = " + format_number(dataset_.negative_percentile, 3) +
        " is outside 0..100");

  Manifest m;
  m.iteration = iteration;
  m.listener_id = inputs.listener_id;
  m.created_at = now;
  m.feedback = feedback_;
  m.dataset = dataset_;
  m.song_weight = song_weight_;
  m.tracks_considered = static_cast<int>(inputs.tracks.size());
  for (const auto& t : inputs.tracks) m.ratings_count += t.stars ? 1 : 0;
  m.rating_range = rating_range(inputs.tracks);

  if (dataset_.include_songs) {
    for (const auto& song : inputs.songs) {
      m.items.push_back(
          {ManifestItem::Kind::song, song.song_id, song.path, std::nullopt, song_weight_,
           "listener's own song" + (song.name.empty() ? "" : " \"" + song.name + "\"")});
    }
  }

  const auto scores = score_tracks(inputs.tracks, feedback_, dataset_.min_ratings, now);
  m.ratings_used =
      std::any_of(scores.begin(), scores.end(), [](const PreferenceScore& s) { return s.rated; });

  std::vector<double> scored;
  for (const auto& s : scores)
    if (s.has_feedback) scored.push_back(s.score);
  m.tracks_with_feedback = static_cast<int>(scored.size());
  m.excluded.no_feedback = m.tracks_considered - m.tracks_with_feedback;
  if (scored.empty()) return m;

  const double threshold = percentile(scored, dataset_.percentile);
  m.threshold = threshold;
  const std::string label = percentile_label(dataset_.percentile);

  std::vector<std::size_t> kept;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (!scores[i].has_feedback) continue;
    // A score of 0 (not liked, not heard) would be a training weight of 0: never kept,
    // even when every score is 0 and the percentile threshold is 0 too.
    if (scores[i].score >= threshold && scores[i].score > 0.0) {
      kept.push_back(i);
    } else {
      ++m.excluded.below_threshold;
    }
  }
  // Best first; equal scores in track-id order so that a rebuild lists them the same way.
  std::sort(kept.begin(), kept.end(), [&](std::size_t a, std::size_t b) {
    if (scores[a].score != scores[b].score) return scores[a].score > scores[b].score;
    return inputs.tracks[a].track_id < inputs.tracks[b].track_id;
  });
  for (std::size_t i : kept) {
    const auto& s = scores[i];
    m.items.push_back({ManifestItem::Kind::track, inputs.tracks[i].track_id, inputs.tracks[i].path,
                       s.score, s.score,
                       "score " + format_number(s.score, 2) + " ≥ " + label + " " +
                           format_number(threshold, 2) + " (" + describe(s) + ")"});
  }

  if (dataset_.use_negatives) {
    const double low = percentile(scored, dataset_.negative_percentile);
    m.negative_threshold = low;
    const std::string low_label = percentile_label(dataset_.negative_percentile);
    std::vector<std::size_t> negatives;
    for (std::size_t i = 0; i < scores.size(); ++i) {
      const auto& s = scores[i];
      // Only an explicit low rating makes a negative: a short listen alone may mean
      // "not now" rather than "not this".
      if (s.has_feedback && s.rated && s.normalised_rating < 0.5 && s.score <= low &&
          s.score < threshold)
        negatives.push_back(i);
    }
    std::sort(negatives.begin(), negatives.end(), [&](std::size_t a, std::size_t b) {
      if (scores[a].score != scores[b].score) return scores[a].score < scores[b].score;
      return inputs.tracks[a].track_id < inputs.tracks[b].track_id;
    });
    for (std::size_t i : negatives) {
      const auto& s = scores[i];
      m.negatives.push_back({ManifestItem::Kind::track, inputs.tracks[i].track_id,
                             inputs.tracks[i].path, s.score, 1.0 - s.normalised_rating,
                             "score " + format_number(s.score, 2) + " ≤ " + low_label + " " +
                                 format_number(low, 2) + " (" + describe(s) + ")"});
    }
  }
  return m;
}

}  // namespace tuneloop::loop
