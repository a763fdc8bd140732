#include "config/config.hpp"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <system_error>
#include <type_traits>
#include <utility>

namespace tuneloop::config {
namespace fs = std::filesystem;

// ---------------------------------------------------------------- names & XDG

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::trace:
      return "trace";
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

std::string_view to_string(AudioOutput output) noexcept {
  switch (output) {
    case AudioOutput::automatic:
      return "auto";
    case AudioOutput::portaudio:
      return "portaudio";
    case AudioOutput::none:
      return "none";
  }
  return "auto";
}

std::string_view to_string(Device device) noexcept {
  switch (device) {
    case Device::automatic:
      return "auto";
    case Device::cpu:
      return "cpu";
    case Device::cuda:
      return "cuda";
  }
  return "auto";
}

std::string_view to_string(Vocoder vocoder) noexcept {
  switch (vocoder) {
    case Vocoder::automatic:
      return "auto";
    case Vocoder::neural:
      return "neural";
    case Vocoder::griffin_lim:
      return "griffin-lim";
  }
  return "auto";
}

std::string_view to_string(AdapterInit init) noexcept {
  return init == AdapterInit::parent ? "parent" : "base";
}

std::string_view to_string(Objective objective) noexcept {
  switch (objective) {
    case Objective::sft:
      return "sft";
    case Objective::kto:
      return "kto";
    case Objective::dpo:
      return "dpo";
    case Objective::rwr:
      return "rwr";
  }
  return "sft";
}

namespace {

fs::path home_dir() {
  const char* home = std::getenv("HOME");
  return home != nullptr && *home != '\0' ? fs::path(home) : fs::path("/");
}

// The XDG spec says relative values are invalid and must be ignored.
std::optional<fs::path> xdg_dir(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  fs::path dir(value);
  if (!dir.is_absolute()) return std::nullopt;
  return dir;
}

}  // namespace

fs::path default_data_dir() {
  if (auto dir = xdg_dir("XDG_DATA_HOME")) return *dir / "tuneloop";
  return home_dir() / ".local" / "share" / "tuneloop";
}

fs::path default_socket_path() {
  if (auto dir = xdg_dir("XDG_RUNTIME_DIR")) return *dir / "tuneloop.sock";
  return fs::path("/tmp") / ("tuneloop-" + std::to_string(::getuid())) / "tuneloop.sock";
}

fs::path default_config_path() {
  if (auto dir = xdg_dir("XDG_CONFIG_HOME")) return *dir / "tuneloop" / "config.yaml";
  return home_dir() / ".config" / "tuneloop" / "config.yaml";
}

std::optional<int> minutes_since_midnight(std::string_view text) noexcept {
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 2 || text.size() != colon + 3)
    return std::nullopt;
  int hours = 0, minutes = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i == colon) continue;
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    int& part = i < colon ? hours : minutes;
    part = part * 10 + (text[i] - '0');
  }
  if (hours > 23 || minutes > 59) return std::nullopt;
  return hours * 60 + minutes;
}

ConfigError::ConfigError(const std::string& message, fs::path file, int line, int column,
                         std::string key)
    : std::runtime_error(message),
      file_(std::move(file)),
      line_(line),
      column_(column),
      key_(std::move(key)) {}

// ---------------------------------------------------------------- the key table

namespace {

// Where a value sits, so that every error can name file:line:column and the key.
struct Where {
  const fs::path& file;
  const fs::path& base_dir;  // relative paths resolve against it
  std::string key;
  int line = 0;  // 1-based
  int column = 0;
};

[[noreturn]] void fail(const Where& at, const std::string& problem) {
  std::string message = at.file.string();
  if (at.line > 0) message += ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
  message += ": " + at.key + ": " + problem;
  throw ConfigError(message, at.file, at.line, at.column, at.key);
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    default:
      return "nothing";
  }
}

const std::string& scalar_or_fail(const YAML::Node& node, const Where& at, const char* expected) {
  if (!node.IsScalar()) fail(at, std::string("expected ") + expected + ", got " + describe(node));
  return node.Scalar();
}

long long parse_integer(const YAML::Node& node, const Where& at) {
  const std::string& text = scalar_or_fail(node, at, "a whole number");
  long long value = 0;
  const char* begin = text.data() + (text.starts_with('+') ? 1 : 0);
  auto [end, ec] = std::from_chars(begin, text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) fail(at, "number '" + text + "' is too large");
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    fail(at, "expected a whole number, got '" + text + "'");
  return value;
}

