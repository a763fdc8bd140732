#pragma once
// tuneloop's settings: YAML (config/default.yaml lists every key) -> a typed Config.
//
// Every field's member initialiser is its built-in default, and those equal
// config/default.yaml exactly (a test checks it). Paths in a loaded Config are already
// expanded (~, $VAR, ${VAR}) and absolute (relative ones resolve against the config
// file's folder). An empty path means "the built-in choice" where the field says so.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tuneloop::config {

enum class LogLevel { trace, debug, info, warn, error };
enum class AudioOutput { automatic, portaudio, none };  // YAML: auto | portaudio | none
enum class Device { automatic, cpu, cuda };             // YAML: auto | cpu | cuda
enum class Vocoder { automatic, neural, griffin_lim };  // YAML: auto | neural | griffin-lim
enum class AdapterInit { base, parent };                 // where an iteration's adapter starts
enum class Objective { sft, kto, dpo, rwr };             // the fine-tune's training objective

std::string_view to_string(LogLevel level) noexcept;
std::string_view to_string(AudioOutput output) noexcept;
std::string_view to_string(Device device) noexcept;
std::string_view to_string(Vocoder vocoder) noexcept;
std::string_view to_string(AdapterInit init) noexcept;
std::string_view to_string(Objective objective) noexcept;

/// `$XDG_DATA_HOME/tuneloop`, else `~/.local/share/tuneloop`.
std::filesystem::path default_data_dir();
/// `$XDG_RUNTIME_DIR/tuneloop.sock`, else `/tmp/tuneloop-<uid>/tuneloop.sock`.
std::filesystem::path default_socket_path();
/// `$XDG_CONFIG_HOME/tuneloop/config.yaml`, else `~/.config/tuneloop/config.yaml`.
std::filesystem::path default_config_path();

struct PathsConfig {
  std::filesystem::path data_dir = default_data_dir();   // YAML "" = the XDG default
  std::filesystem::path socket = default_socket_path();  // YAML "" = the XDG default
  std::filesystem::path log_file;                        // empty: log to stderr only
  std::filesystem::path weights_dir;                     // empty: the shipped base-model weights
  std::filesystem::path ui_dir;                          // empty: the shipped UI files
  bool operator==(const PathsConfig&) const = default;
};

struct DaemonConfig {
  LogLevel log_level = LogLevel::info;
  int tcp_port = 0;                          // loopback JSON-RPC port; 0 = off
  std::size_t max_line_bytes = 1024 * 1024;  // longest accepted IPC request line
  int idle_seconds = 300;                    // close a silent, unsubscribed connection; 0 = never
  std::string listener = "default";          // whose feedback is recorded by default
  bool operator==(const DaemonConfig&) const = default;
};

struct HttpConfig {
  bool enabled = true;
  int port = 8754;
  std::string bind = "127.0.0.1";
  bool operator==(const HttpConfig&) const = default;
};

struct MpdConfig {
  int port = 6600;                 // MPD protocol on this TCP port (docs/mpd.md); 0 = off
  std::string bind = "127.0.0.1";  // anything but loopback needs a password
  std::string password;            // "" = none
  bool operator==(const MpdConfig&) const = default;
};

struct AudioConfig {
  AudioOutput output = AudioOutput::automatic;
  int sample_rate = 16000;          // device rate; decoded audio is resampled to it
  std::string device;               // PortAudio device name; empty = system default
  int buffer_frames = 256;          // frames per PortAudio callback
  double ring_seconds = 2.0;        // decoder -> callback ring buffer length
  double checkpoint_seconds = 5.0;  // how often the current play is saved
  double volume = 1.0;              // 0..1
  bool operator==(const AudioConfig&) const = default;
};

struct FeedbackConfig {
  double skip_fraction = 0.5;           // a play ended below this fraction heard is a skip
  double rating_weight = 0.7;           // weight of the normalised rating in the score
  double listen_weight = 0.3;           // weight of the listen fraction in the score
  double unrated_weight = 0.5;          // multiplier on the score of unrated tracks
  double replay_bonus = 0.1;            // added per replay beyond the first play
  double recency_half_life_days = 0.0;  // older feedback decays with this half life; 0 = off
  bool operator==(const FeedbackConfig&) const = default;
};

struct DatasetConfig {
  double percentile = 75.0;           // keep generated tracks scoring at or above this
  bool include_songs = true;          // the listener's own songs join every dataset
  bool use_negatives = false;         // also record disliked tracks as negatives
  double negative_percentile = 25.0;  // negatives score at or below this
  int min_ratings = 5;                // ratings needed before ratings enter the score
  bool operator==(const DatasetConfig&) const = default;
};

struct ScheduleConfig {
  int interval_minutes = 0;    // iterate every N minutes; 0 = off
  int after_new_ratings = 10;  // iterate after N new ratings; 0 = off
  std::string time_of_day;     // "HH:MM" local time to iterate daily; empty = off
  int min_feedback = 8;        // no iteration with fewer rated or heard tracks than this
  bool operator==(const ScheduleConfig&) const = default;
};

/// Minutes since midnight of a validated "HH:MM" string; nullopt for "" or a bad string.
std::optional<int> minutes_since_midnight(std::string_view time_of_day) noexcept;

