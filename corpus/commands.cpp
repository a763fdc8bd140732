#include "corpus/commands.hpp"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "audio/features.hpp"
#include "audio/loudness.hpp"
#include "corpus/corpus.hpp"
#include "corpus/tags.hpp"
#include "progress/progress.hpp"

namespace tuneloop::corpus {
namespace {

// A bar on a terminal, a line every 2 s in a log (progress/progress.hpp, as the trainers).
void run_corpus(const CorpusOptions& options) {
  progress::ProgressDisplay progress("corpus", options.count, progress::progress_style_for(stderr, false),
                                  stderr, "clips");
  generate_corpus(options, [&](int done, int) { progress.update(done, 0); });
  progress.note("wrote " + std::to_string(options.count) + " clips to " + options.out_dir + " in " +
                progress::format_duration(progress.elapsed_seconds()));
}

// The features, with the BS.1770-4 levels beside loudness_db (the RMS level): integrated
// loudness and true peak, measured at the file's own rate (true peak needs its top octave).
// They are printed, not features: listeners' distances stay over feature_names().
void run_features(const std::vector<std::string>& files, bool json, int rate) {
  const auto& names = audio::feature_names();
  if (!json) {
    std::printf("%-40s", "file");
    for (const auto& n : names) {
      std::printf(" %12s", n.c_str());
      if (n == "loudness_db") std::printf(" %15s %15s", "integrated_lufs", "true_peak_dbtp");
    }
    std::printf("\n");
  }
  int failures = 0;
  for (const auto& file : files) {
    try {
      const audio::Audio native = audio::read_audio(file);
      const double lufs = audio::integrated_loudness_lufs(native);
      const double true_peak = audio::true_peak_dbtp(native);
      const auto values =
          audio::as_vector(audio::measure(rate > 0 ? audio::resample(native, rate) : native));
      if (json) {
        nlohmann::json obj{{"file", file}};
        for (std::size_t i = 0; i < names.size(); ++i) obj[names[i]] = values[i];
        obj["integrated_lufs"] = lufs;
        obj["true_peak_dbtp"] = true_peak;
        std::printf("%s\n", obj.dump().c_str());
      } else {
        std::printf("%-40s", file.c_str());
        for (std::size_t i = 0; i < names.size(); ++i) {
          std::printf(" %12.3f", values[i]);
          if (names[i] == "loudness_db") std::printf(" %15.2f %15.2f", lufs, true_peak);
        }
        std::printf("\n");
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "features: %s\n", e.what());
      ++failures;
    }
  }
  if (failures > 0) throw CLI::RuntimeError(1);
}

}  // namespace

void add_corpus_commands(CLI::App& app) {
  auto options = std::make_shared<CorpusOptions>();
  options->count = 800;
  auto* corpus = app.add_subcommand(
      "corpus", "Render a tagged training corpus of procedurally composed clips");
  corpus->add_option("--count", options->count, "number of clips")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  corpus->add_option("--seed", options->seed, "corpus seed; same seed, same files")
      ->capture_default_str();
  corpus->add_option("--out", options->out_dir, "output folder (clips/NNNNN.wav + index.jsonl)")
      ->required();
  corpus->add_option("--seconds", options->seconds, "clip length in seconds")
      ->capture_default_str();
  std::string vocabulary;
  for (const auto& w : tag_vocabulary()) vocabulary += (vocabulary.empty() ? "" : " ") + w;
  corpus->add_option("--style", options->style,
                     "restrict the style, e.g. \"slow minor piano\"; tags: " + vocabulary);
  corpus->add_option("--jobs", options->jobs, "render threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  corpus->add_option("--rate", options->sample_rate, "sample rate of the clips")
      ->capture_default_str();
  corpus->add_option("--soundfont", options->soundfont, "General MIDI soundfont (classic variety)")
      ->capture_default_str();
  corpus->add_option("--variety", options->variety,
                     "classic: one soundfont, clips from each piece's first note (the shipped "
                     "weights' corpus); rich: three soundfonts, more programs and drum kits, chorus, "
                     "level offsets, crashes at section starts, clips cut at random points")
      ->capture_default_str()
      ->check(CLI::IsMember({"classic", "rich"}));
  corpus->callback([options] {
    try {
      run_corpus(*options);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "\ncorpus: %s\n", e.what());
      throw CLI::RuntimeError(1);
    }
  });

  auto files = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  auto rate = std::make_shared<int>(16000);
  auto* features = app.add_subcommand(
      "features",
      "Print audio features (onset rate, tempo, brightness, …) and BS.1770 loudness (LUFS, "
      "true peak) of files");
  features->add_option("files", *files, "audio files")->required();
  features->add_flag("--json", *json, "one JSON object per file instead of a table");
  features
      ->add_option("--rate", *rate,
                   "resample to this rate before measuring the features (LUFS and true "
                   "peak are measured at the file's own rate)")
      ->capture_default_str();
  features->callback([files, json, rate] { run_features(*files, *json, *rate); });
}

}  // namespace tuneloop::corpus