double parse_real(const YAML::Node& node, const Where& at) {
  const std::string& text = scalar_or_fail(node, at, "a number");
  double value = 0;
  const char* begin = text.data() + (text.starts_with('+') ? 1 : 0);
  auto [end, ec] = std::from_chars(begin, text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() ||
      !std::isfinite(value))
    fail(at, "expected a number, got '" + text + "'");
  return value;
}

bool parse_bool(const YAML::Node& node, const Where& at) {
  const std::string& text = scalar_or_fail(node, at, "true or false");
  static const char* const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
  static const char* const no[] = {"false", "False", "FALSE", "no", "No",
                                   "NO",    "off",   "Off",   "OFF"};
  for (const char* word : yes)
    if (text == word) return true;
  for (const char* word : no)
    if (text == word) return false;
  fail(at, "expected true or false, got '" + text + "'");
}

std::string parse_string(const YAML::Node& node, const Where& at) {
  if (node.IsNull()) return {};
  return scalar_or_fail(node, at, "a string");
}

// A list of strings; a plain string is split on spaces and commas ("slow minor piano").
std::vector<std::string> parse_string_list(const YAML::Node& node, const Where& at) {
  std::vector<std::string> items;
  if (node.IsNull()) return items;
  if (node.IsScalar()) {
    std::string word;
    for (char ch : node.Scalar() + " ") {
      if (ch == ' ' || ch == ',' || ch == '\t') {
        if (!word.empty()) items.push_back(std::move(word));
        word.clear();
      } else {
        word += ch;
      }
    }
    return items;
  }
  if (!node.IsSequence()) fail(at, "expected a list of strings, got " + describe(node));
  for (const auto& item : node) {
    if (!item.IsScalar() || item.Scalar().empty())
      fail(at, "expected a list of strings, but an item is " + describe(item));
    items.push_back(item.Scalar());
  }
  return items;
}