struct ModelConfig {
  Device device = Device::automatic;
  int threads = 1;        // LibTorch threads for generation (OpenMP with 2 slows 4-6x when a core is busy)
  int steps = 25;         // sampler steps
  double guidance = 3.0;  // classifier-free guidance scale
  Vocoder vocoder = Vocoder::automatic;  // the way from mel back to audio
  double adapter_strength = 0.5;  // share of the adapter's weight change applied (> 1 goes further)
  bool operator==(const ModelConfig&) const = default;
};

struct TrainingConfig {
  // base: every iteration trains a fresh adapter from the base model on all feedback so far;
  // parent: it continues the previous iteration's adapter (narrowing compounds).
  AdapterInit init = AdapterInit::base;
  Objective objective = Objective::kto;  // docs/results.md: the default study's winner
  double beta = 0.0;  // kto/dpo/rwr temperature; 0 = calibrated from the listener's data
  int rank = 8;                              // LoRA rank
  double alpha = 8.0;                        // LoRA alpha (scale = alpha / rank)
  double dropout = 0.0;                      // LoRA dropout
  double low_noise_emphasis = 0.5;           // noise levels t = u^p: 1 = uniform, 0.5 = more high
  std::vector<std::string> targets = {"*"};  // module-name patterns that get LoRA
  int steps = 300;
  int batch_size = 8;
  double learning_rate = 1e-3;
  // Fine-tune workers, each one LibTorch thread on a share of every batch: no OpenMP
  // barriers, so 2 keep their speed beside playback (docs/benchmarks.md, "Threads").
  int threads = 2;
  int checkpoint_every = 50;  // steps between resumable checkpoints
  std::int64_t seed = 0;
  int calibration_clips = 40;  // clips generated to set the adapter's output level; 0 = none
  // Adapter strengths tried on those clips; the one nearest the examples' features is kept.
  // Off ({1}) by default: measured, it did not choose better than 1 (docs/model.md).
  std::vector<double> strength_scales = {1.0};
  bool operator==(const TrainingConfig&) const = default;
};

struct GenerationConfig {
  int tracks_per_iteration = 16;
  double seeded_fraction = 0.5;   // share of tracks seeded from the listener's songs, one per source
  double liked_fraction = 0.5;    // share of tracks varied from the liked tracks, one per lineage
  double strength = 0.6;          // img2img strength for seeded tracks (0 = copy, 1 = free)
  double seconds = 8.0;           // length of each generated track
  std::vector<std::string> tags;  // style tags for free generations; empty = untagged
  int candidates = 4;          // candidates per track, the best (by reward, varied) kept; 1 = off
  int preview_steps = 6;       // sampler steps after which a candidate is scored
  double diversity = 1.0;      // weight of the distance bonus in the selection
  double explore = 1.0;        // Thompson sampling width: 0 = the reward model's mean
  bool learn_tags = false;     // free tracks draw their tags from what the listener liked
  double crossover_fraction = 0;  // share of tracks started from the merge of two liked tracks
  bool operator==(const GenerationConfig&) const = default;
};

struct Config {
  PathsConfig paths;
  DaemonConfig daemon;
  HttpConfig http;
  MpdConfig mpd;
  AudioConfig audio;
  FeedbackConfig feedback;
  DatasetConfig dataset;
  ScheduleConfig schedule;
  ModelConfig model;
  TrainingConfig training;
  GenerationConfig generation;
  bool operator==(const Config&) const = default;
};

/// A bad config: its message says file:line:column, the dotted key and the problem.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& message, std::filesystem::path file = {}, int line = 0,
              int column = 0, std::string key = {});
  const std::filesystem::path& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }      // 1-based; 0 = unknown
  int column() const noexcept { return column_; }  // 1-based; 0 = unknown
  const std::string& key() const noexcept { return key_; }

 private:
  std::filesystem::path file_;
  int line_;
  int column_;
  std::string key_;
};

/// Reads one YAML file; keys it leaves out keep their defaults.
/// Throws ConfigError if the file is missing or unreadable, or on any bad key or value.
Config load_config_file(const std::filesystem::path& file);

/// Parses YAML text; `origin` names it in errors and its folder anchors relative paths.
/// Throws ConfigError on any bad key or value.
Config load_config_string(std::string_view yaml, const std::filesystem::path& origin = "<string>");

struct LoadOptions {
  std::optional<std::filesystem::path> config_file;  // --config: must exist
  std::optional<std::filesystem::path> data_dir;     // --data-dir: replaces paths.data_dir
};

/// The file load_config reads: the explicit one, else default_config_path() if it
/// exists, else nullopt (built-in defaults).
std::optional<std::filesystem::path> config_file_to_use(
    const std::optional<std::filesystem::path>& explicit_file);

/// The effective settings: the chosen file (see config_file_to_use) plus overrides.
/// Throws ConfigError if an explicit file is missing, or on any bad key or value.
Config load_config(const LoadOptions& options = {});

/// The settings as YAML that load_config_string reads back into the same Config.
std::string to_yaml(const Config& config);

/// The text of config/default.yaml: every key at its default with a one-line comment
/// (computed defaults written as ""). Generated from the same table that validates.
std::string default_yaml();

struct KeyDoc {
  std::string key;            // dotted, e.g. "audio.sample_rate"
  std::string default_value;  // as YAML text
  std::string doc;            // one line
};

/// Every key in default.yaml order, for --help and docs.
std::vector<KeyDoc> documented_keys();

}  // namespace tuneloop::config
