// BS.1770-4 loudness and true peak (audio/loudness.hpp) on synthetic signals, after the
// cases of EBU Tech 3341 (a stereo sine at X dBFS in each channel reads X LUFS; its mono
// equivalent here is a sine 3.01 dB hotter).
#include "audio/loudness.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>
#include <vector>

namespace tuneloop::audio {
namespace {

// The standard's K-weighting at 48 kHz (BS.1770-4, Tables 1 and 2), as published.
constexpr Biquad kTableShelf{1.53512485958697, -2.69169618940638, 1.19839281085285,
                             -1.69065929318241, 0.73248077421585};
constexpr Biquad kTableHighPass{1.0, -2.0, 1.0, -1.99004745483398, 0.99007225036621};

double gain_at(const Biquad& f, double hz, double rate) {
  const std::complex<double> z1 = std::polar(1.0, -2.0 * std::numbers::pi * hz / rate);
  return std::abs((f.b0 + f.b1 * z1 + f.b2 * z1 * z1) / (1.0 + f.a1 * z1 + f.a2 * z1 * z1));
}

// Peak amplitude of a mono sine at `hz` that reads `lufs`, from the definition and the
// published 48 kHz filters: L = -0.691 + 10 log10(A²/2 · |K(f)|²).
double amplitude_for(double lufs, double hz = 1000.0) {
  const double k = gain_at(kTableShelf, hz, 48000.0) * gain_at(kTableHighPass, hz, 48000.0);
  return std::sqrt(2.0 * std::pow(10.0, (lufs + 0.691) / 10.0)) / k;
}

struct Section {
  double seconds;
  double lufs;  // level of the 1 kHz sine over this section
};

// A 1 kHz sine, phase-continuous, whose level steps from section to section.
Audio tone_sections(const std::vector<Section>& sections, int rate = 48000) {
  Audio a;
  a.sample_rate = rate;
  for (const auto& s : sections) {
    const double amp = amplitude_for(s.lufs);
    const auto count = static_cast<std::size_t>(std::llround(s.seconds * rate));
    for (std::size_t i = 0; i < count; ++i) {
      const double t = static_cast<double>(a.samples.size()) / rate;
      a.samples.push_back(static_cast<float>(amp * std::sin(2 * std::numbers::pi * 1000.0 * t)));
    }
  }
  return a;
}

Audio sine(double hz, double amplitude, double seconds, int rate, double phase = 0.0) {
  Audio a;
  a.sample_rate = rate;
  a.samples.resize(static_cast<std::size_t>(std::llround(seconds * rate)));
  for (std::size_t i = 0; i < a.samples.size(); ++i) {
    a.samples[i] = static_cast<float>(
        amplitude * std::sin(2 * std::numbers::pi * hz * static_cast<double>(i) / rate + phase));
  }
  return a;
}

// What the definition gives for `sections`, worked out block by block from the sections'
// levels alone (no filtering): 400-ms blocks every 100 ms, each block's power the
// time-weighted mean of the sections it spans, then the -70 LUFS and -10 LU gates.
double expected_lufs(const std::vector<Section>& sections) {
  std::vector<double> hop_power;  // per 100 ms
  for (const auto& s : sections) {
    const auto hops = static_cast<int>(std::llround(s.seconds * 10));
    for (int h = 0; h < hops; ++h) hop_power.push_back(std::pow(10.0, (s.lufs + 0.691) / 10.0));
  }
  std::vector<double> blocks;
  for (std::size_t j = 0; j + 4 <= hop_power.size(); ++j)
    blocks.push_back((hop_power[j] + hop_power[j + 1] + hop_power[j + 2] + hop_power[j + 3]) / 4);
  auto lufs = [](double z) { return -0.691 + 10 * std::log10(z); };
  auto mean_above = [&](double gate) {
    double sum = 0;
    int n = 0;
    for (double z : blocks)
      if (lufs(z) > gate) sum += z, ++n;
    return sum / n;
  };
  const double relative = lufs(mean_above(-70.0)) - 10.0;
  return lufs(mean_above(std::max(-70.0, relative)));
}

TEST(Loudness, KWeightingAt48kHzIsTheStandardsTable) {
  const auto f = k_weighting_filters(48000);
  const Biquad table[2] = {kTableShelf, kTableHighPass};
  for (int s = 0; s < 2; ++s) {
    EXPECT_NEAR(f[s].b0, table[s].b0, 1e-8) << "stage " << s;
    EXPECT_NEAR(f[s].b1, table[s].b1, 1e-8) << "stage " << s;
    EXPECT_NEAR(f[s].b2, table[s].b2, 1e-8) << "stage " << s;
    EXPECT_NEAR(f[s].a1, table[s].a1, 1e-8) << "stage " << s;
    EXPECT_NEAR(f[s].a2, table[s].a2, 1e-8) << "stage " << s;
  }
}

TEST(Loudness, KWeightingHasTheSameCurveAtEveryRate) {
  // Gains at frequencies well inside every rate's band match the 48 kHz table's.
  for (int rate : {16000, 22050, 32000, 44100, 96000}) {
    const auto f = k_weighting_filters(rate);
    for (double hz : {20.0, 40.0, 100.0, 500.0, 1000.0, 2000.0, 4000.0}) {
      const double got = 20 * std::log10(gain_at(f[0], hz, rate) * gain_at(f[1], hz, rate));
      const double want =
          20 * std::log10(gain_at(kTableShelf, hz, 48000.0) * gain_at(kTableHighPass, hz, 48000.0));
      EXPECT_NEAR(got, want, 0.05) << rate << " Hz rate, " << hz << " Hz";
    }
  }
}

TEST(Loudness, FullScaleSineReadsMinus3_01Lufs) {
  EXPECT_NEAR(integrated_loudness_lufs(sine(997.0, 1.0, 10.0, 48000)), -3.01, 0.01);
  EXPECT_NEAR(integrated_loudness_lufs(sine(1000.0, 1.0, 10.0, 48000)), -3.01, 0.01);
}

TEST(Loudness, SineAtMinus20DbfsPeakReadsMinus23Lufs) {
  const double amp = std::pow(10.0, -20.0 / 20.0);
  EXPECT_NEAR(integrated_loudness_lufs(sine(1000.0, amp, 20.0, 48000)), -23.0, 0.1);
}

TEST(Loudness, Tech3341SteadyTonesReadTheirLevel) {
  // Cases 1 and 2: 20 s of 1 kHz at -23 and -33 LUFS.
  EXPECT_NEAR(integrated_loudness_lufs(tone_sections({{20, -23}})), -23.0, 0.1);
  EXPECT_NEAR(integrated_loudness_lufs(tone_sections({{20, -33}})), -33.0, 0.1);
}

TEST(Loudness, RelativeGateKeepsTheLoudPart) {
  // 20 s at -36 then 20 s at -23: ungated this would be -25.8 LUFS; the relative gate
  // (-35.8) drops the quiet blocks, and the three blocks across the step stay in.
  const std::vector<Section> sections = {{20, -36}, {20, -23}};
  const double want = expected_lufs(sections);
  EXPECT_NEAR(want, -23.03, 0.01);
  EXPECT_NEAR(integrated_loudness_lufs(tone_sections(sections)), want, 0.02);
}

TEST(Loudness, Tech3341GatedSequencesReadMinus23Lufs) {
  // Case 3: -36, -23, -36 (relative gate); case 4: -72, -36, -23, -36, -72 (absolute gate
  // as well); case 5: -26, -20, -26 (every block kept).
  const std::vector<std::vector<Section>> cases = {
      {{10, -36}, {20, -23}, {10, -36}},
      {{10, -72}, {10, -36}, {20, -23}, {10, -36}, {10, -72}},
      {{20, -26}, {20.1, -20}, {20, -26}},
  };
  for (const auto& sections : cases) {
    const double got = integrated_loudness_lufs(tone_sections(sections));
    EXPECT_NEAR(got, -23.0, 0.1);
    EXPECT_NEAR(got, expected_lufs(sections), 0.02);
  }
}

TEST(Loudness, EveryRateReadsTheSame) {
  // A tone, and a chord from the high-pass's knee to the shelf's top.
  for (int rate : {16000, 22050, 44100, 48000}) {
    EXPECT_NEAR(integrated_loudness_lufs(tone_sections({{20, -23}}, rate)), -23.0, 0.1) << rate;
  }
  auto chord = [](int rate) {
    Audio a = sine(50.0, 0.2, 10.0, rate);
    for (double hz : {440.0, 1500.0, 5000.0}) {
      const Audio s = sine(hz, 0.1, 10.0, rate, hz / 1000.0);
      for (std::size_t i = 0; i < a.samples.size(); ++i) a.samples[i] += s.samples[i];
    }
    return a;
  };
  const double at48 = integrated_loudness_lufs(chord(48000));
  for (int rate : {16000, 22050, 44100})
    EXPECT_NEAR(integrated_loudness_lufs(chord(rate)), at48, 0.1) << rate;
}

TEST(Loudness, LouderByADecibelReadsADecibelMore) {
  const double a = integrated_loudness_lufs(sine(300.0, 0.1, 5.0, 44100));
  const double b = integrated_loudness_lufs(sine(300.0, 0.1 * std::pow(10.0, 0.05), 5.0, 44100));
  EXPECT_NEAR(b - a, 1.0, 1e-3);
}

TEST(Loudness, LowFrequenciesCountLessThanRms) {
  // Same RMS, but the RLB filter takes ~13 dB off 20 Hz and the shelf adds ~4 dB at 4 kHz.
  const double low = integrated_loudness_lufs(sine(20.0, 0.5, 10.0, 48000));
  const double high = integrated_loudness_lufs(sine(4000.0, 0.5, 10.0, 48000));
  EXPECT_GT(high - low, 15.0);
}

TEST(Loudness, SilenceAndTooShortReadTheFloor) {
  Audio empty;
  EXPECT_EQ(integrated_loudness_lufs(empty), kLevelFloorDb);
  EXPECT_EQ(true_peak_dbtp(empty), kLevelFloorDb);
  Audio silent;
  silent.sample_rate = 48000;
  silent.samples.assign(48000 * 5, 0.0f);
  EXPECT_EQ(integrated_loudness_lufs(silent), kLevelFloorDb);
  EXPECT_EQ(true_peak_dbtp(silent), kLevelFloorDb);
  EXPECT_EQ(sample_peak_dbfs(silent), kLevelFloorDb);
  // Shorter than one 400-ms block.
  EXPECT_EQ(integrated_loudness_lufs(sine(1000.0, 0.5, 0.39, 48000)), kLevelFloorDb);
  EXPECT_GT(integrated_loudness_lufs(sine(1000.0, 0.5, 0.4, 48000)), -10.0);
  // Every block under the absolute gate.
  EXPECT_EQ(integrated_loudness_lufs(tone_sections({{5, -75}})), kLevelFloorDb);
}

TEST(Loudness, SlowRatesAreUpsampledFirst) {
  // Weighted at 8 kHz itself, this tone would read 0.2 LU low.
  for (int rate : {6000, 8000, 11025})
    EXPECT_NEAR(integrated_loudness_lufs(tone_sections({{10, -23}}, rate)), -23.0, 0.1) << rate;
  EXPECT_THROW(k_weighting_filters(8000), AudioError);
  Audio no_rate = sine(1000.0, 0.5, 1.0, 48000);
  no_rate.sample_rate = 0;
  EXPECT_THROW(integrated_loudness_lufs(no_rate), AudioError);
  EXPECT_THROW(true_peak_dbtp(no_rate), AudioError);
}

TEST(TruePeak, QuarterRateSineAt45DegreesPeaksBetweenSamples) {
  // Every sample sits at ±0.707, the waveform's crest halfway between two.
  for (int rate : {16000, 44100, 48000}) {
    const Audio a = sine(rate / 4.0, 1.0, 1.0, rate, std::numbers::pi / 4);
    EXPECT_NEAR(sample_peak_dbfs(a), -3.01, 0.01) << rate;
    EXPECT_NEAR(true_peak_dbtp(a), 0.0, 0.3) << rate;
  }
}

TEST(TruePeak, FadedSinesUpTo20kHzReadTheirAmplitude) {
  // Faded in and out, so no ringing from a hard start: what is left is the interpolator's
  // accuracy over the band Annex 2 asks it to pass.
  for (double hz : {1000.0, 12000.0, 15000.0, 18000.0, 20000.0}) {
    Audio a = sine(hz, 0.5, 1.0, 48000, 0.3);
    const std::size_t fade = 4800;
    for (std::size_t i = 0; i < fade; ++i) {
      const auto g = static_cast<float>(0.5 - 0.5 * std::cos(std::numbers::pi * i / fade));
      a.samples[i] *= g;
      a.samples[a.samples.size() - 1 - i] *= g;
    }
    EXPECT_NEAR(true_peak_dbtp(a), 20 * std::log10(0.5), 0.1) << hz;
  }
}

TEST(TruePeak, InterSamplePeaksOfOtherPhasesAndLevels) {
  // 60°: the crest lies a third of a sample from the nearest sample (-1.25 dB), 1/12 from
  // the nearest 4x point (-0.07 dB).
  const Audio a = sine(12000.0, 0.5, 1.0, 48000, std::numbers::pi / 3);
  EXPECT_NEAR(sample_peak_dbfs(a), 20 * std::log10(0.5 * std::sin(std::numbers::pi / 3)), 0.01);
  EXPECT_NEAR(true_peak_dbtp(a), 20 * std::log10(0.5), 0.3);
  EXPECT_GT(true_peak_dbtp(a), sample_peak_dbfs(a) + 1.0);
}

TEST(TruePeak, SlowSineReadsItsSamplePeak) {
  const Audio a = sine(997.0, 0.5, 1.0, 48000);
  EXPECT_NEAR(true_peak_dbtp(a), sample_peak_dbfs(a), 0.01);
  EXPECT_NEAR(true_peak_dbtp(a), -6.02, 0.02);
}

TEST(TruePeak, HighRatesOversampleLess) {
  // 96 kHz is oversampled 2x: the 45° quarter-rate crest is then exactly on a new point.
  const Audio a = sine(24000.0, 1.0, 1.0, 96000, std::numbers::pi / 4);
  EXPECT_NEAR(true_peak_dbtp(a), 0.0, 0.3);
  // From 192 kHz the samples are the peak.
  const Audio b = sine(48000.0, 1.0, 0.1, 192000, std::numbers::pi / 4);
  EXPECT_NEAR(true_peak_dbtp(b), -3.01, 0.01);
}

TEST(Loudness, MeasureLoudnessGathersTheFourLevels) {
  const Audio a = sine(1000.0, 0.1, 5.0, 48000);
  const Loudness l = measure_loudness(a);
  EXPECT_NEAR(l.integrated_lufs, -23.0, 0.1);
  EXPECT_NEAR(l.true_peak_dbtp, -20.0, 0.05);
  EXPECT_NEAR(l.sample_peak_dbfs, -20.0, 0.01);
  EXPECT_DOUBLE_EQ(l.rms_dbfs, rms_dbfs(a.samples));
  EXPECT_NEAR(l.rms_dbfs, -23.01, 0.01);
}

}  // namespace
}  // namespace tuneloop::audio
