#include "corpus/corpus.hpp"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

namespace tuneloop::corpus {

nlohmann::json clip_record(const std::string& file, const PieceSpec& spec, double seconds,
                           int sample_rate, const std::vector<std::string>& fonts) {
  nlohmann::json record = {
      {"file", file},
      {"seed", spec.seed},
      {"seconds", seconds},
      {"sample_rate", sample_rate},
      {"tempo", spec.tempo_bpm},
      {"key", spec.key_name()},
      {"mode", spec.mode},
      {"family", spec.family},
      {"program", spec.program},
      {"bass_program", spec.bass_program},
      {"drums", spec.drums},
      {"drum_kit", spec.drum_kit},
      {"density", spec.density},
      {"register", spec.register_},
      {"dynamics", spec.dynamics},
      {"texture", spec.texture},
      {"progression", spec.progression},
      {"tags", spec.tags()},
  };
  if (!fonts.empty()) {
    record["soundfont"] = std::filesystem::path(fonts.at(static_cast<std::size_t>(spec.soundfont))).filename().string();
    record["chorus"] = spec.chorus;
    record["reverb"] = spec.reverb;
    record["level_db"] = std::round(spec.level_db * 100) / 100;
    record["crash_every_bars"] = spec.crash_every_bars;
    record["start_seconds"] = std::round(spec.start_seconds * 1000) / 1000;
  }
  return record;
}

void generate_corpus(const CorpusOptions& options, const CorpusProgress& progress) {
  if (options.count < 0) throw std::invalid_argument("corpus: --count must not be negative");
  if (!(options.seconds > 0.1 && options.seconds <= 600))
    throw std::invalid_argument("corpus: --seconds must be in (0.1, 600]");
  if (options.variety != "classic" && options.variety != "rich")
    throw std::invalid_argument("corpus: --variety must be classic or rich, not '" + options.variety + "'");
  const bool rich = options.variety == "rich";
  const std::vector<std::string> fonts = rich ? rich_soundfonts() : std::vector<std::string>{options.soundfont};
  const Style style = parse_style(options.style);
  namespace fs = std::filesystem;
  const fs::path dir(options.out_dir);
  std::error_code ec;
  fs::create_directories(dir / "clips", ec);
  if (ec)
    throw std::runtime_error("corpus: cannot create '" + (dir / "clips").string() +
                             "': " + ec.message());

  const int count = options.count;
  std::vector<nlohmann::json> records(static_cast<std::size_t>(count));
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  int done = 0;
  std::exception_ptr error;

  auto worker = [&] {
    try {
      Renderer renderer(fonts);
      for (int i = next++; i < count && !failed; i = next++) {
        PieceSpec spec = choose_piece(clip_seed(options.seed, static_cast<std::uint64_t>(i)), style);
        if (rich) vary_piece(spec, static_cast<int>(fonts.size()));
        const audio::Audio clip = render_clip(renderer, spec, options.seconds, options.sample_rate);
        char name[32];
        std::snprintf(name, sizeof name, "clips/%05d.wav", i);
        audio::write_audio((dir / name).string(), clip);
        records[static_cast<std::size_t>(i)] =
            clip_record(name, spec, options.seconds, options.sample_rate,
                        rich ? fonts : std::vector<std::string>{});
        std::lock_guard lock(mutex);
        ++done;
        if (progress) progress(done, count);
      }
    } catch (...) {
      std::lock_guard lock(mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  const int jobs = std::max(1, std::min(options.jobs, std::max(1, count)));
  std::vector<std::thread> threads;
  for (int j = 0; j < jobs; ++j) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);

  const fs::path index = dir / "index.jsonl";
  std::ofstream out(index, std::ios::trunc);
  if (!out) throw std::runtime_error("corpus: cannot write '" + index.string() + "'");
  for (const auto& record : records) out << record.dump() << '\n';
  out.close();
  if (!out) throw std::runtime_error("corpus: error writing '" + index.string() + "'");
}

}  // namespace tuneloop::corpus
