#pragma once
// How much brighter a clip's edges sound than its body: the share of energy above a cut-off
// frequency and the spectral centroid, in the first and last seconds against the rest. A
// burst of hiss at the start of a track shows as a high-band share many times the body's.
// No LibTorch.
#include "audio/audio.hpp"

namespace tuneloop::audio {

struct BandShare {
  double high_share = 0;  // energy above the cut-off over all energy, 0..1
  double centroid_hz = 0;
  double energy = 0;  // mean power of the span (0 = silent)
};

struct EdgeBrightness {
  BandShare opening;  // the first `edge_seconds`
  BandShare body;     // between the edges
  BandShare ending;   // the last `edge_seconds`
  // opening.high_share / body.high_share (1 when both are 0; large when only the edge has any)
  double opening_share_ratio() const noexcept;
  double ending_share_ratio() const noexcept;
  // |edge centroid / body centroid - 1|
  double opening_centroid_change() const noexcept;
  double ending_centroid_change() const noexcept;
};

/// Measures the edges of a clip at least 2 × edge_seconds + 0.5 s long, with 1024-sample
/// Hann frames at its own rate (a cut-off above the clip's Nyquist frequency gives shares of
/// 0). Throws AudioError for a clip too short.
EdgeBrightness edge_brightness(const Audio& audio, double edge_seconds = 1.5,
                               double cutoff_hz = 4000.0);

/// The strict bounds: an edge's high-band share at most this many times the body's, and its
/// centroid within this fraction of the body's. Music varies enough over 1.5 s that a fair
/// share of clips miss them at the ending too, where nothing brightens the edge
/// (docs/model.md, "Track edges"); compare openings with endings.
inline constexpr double kMaxEdgeShareRatio = 1.5;
inline constexpr double kMaxEdgeCentroidChange = 0.25;

/// A burst of brightness at an edge: its high-band share above kMaxEdgeShareRatio × the
/// body's and more than `min_excess` (0.5 % of the energy, about -23 dB) above it, so a
/// shift between shares too small to hear does not count.
bool bright_burst(const BandShare& edge, const BandShare& body, double min_excess = 0.005) noexcept;

}  // namespace tuneloop::audio
