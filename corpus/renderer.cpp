#include "corpus/renderer.hpp"

#include <fluidsynth.h>

#include <algorithm>
#include <cmath>
#include <mutex>

namespace tuneloop::corpus {
namespace {

// Once per process, before any Renderer goes on: FluidSynth logs warnings about soundfont
// quirks on every load (keep only errors), and new_fluid_synth() fills FluidSynth's global
// tables on first use behind a compare-and-exchange, not a lock, so a second thread
// creating a synth at that moment goes on before they are filled (a rare segfault when the
// corpus renders on several threads; seen once in CI). Making one synth here, under the
// once flag, which the other callers wait on, fills them first.
void init_fluidsynth_once() {
  static std::once_flag flag;
  std::call_once(flag, [] {
    fluid_set_log_function(FLUID_WARN, nullptr, nullptr);
    fluid_set_log_function(FLUID_INFO, nullptr, nullptr);
    fluid_set_log_function(FLUID_DBG, nullptr, nullptr);
    if (fluid_settings_t* settings = new_fluid_settings()) {
      if (fluid_synth_t* synth = new_fluid_synth(settings)) delete_fluid_synth(synth);
      delete_fluid_settings(settings);
    }
  });
}

}  // namespace

// A synth with the settings it was made from: FluidSynth's API asks for one synth per
// settings object, so every synth gets its own.
struct Synth {
  fluid_settings_t* settings = nullptr;
  fluid_synth_t* synth = nullptr;
  Synth() = default;
  Synth(const Synth&) = delete;
  Synth& operator=(const Synth&) = delete;
  ~Synth() {
    if (synth) delete_fluid_synth(synth);
    if (settings) delete_fluid_settings(settings);
  }
};

struct Renderer::Impl {
  // Keeps the soundfont's samples in FluidSynth's process-wide cache, so the fresh synth
  // each clip gets loads it in a fraction of the time.
  std::vector<std::unique_ptr<Synth>> resident;
  std::vector<std::string> soundfonts;
  int rate = 32000;

