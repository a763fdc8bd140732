#pragma once
#include <string>
#include <vector>

#include "audio/audio.hpp"

namespace tuneloop::audio {

// What a clip sounds like, in a handful of numbers the loop and simulated listeners use.
struct AudioFeatures {
  double onset_rate = 0.0;  // onsets per second (peaks of log-band spectral flux, 40 Hz–8 kHz)
  double tempo_bpm =
      0.0;  // beat period from the onset envelope's autocorrelation, folded towards 120
  double brightness = 0.0;    // spectral centroid in Hz, energy-weighted over frames
  double minorness = 0.0;     // best minor-key minus best major-key chroma correlation (Krumhansl)
  double loudness_db = -120;  // RMS level in dBFS
  double note_density =
      0.0;  // onsets per second in the 60 Hz–4 kHz band (pitched notes, few cymbals)
  double flatness =
      0.0;  // mean magnitude-spectrum flatness of sounding frames, 0 (tonal) .. ~0.9 (white noise)
};

// Measures all features. Audio of any rate works; frames are about 64 ms long.
// Silent or empty audio gives zeros (and loudness -120 dB).
AudioFeatures measure(const Audio& audio);

// The features in a fixed order, matching feature_names().
std::vector<double> as_vector(const AudioFeatures& features);
const std::vector<std::string>& feature_names();

// Per-feature mean and standard deviation, to compare features on one scale.
struct FeatureScale {
  std::vector<double> mean;
  std::vector<double> stddev;
};

// Fits the scale to a set of clips; a feature that doesn't vary gets stddev 1.
// A scale fitted to nothing has mean 0 and stddev 1 everywhere.
FeatureScale fit_scale(const std::vector<AudioFeatures>& set);

// (value - mean) / stddev for each feature.
std::vector<double> standardise(const AudioFeatures& features, const FeatureScale& scale);

// Euclidean distance between two clips in standardised feature space.
double feature_distance(const AudioFeatures& a, const AudioFeatures& b, const FeatureScale& scale);

// Mean features of a set (zeros for an empty set).
AudioFeatures mean_features(const std::vector<AudioFeatures>& set);

// Of several sets of clips, the one whose mean lies nearest the weighted mean of `targets`,
// in feature space standardised over every clip given, leaving out the features named in
// `ignore`. Returns its index (the first of equals). Throws std::invalid_argument if there
// are no sets, a set or `targets` is empty, or `weights` does not match `targets`.
std::size_t nearest_set(const std::vector<std::vector<AudioFeatures>>& sets,
                        const std::vector<AudioFeatures>& targets,
                        const std::vector<double>& weights,
                        const std::vector<std::string>& ignore = {});

}  // namespace tuneloop::audio
