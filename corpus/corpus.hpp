#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "corpus/composer.hpp"
#include "corpus/renderer.hpp"

namespace tuneloop::corpus {

struct CorpusOptions {
  int count = 100;
  std::uint64_t seed = 1;
  std::string out_dir;
  double seconds = 4.2;
  std::string style;  // e.g. "slow minor piano"; empty = the whole style space
  int jobs = 2;       // threads, each with its own FluidSynth
  int sample_rate = 16000;
  std::string soundfont = kDefaultSoundfont;  // the classic corpus's one soundfont
  // classic: one soundfont, every clip from a piece's first note (what the shipped weights
  // were trained on); rich: vary_piece's choices over rich_soundfonts().
  std::string variety = "classic";
};

// The index.jsonl record of one clip: file (relative to the corpus folder), seed, the
// musical choices and its tags; a rich clip's record also names its soundfont (`fonts`
// lists the renderer's), chorus, level offset, crash spacing and start in the piece.
nlohmann::json clip_record(const std::string& file, const PieceSpec& spec, double seconds,
                           int sample_rate, const std::vector<std::string>& fonts = {});

// Called after each finished clip with (done, total); from the worker threads, serialised.
using CorpusProgress = std::function<void(int done, int total)>;

// Writes DIR/clips/NNNNN.wav (16-bit mono) and DIR/index.jsonl (one object per clip, in
// clip order). Clip i depends only on (seed, i, style, seconds, sample_rate), so the same
// options give byte-identical files whatever the number of jobs.
// Throws StyleError for an unknown style word, RenderError when FluidSynth fails, and
// std::runtime_error naming the path when the folder or a file can't be written.
void generate_corpus(const CorpusOptions& options, const CorpusProgress& progress = {});

}  // namespace tuneloop::corpus