  std::unique_ptr<Synth> make_synth(std::size_t font, bool chorus) const {
    const std::string& soundfont = soundfonts.at(font);
    auto s = std::make_unique<Synth>();
    s->settings = new_fluid_settings();
    if (!s->settings) throw RenderError("FluidSynth: cannot create settings");
    fluid_settings_setnum(s->settings, "synth.sample-rate", rate);
    fluid_settings_setnum(s->settings, "synth.gain", 0.3);
    fluid_settings_setint(s->settings, "synth.cpu-cores", 1);
    fluid_settings_setint(s->settings, "synth.threadsafe-api", 0);
    fluid_settings_setint(s->settings, "synth.polyphony", 256);
    fluid_settings_setint(s->settings, "synth.chorus.active", chorus ? 1 : 0);
    fluid_settings_setint(s->settings, "synth.reverb.active", 1);
    // No player or audio driver is used, but keep any timing tied to samples rendered.
    fluid_settings_setstr(s->settings, "player.timing-source", "sample");
    s->synth = new_fluid_synth(s->settings);
    if (!s->synth) throw RenderError("FluidSynth: cannot create a synthesizer");
    if (fluid_synth_sfload(s->synth, soundfont.c_str(), 1) == FLUID_FAILED) {
      throw RenderError("FluidSynth cannot load soundfont '" + soundfont +
                        "' (bash scripts/setup.sh installs Debian's soundfonts; or pass another .sf2)");
    }
    return s;
  }
};

Renderer::Renderer(const std::string& soundfont, int synth_rate)
    : Renderer(std::vector<std::string>{soundfont}, synth_rate) {}

Renderer::Renderer(const std::vector<std::string>& soundfonts, int synth_rate)
    : impl_(std::make_unique<Impl>()) {
  if (soundfonts.empty()) throw RenderError("no soundfont given");
  init_fluidsynth_once();
  impl_->rate = synth_rate;
  impl_->soundfonts = soundfonts;
  for (std::size_t i = 0; i < soundfonts.size(); ++i) impl_->resident.push_back(impl_->make_synth(i, false));
}

Renderer::~Renderer() = default;

audio::Audio Renderer::render(const Piece& piece, double seconds, int out_rate) {
  // A fresh synth per clip: system_reset leaves state behind (voice filters and the like)
  // that changes the next clip slightly, and clips must not depend on their neighbours.
  const auto font = static_cast<std::size_t>(piece.spec.soundfont);
  if (font >= impl_->soundfonts.size())
    throw RenderError("the piece asks for soundfont " + std::to_string(font) + " of " +
                      std::to_string(impl_->soundfonts.size()));
  const auto owner = impl_->make_synth(font, piece.spec.chorus > 0);
  fluid_synth_t* synth = owner->synth;
  const int rate = impl_->rate;
  for (int channel : {0, 1, 2, 9}) {
    fluid_synth_program_change(synth, channel, piece.channel_program[channel]);
    fluid_synth_cc(synth, channel, 7, 100);
    fluid_synth_cc(synth, channel, 91, piece.spec.reverb);
    fluid_synth_cc(synth, channel, 93, piece.spec.chorus);
  }
  // Render a little extra so the window can skip the silence before the first attack
  // (or, cut from inside the piece, everything before its start).
  const bool cut = piece.spec.start_seconds >= 0;
  const double lead = cut ? piece.spec.start_seconds + 0.1 : 0.5;
  // FluidSynth renders 64-frame blocks and keeps the unread rest of a block for the next
  // call; writing whole blocks only keeps a clip independent of the previous one.
  constexpr std::size_t kBlock = 64;
  auto whole_blocks = [](double frames) {
    return static_cast<std::size_t>(std::ceil(frames / kBlock)) * kBlock;
  };
  const std::size_t total = whole_blocks((seconds + lead) * rate);
  std::vector<float> left(total, 0.0f), right(total, 0.0f);
  std::size_t pos = 0;
  auto render_to = [&](std::size_t end) {
    end = std::min(end, total);
    while (pos < end) {
      const int len = static_cast<int>(std::min<std::size_t>(end - pos, 64 * kBlock));
      fluid_synth_write_float(synth, len, left.data(), static_cast<int>(pos), 1, right.data(),
                              static_cast<int>(pos), 1);
      pos += static_cast<std::size_t>(len);
    }
  };
  for (const NoteEvent& e : piece.events) {
    const std::size_t at = whole_blocks(e.time * rate);
    if (at >= total) break;
    render_to(at);
    if (e.velocity > 0)
      fluid_synth_noteon(synth, e.channel, e.key, e.velocity);
    else
      fluid_synth_noteoff(synth, e.channel, e.key);
  }
  render_to(total);

  audio::Audio mixed;
  mixed.sample_rate = rate;
  mixed.samples.resize(total);
  float peak = 0.0f;
  for (std::size_t i = 0; i < total; ++i) {
    mixed.samples[i] = 0.5f * (left[i] + right[i]);
    peak = std::max(peak, std::fabs(mixed.samples[i]));
  }
  const auto frames = static_cast<std::size_t>(std::llround(seconds * rate));
  std::size_t start = 0;
  if (cut) {
    start = static_cast<std::size_t>(std::llround(piece.spec.start_seconds * rate));
  } else if (peak > 0) {
    while (start < total && std::fabs(mixed.samples[start]) < peak * 0.01f) ++start;
    start = start > static_cast<std::size_t>(0.005 * rate)
                ? start - static_cast<std::size_t>(0.005 * rate)
                : 0;
  }
  start = std::min(start, total - std::min(total, frames));
  std::vector<float> window(mixed.samples.begin() + static_cast<std::ptrdiff_t>(start),
                            mixed.samples.begin() + static_cast<std::ptrdiff_t>(start + frames));
  mixed.samples = std::move(window);
  audio::Audio out = out_rate == rate ? mixed : audio::resample(mixed, out_rate);
  out.samples.resize(static_cast<std::size_t>(std::llround(seconds * out_rate)), 0.0f);
  return out;
}

audio::Audio render_clip(Renderer& renderer, const PieceSpec& spec, double seconds, int out_rate) {
  const Piece piece = compose(spec, std::max(0.0, spec.start_seconds) + seconds + 1.0);
  audio::Audio clip = renderer.render(piece, seconds, out_rate);
  audio::normalise_loudness(clip, (spec.dynamics == "loud" ? -17.0 : -23.0) + spec.level_db);
  return clip;
}

}  // namespace tuneloop::corpus