// ~, ~/x, $VAR, ${VAR} and ${VAR:-fallback}; an unset variable without fallback is an error
// because silently expanding it to "" would point the daemon somewhere surprising.
std::string expand_variables(const std::string& text, const Where& at) {
  std::string out;
  std::size_t i = 0;
  if (text == "~" || text.starts_with("~/")) {
    out = home_dir().string();
    i = 1;
  }
  while (i < text.size()) {
    char ch = text[i];
    if (ch != '$' || i + 1 >= text.size()) {
      out += ch;
      ++i;
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      i += 2;
      continue;
    }
    std::string name;
    std::optional<std::string> fallback;
    if (text[i + 1] == '{') {
      auto close = text.find('}', i + 2);
      if (close == std::string::npos) fail(at, "unclosed '${' in '" + text + "'");
      name = text.substr(i + 2, close - i - 2);
      if (auto dash = name.find(":-"); dash != std::string::npos) {
        fallback = name.substr(dash + 2);
        name.resize(dash);
      }
      i = close + 1;
    } else {
      std::size_t j = i + 1;
      while (j < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_'))
        ++j;
      name = text.substr(i + 1, j - i - 1);
      if (name.empty()) {
        out += '$';
        ++i;
        continue;
      }
      i = j;
    }
    const char* value = std::getenv(name.c_str());
    if (value != nullptr && *value != '\0') {
      out += value;
    } else if (fallback) {
      out += expand_variables(*fallback, at);
    } else {
      fail(at, "environment variable '" + name + "' is not set (in '" + text + "')");
    }
  }
  return out;
}

fs::path resolve_path(const std::string& text, const Where& at) {
  fs::path path(expand_variables(text, at));
  if (path.is_relative()) path = at.base_dir / path;
  return path.lexically_normal();
}

std::string yaml_quoted(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          static const char hex[] = "0123456789abcdef";
          out += "\\x";
          out += hex[(ch >> 4) & 0xf];
          out += hex[ch & 0xf];
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string real_text(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string text(buffer, ec == std::errc() ? end : buffer);
  // Keep it recognisably a real number for readers ("2.0", not "2").
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

std::string range_text(double low, double high) {
  return "between " + real_text(low) + " and " + real_text(high);
}

struct Row {
  std::string key;  // "section.name"
  std::string doc;
  std::function<void(Config&, const YAML::Node&, const Where&)> read;
  std::function<std::string(const Config&)> value_text;  // effective value as YAML
  bool empty_means_default = false;  // default.yaml writes "" for a computed default
};

// Member access written once per row, e.g. FIELD(audio, sample_rate).
#define FIELD(section, name)                    \
#section "." #name, [](Config & c) -> auto& { \
    return c.section.name;                      \
  }

template <class F>
using FieldType = std::remove_reference_t<std::invoke_result_t<F, Config&>>;

template <class F>
Row integer(std::string key, F field, long long low, long long high, std::string doc) {
  using T = FieldType<F>;
  Row row{key, std::move(doc), {}, {}};
  row.read = [=](Config& c, const YAML::Node& node, const Where& at) {
    long long value = parse_integer(node, at);
    if (value < low || value > high)
      fail(at, "must be between " + std::to_string(low) + " and " + std::to_string(high) +
                   ", got " + std::to_string(value));
    field(c) = static_cast<T>(value);
  };
  row.value_text = [=](const Config& c) { return std::to_string(field(const_cast<Config&>(c))); };
  return row;
}

template <class F>
Row real(std::string key, F field, double low, double high, std::string doc,
         bool low_exclusive = false) {
  Row row{key, std::move(doc), {}, {}};
  row.read = [=](Config& c, const YAML::Node& node, const Where& at) {
    double value = parse_real(node, at);
    bool too_low = low_exclusive ? value <= low : value < low;
    if (too_low || value > high) {
      if (low_exclusive)
        fail(at, "must be greater than " + real_text(low) + " and at most " + real_text(high) +
                     ", got " + node.Scalar());
      fail(at, "must be " + range_text(low, high) + ", got " + node.Scalar());
    }
    field(c) = value;
  };
  row.value_text = [=](const Config& c) { return real_text(field(const_cast<Config&>(c))); };
  return row;
}

template <class F>
Row boolean(std::string key, F field, std::string doc) {
  Row row{key, std::move(doc), {}, {}};
  row.read = [=](Config& c, const YAML::Node& node, const Where& at) {
    field(c) = parse_bool(node, at);
  };
  row.value_text = [=](const Config& c) {
    return std::string(field(const_cast<Config&>(c)) ? "true" : "false");
  };
  return row;
}

enum class Empty { allowed, refused, time_of_day };

template <class F>
Row text(std::string key, F field, Empty empty, std::string doc) {
  Row row{key, std::move(doc), {}, {}};
  row.read = [=](Config& c, const YAML::Node& node, const Where& at) {
    std::string value = parse_string(node, at);
    if (empty == Empty::refused && value.empty()) fail(at, "must not be empty");
    if (empty == Empty::time_of_day && !value.empty() && !minutes_since_midnight(value))
      fail(at, "expected a time of day as HH:MM (00:00 to 23:59) or \"\", got '" + value + "'");
    field(c) = std::move(value);
  };
  row.value_text = [=](const Config& c) { return yaml_quoted(field(const_cast<Config&>(c))); };
  return row;
}

template <class F>
Row path(std::string key, F field, fs::path (*computed_default)(), std::string doc) {
  Row row{key, std::move(doc), {}, {}};
  row.empty_means_default = computed_default != nullptr;
  row.read = [=](Config& c, const YAML::Node& node, const Where& at) {
    std::string text = parse_string(node, at);
    if (text.empty())
      field(c) = computed_default != nullptr ? computed_default() : fs::path();
    else
      field(c) = resolve_path(text, at);
  };
  row.value_text = [=](const Config& c) {
    return yaml_quoted(field(const_cast<Config&>(c)).string());
  };
  return row;
}

template <class F>
Row string_list(std::string key, F field, bool allow_empty, std::string doc) {
  Row row{key, std::move(doc), {}, {}};
  row.read = [=](Config& c, const YAML::Node& node, const Where& at) {
    auto items = parse_string_list(node, at);
    if (!allow_empty && items.empty()) fail(at, "must list at least one item");
    field(c) = std::move(items);
  };
  row.value_text = [=](const Config& c) {
    std::string text = "[";
    for (const auto& item : field(const_cast<Config&>(c))) {
      if (text.size() > 1) text += ", ";
      text += yaml_quoted(item);
    }
    return text + "]";
  };
  return row;
}

// A non-empty list of numbers, each greater than `low` and at most `high`; one number alone
// is a list of one.
template <class F>
Row real_list(std::string key, F field, double low, double high, std::string doc) {
  Row row{key, std::move(doc), {}, {}};
  row.read = [=](Config& c, const YAML::Node& node, const Where& at) {
    std::vector<double> values;
    if (node.IsSequence()) {
      for (const auto& item : node) values.push_back(parse_real(item, at));
    } else {
      values.push_back(parse_real(node, at));
    }
    if (values.empty()) fail(at, "must list at least one number");
    for (double v : values) {
      if (!(v > low && v <= high)) {
        fail(at, "every number must be greater than " + real_text(low) + " and at most " +
                     real_text(high) + ", got " + real_text(v));
      }
    }
    field(c) = std::move(values);
  };
  row.value_text = [=](const Config& c) {
    std::string text = "[";
    for (double v : field(const_cast<Config&>(c))) {
      if (text.size() > 1) text += ", ";
      text += real_text(v);
    }
    return text + "]";
  };
  return row;
}

template <class F>
Row enumeration(std::string key, F field, std::vector<FieldType<F>> values, std::string doc) {
  Row row{key, std::move(doc), {}, {}};
  row.read = [=](Config& c, const YAML::Node& node, const Where& at) {
    const std::string& text = scalar_or_fail(node, at, "a name");
    std::string allowed;
    for (auto value : values) {
      if (text == to_string(value)) {
        field(c) = value;
        return;
      }
      allowed += (allowed.empty() ? "" : ", ") + std::string(to_string(value));
    }
    fail(at, "'" + text + "' is not one of: " + allowed);
  };
  row.value_text = [=](const Config& c) {
    return std::string(to_string(field(const_cast<Config&>(c))));
  };
  return row;
}

constexpr long long kMaxCount = 1'000'000;

// The one table: every key, its type, bounds and one-line doc, in default.yaml order.
const std::vector<Row>& rows() {
  static const std::vector<Row> table = [] {
    std::vector<Row> t;
    t.push_back(path(FIELD(paths, data_dir), &default_data_dir,
                     "database, tracks, adapters; \"\" = $XDG_DATA_HOME/tuneloop or "
                     "~/.local/share/tuneloop"));
    t.push_back(path(FIELD(paths, socket), &default_socket_path,
                     "IPC Unix socket; \"\" = $XDG_RUNTIME_DIR/tuneloop.sock or "
                     "/tmp/tuneloop-$UID/tuneloop.sock"));
    t.push_back(path(FIELD(paths, log_file), nullptr, "also log to this file; \"\" = stderr only"));
    t.push_back(path(FIELD(paths, weights_dir), nullptr,
                     "base-model weights folder; \"\" = the shipped weights"));
    t.push_back(path(FIELD(paths, ui_dir), nullptr, "web player files; \"\" = the shipped UI"));

    t.push_back(enumeration(
        FIELD(daemon, log_level),
        {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error},
        "trace | debug | info | warn | error"));
    t.push_back(integer(FIELD(daemon, tcp_port), 0, 65535,
                        "also serve JSON-RPC on this loopback TCP port (first request: auth with the "
                        "token in DATA/tcp-token); 0 = off"));
    t.push_back(integer(FIELD(daemon, max_line_bytes), 1024, 64LL * 1024 * 1024,
                        "longest IPC request line accepted, in bytes"));
    t.push_back(integer(FIELD(daemon, idle_seconds), 0, 86400,
                        "close a socket or TCP connection silent this long (not one subscribed "
                        "to events); 0 = never"));
    t.push_back(text(FIELD(daemon, listener), Empty::refused,
                     "the listener whose feedback is recorded when a client names none"));

    t.push_back(boolean(FIELD(http, enabled), "serve the web player and JSON-RPC over HTTP"));
    t.push_back(integer(FIELD(http, port), 0, 65535,
                        "HTTP port; 0 = pick a free one (the address is written to DATA/ui-url)"));
    t.push_back(text(FIELD(http, bind), Empty::refused,
                     "HTTP bind address; keep it loopback unless you mean otherwise"));

    t.push_back(integer(FIELD(mpd, port), 0, 65535,
                        "MPD protocol for mpc, ncmpcpp, Cantata, myMPD on this loopback TCP port; 0 = off"));
    t.push_back(text(FIELD(mpd, bind), Empty::refused,
                     "MPD bind address; anything but loopback needs mpd.password"));
    t.push_back(text(FIELD(mpd, password), Empty::allowed,
                     "password MPD clients send before anything else; \"\" = none"));

    t.push_back(enumeration(
        FIELD(audio, output), {AudioOutput::automatic, AudioOutput::portaudio, AudioOutput::none},
        "auto (sound card if any) | portaudio | none (external playback only)"));
    t.push_back(integer(FIELD(audio, sample_rate), 8000, 192000,
                        "output rate in Hz; tracks are resampled to it"));
    t.push_back(text(FIELD(audio, device), Empty::allowed,
                     "PortAudio output device name; \"\" = the system default"));
    t.push_back(integer(FIELD(audio, buffer_frames), 16, 16384, "frames per audio callback"));
    t.push_back(real(FIELD(audio, ring_seconds), 0.1, 60.0,
                     "decoded audio buffered ahead of the output, in seconds"));
    t.push_back(real(FIELD(audio, checkpoint_seconds), 0.5, 3600.0,
                     "save the current play this often, so a crash loses at most this much"));
    t.push_back(real(FIELD(audio, volume), 0.0, 1.0, "playback volume, 0 to 1"));

    t.push_back(real(FIELD(feedback, skip_fraction), 0.0, 1.0,
                     "a play that ends early with less than this fraction heard is a skip"));
    t.push_back(real(FIELD(feedback, rating_weight), 0.0, 1.0,
                     "weight of the per-listener normalised rating in a track's score"));
    t.push_back(real(FIELD(feedback, listen_weight), 0.0, 1.0,
                     "weight of the fraction heard in a track's score"));
    t.push_back(real(FIELD(feedback, unrated_weight), 0.0, 1.0,
                     "multiplier on the listen-only score of unrated tracks"));
    t.push_back(real(FIELD(feedback, replay_bonus), 0.0, 1.0,
                     "added to the score per replay after the first play"));
    t.push_back(real(FIELD(feedback, recency_half_life_days), 0.0, 3650.0,
                     "older feedback counts half after this many days; 0 = no decay"));

    t.push_back(real(FIELD(dataset, percentile), 0.0, 100.0,
                     "keep generated tracks scoring at or above this percentile"));
    t.push_back(boolean(FIELD(dataset, include_songs),
                        "add the listener's own songs to every training set"));
    t.push_back(boolean(FIELD(dataset, use_negatives),
                        "also record disliked tracks as negatives in the manifest"));
    t.push_back(real(FIELD(dataset, negative_percentile), 0.0, 100.0,
                     "tracks scoring at or below this percentile are negatives"));
    t.push_back(integer(FIELD(dataset, min_ratings), 0, kMaxCount,
                        "ratings a listener needs before ratings enter the score"));

    t.push_back(integer(FIELD(schedule, interval_minutes), 0, 525600,
                        "start an iteration every this many minutes; 0 = off"));
    t.push_back(integer(FIELD(schedule, after_new_ratings), 0, kMaxCount,
                        "start an iteration after this many new ratings; 0 = off"));
    t.push_back(text(FIELD(schedule, time_of_day), Empty::time_of_day,
                     "start an iteration daily at this local time, \"HH:MM\"; \"\" = off"));
    t.push_back(integer(FIELD(schedule, min_feedback), 0, kMaxCount,
                        "no iteration until this many tracks are rated or heard"));

    t.push_back(enumeration(FIELD(model, device), {Device::automatic, Device::cpu, Device::cuda},
                            "auto (cuda if this build has it) | cpu | cuda"));
    t.push_back(integer(FIELD(model, threads), 1, 256, "LibTorch threads for generation (2 only on an idle machine: see README)"));
    t.push_back(integer(FIELD(model, steps), 1, 1000, "sampler steps per track"));
    t.push_back(real(FIELD(model, guidance), 0.0, 50.0,
                     "classifier-free guidance scale for tagged generation"));
    t.push_back(enumeration(FIELD(model, vocoder),
                            {Vocoder::automatic, Vocoder::neural, Vocoder::griffin_lim},
                            "auto (the trained vocoder if the weights have one) | neural | griffin-lim"));
    t.push_back(
        real(FIELD(model, adapter_strength), 0.0, 4.0,
             "how much of the active adapter's change is applied: 0 = base model, 1 = as trained, "
             "above 1 = further in its direction; 0.5 keeps the tracks varied (docs/results.md)"));

    t.push_back(enumeration(FIELD(training, init), {AdapterInit::base, AdapterInit::parent},
                            "where each iteration's adapter starts: base (fresh, on all feedback "
                            "so far) | parent (the previous iteration's; narrowing compounds)"));
    t.push_back(enumeration(
        FIELD(training, objective), {Objective::sft, Objective::kto, Objective::dpo, Objective::rwr},
        "sft (denoise the liked tracks) | kto (liked vs disliked, against the base) | dpo "
        "(liked-disliked pairs, against the base) | rwr (all tracks, weighted by reward)"));
    t.push_back(real(FIELD(training, beta), 0.0, 1e9,
                     "kto/dpo/rwr temperature; 0 = calibrated from the listener's data"));
    t.push_back(integer(FIELD(training, rank), 1, 256, "LoRA rank"));
    t.push_back(
        real(FIELD(training, alpha), 0.0, 4096.0, "LoRA alpha; the scale is alpha / rank", true));
    t.push_back(real(FIELD(training, dropout), 0.0, 0.9, "LoRA dropout"));
    t.push_back(
        real(FIELD(training, low_noise_emphasis), 0.25, 8.0,
             "training noise levels drawn as u^p: 1 = uniform, 0.5 = more at high noise (rhythm, "
             "density), 2 = more at low noise (cleaner tones)"));
    t.push_back(string_list(FIELD(training, targets), false,
                            "module-name patterns that get LoRA; \"*\" = every conv and linear"));
    t.push_back(integer(FIELD(training, steps), 1, kMaxCount, "fine-tune steps per iteration"));
    t.push_back(integer(FIELD(training, batch_size), 1, 1024, "examples per fine-tune step"));
    t.push_back(real(FIELD(training, learning_rate), 0.0, 1.0, "fine-tune learning rate", true));
    t.push_back(integer(
        FIELD(training, threads), 1, 256,
        "fine-tune workers, each one LibTorch thread on a share of every batch (at the worker's nice level)"));
    t.push_back(integer(FIELD(training, checkpoint_every), 1, kMaxCount,
                        "steps between resumable checkpoints"));
    t.push_back(integer(FIELD(training, seed), 0, std::numeric_limits<std::int64_t>::max(),
                        "random seed for fine-tuning and for the tracks an iteration draws"));
    t.push_back(integer(FIELD(training, calibration_clips), 0, 1000,
                        "clips generated after a fine-tune to match its output level to its examples'; 0 = off"));
    t.push_back(real_list(
        FIELD(training, strength_scales), 0.0, 4.0,
        "adapter strengths tried after a fine-tune (x model.adapter_strength); the one "
        "whose clips come nearest the examples' features is kept; [1] = off, e.g. [0.5, 0.75, 1]"));

    t.push_back(integer(FIELD(generation, tracks_per_iteration), 1, 10000,
                        "tracks generated per iteration"));
    t.push_back(real(FIELD(generation, seeded_fraction), 0.0, 1.0,
                     "share of tracks seeded from the listener's songs, one per source (their merge "
                     "when there are two or more, then each song); slots beyond the sources are "
                     "free"));
    t.push_back(real(FIELD(generation, liked_fraction), 0.0, 1.0,
                     "share of tracks that are variations of the tracks the listener liked most "
                     "(the fine-tune's examples), one per lineage (a liked track and its "
                     "variations); 0 = none"));
    t.push_back(real(FIELD(generation, crossover_fraction), 0.0, 1.0,
                     "share of tracks started from the SLERP merge of two liked tracks of "
                     "different lineages, each pair once a batch, after the variations; 0 = none"));
    t.push_back(real(FIELD(generation, strength), 0.0, 1.0,
                     "how far seeded tracks stray from their song or liked track: 0 = copy, 1 = ignore it"));
    t.push_back(real(FIELD(generation, seconds), 1.0, 600.0, "length of each track in seconds"));
    t.push_back(
        string_list(FIELD(generation, tags), true,
                    "style tags for free generations, e.g. [slow, minor] (a mode without a key "
                    "gets one drawn from each track's seed); [] = untagged"));
    t.push_back(integer(FIELD(generation, candidates), 1, 64,
                        "candidates drawn per track; the reward model keeps a varied best; 1 = off"));
    t.push_back(integer(FIELD(generation, preview_steps), 1, 1000,
                        "sampler steps after which a candidate is scored (capped at model.steps)"));
    t.push_back(real(FIELD(generation, diversity), 0.0, 100.0,
                     "weight of a candidate's distance from the batch against its reward"));
    t.push_back(real(FIELD(generation, explore), 0.0, 10.0,
                     "width of the reward model's Thompson draws: 0 = its mean, 1 = its posterior"));
    t.push_back(boolean(FIELD(generation, learn_tags),
                        "after the first batch, free tracks draw their style tags (one word or none "
                        "per category) by a Thompson draw from the scores of the tracks drawn "
                        "with each word; false = generation.tags for every free track"));
    return t;
  }();
  return table;
}

#undef FIELD

struct SectionDoc {
  const char* name;
  const char* doc;
};

constexpr SectionDoc kSections[] = {
    {"paths",
     "Where things live. ~, $VAR and ${VAR:-fallback} expand; relative paths "
     "resolve against this file's folder."},
    {"daemon", "tuneloopd itself and its JSON-RPC IPC."},
    {"http", "The web player and JSON-RPC over HTTP."},
    {"mpd", "Existing music players (mpc, ncmpcpp, Cantata, myMPD) over the MPD protocol; docs/mpd.md."},
    {"audio", "Playback and listening-time accounting."},
    {"feedback", "How ratings and listening become a track's preference score."},
    {"dataset", "Which tracks go into each iteration's training set."},
    {"schedule", "When a new iteration starts (besides `tuneloop iterate`)."},
    {"model", "The diffusion model at generation time."},
    {"training", "The LoRA fine-tune of each iteration."},
    {"generation", "The batch of new tracks each iteration makes."},
};

std::string_view section_of(const std::string& key) {
  return std::string_view(key).substr(0, key.find('.'));
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> previous(b.size() + 1), current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      current[j] = std::min(
          {previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(previous, current);
  }
  return previous[b.size()];
}

// " (did you mean 'x'?)" for a close name, also when a key sits in the wrong section.
std::string suggestion(const std::string& unknown, const std::vector<std::string>& known) {
  auto leaf = [](std::string_view key) { return key.substr(key.rfind('.') + 1); };
  // Names further than `limit` edits away are never suggested, and a name whose length
  // differs by more than that is at least that far: skip them without the quadratic
  // distance (a long junk key would otherwise cost its length times every name's).
  const std::size_t limit = std::max<std::size_t>(2, unknown.size() / 4);
  std::size_t best = std::numeric_limits<std::size_t>::max();
  std::string best_name;
  for (const auto& name : known) {
    std::size_t distance;
    if (unknown.find('.') != std::string::npos && leaf(unknown) == leaf(name))
      distance = unknown == name ? 0 : 1;
    else if ((unknown.size() > name.size() ? unknown.size() - name.size() : name.size() - unknown.size()) > limit)
      continue;
    else
      distance = edit_distance(unknown, name);
    if (distance < best) {
      best = distance;
      best_name = name;
    }
  }
  if (best_name.empty() || best > limit) return {};
  return " (did you mean '" + best_name + "'?)";
}

Where where(const fs::path& file, const fs::path& base, std::string key, const YAML::Node& node,
            const YAML::Node& fallback) {
  YAML::Mark mark = node.Mark();
  if (mark.is_null() || (node.IsNull() && !fallback.Mark().is_null())) mark = fallback.Mark();
  if (mark.is_null()) return Where{file, base, std::move(key), 0, 0};
  return Where{file, base, std::move(key), mark.line + 1, mark.column + 1};
}

fs::path base_dir_of(const fs::path& origin) {
  std::error_code ec;
  fs::path parent = origin.parent_path();
  if (parent.empty()) return fs::current_path(ec);
  return fs::absolute(parent, ec).lexically_normal();
}

void apply(Config& config, const YAML::Node& root, const fs::path& file) {
  const fs::path base = base_dir_of(file);
  if (root.IsNull()) return;  // an empty file keeps every default
  if (!root.IsMap())
    fail(where(file, base, "(top level)", root, root),
         "expected a mapping of sections (paths:, audio:, …), got " + describe(root));

  std::vector<std::string> section_names, all_keys;
  for (const auto& section : kSections) section_names.emplace_back(section.name);
  for (const auto& row : rows()) all_keys.push_back(row.key);

  std::vector<std::string> seen;
  for (const auto& section_entry : root) {
    const YAML::Node& section_key = section_entry.first;
    const YAML::Node& section_value = section_entry.second;
    std::string section = section_key.IsScalar() ? section_key.Scalar() : describe(section_key);
    Where section_at = where(file, base, section, section_key, section_key);
    if (std::find(section_names.begin(), section_names.end(), section) == section_names.end())
      fail(section_at, "unknown key" + suggestion(section, section_names));
    if (std::find(seen.begin(), seen.end(), section) != seen.end())
      fail(section_at, "appears twice");
    seen.push_back(section);
    if (section_value.IsNull()) continue;
    if (!section_value.IsMap())
      fail(where(file, base, section, section_value, section_key),
           "expected a mapping of keys, got " + describe(section_value));

    for (const auto& entry : section_value) {
      std::string name = entry.first.IsScalar() ? entry.first.Scalar() : describe(entry.first);
      std::string key = section + "." + name;
      Where key_at = where(file, base, key, entry.first, entry.first);
      auto row =
          std::find_if(rows().begin(), rows().end(), [&](const Row& r) { return r.key == key; });
      if (row == rows().end()) fail(key_at, "unknown key" + suggestion(key, all_keys));
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) fail(key_at, "appears twice");
      seen.push_back(key);
      row->read(config, entry.second, where(file, base, key, entry.second, entry.first));
    }
  }
}

std::string render(const Config& config, bool as_default_file) {
  std::ostringstream out;
  out << "# tuneloop settings. Every key is optional: a missing key keeps the default shown.\n"
         "# tuneloopd reads --config FILE, else $XDG_CONFIG_HOME/tuneloop/config.yaml\n"
         "# (~/.config/tuneloop/config.yaml) if it exists, else these built-in defaults.\n";
  for (const auto& section : kSections) {
    out << "\n# " << section.doc << "\n" << section.name << ":\n";
    for (const auto& row : rows()) {
      if (section_of(row.key) != section.name) continue;
      std::string value =
          as_default_file && row.empty_means_default ? "\"\"" : row.value_text(config);
      std::string line = "  " + row.key.substr(row.key.find('.') + 1) + ": " + value;
      if (line.size() < 34) line.resize(34, ' ');
      out << line << "  # " << row.doc << "\n";
    }
  }
  return out.str();
}

}  // namespace

// ---------------------------------------------------------------- loading

Config load_config_string(std::string_view yaml, const fs::path& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    int column = e.mark.is_null() ? 0 : e.mark.column + 1;
    std::string message = origin.string();
    if (line > 0) message += ":" + std::to_string(line) + ":" + std::to_string(column);
    throw ConfigError(message + ": YAML syntax error: " + e.msg, origin, line, column);
  }
  Config config;
  apply(config, root, origin);
  return config;
}

