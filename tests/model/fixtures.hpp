#pragma once
// Helpers shared by the model tests: a tiny synthetic corpus, fixture weights.
#include <string>
#include <vector>

namespace tuneloop::testing {

// A tone (with harmonics, decaying notes at `notes_per_second`) at 16 kHz.
std::vector<float> tone(double hz, double seconds, double notes_per_second, int sample_rate = 16000);

// Writes DIR/clips/*.wav + DIR/index.jsonl: `count` clips of `seconds`, tagged "low"/"high"
// by pitch and "slow"/"fast" by note rate.
void write_tiny_corpus(const std::string& dir, int count = 8, double seconds = 1.5);

// Writes randomly initialised fixture autoencoder.safetensors and denoiser.safetensors
// (tags: low high slow fast) into dir; the denoiser's output layer is randomised too so
// that its predictions are not all zero.
void write_fixture_weights(const std::string& dir, unsigned seed = 1);

}  // namespace tuneloop::testing