Config load_config_file(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec))
    throw ConfigError("config file '" + file.string() + "' does not exist", file);
  if (fs::is_directory(file, ec))
    throw ConfigError("config file '" + file.string() + "' is a folder, not a file", file);
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof())
    throw ConfigError("config file '" + file.string() + "' cannot be read", file);
  if (!in.is_open())
    throw ConfigError("config file '" + file.string() + "' cannot be opened", file);
  return load_config_string(text.str(), file);
}

std::optional<fs::path> config_file_to_use(const std::optional<fs::path>& explicit_file) {
  if (explicit_file) return explicit_file;
  std::error_code ec;
  fs::path fallback = default_config_path();
  if (fs::exists(fallback, ec)) return fallback;
  return std::nullopt;
}

Config load_config(const LoadOptions& options) {
  auto file = config_file_to_use(options.config_file);
  Config config = file ? load_config_file(*file) : Config{};
  if (options.data_dir) {
    static const fs::path command_line("--data-dir");
    std::error_code ec;
    const fs::path cwd = fs::current_path(ec);
    Where at{command_line, cwd, "paths.data_dir"};
    if (options.data_dir->empty()) fail(at, "must not be empty");
    config.paths.data_dir = resolve_path(options.data_dir->string(), at);
  }
  return config;
}

std::string to_yaml(const Config& config) {
  return render(config, false);
}

std::string default_yaml() {
  return render(Config{}, true);
}

std::vector<KeyDoc> documented_keys() {
  std::vector<KeyDoc> docs;
  const Config defaults;
  for (const auto& row : rows())
    docs.push_back({row.key, row.empty_means_default ? "\"\"" : row.value_text(defaults), row.doc});
  return docs;
}

}  // namespace tuneloop::config
