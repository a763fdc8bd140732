#include "study/study.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "audio/features.hpp"

namespace fs = std::filesystem;

namespace tuneloop::study {

const std::map<std::string, double>& default_feature_scale() {
  // Standard deviations measured over 44 FluidSynth corpus clips (4.2 s, 16 kHz); a study
  // overrides them with feature_scale: when its tracks vary more or less than these.
  static const std::map<std::string, double> scale = {
      {"onset_rate", 1.4},  {"tempo_bpm", 35.0},   {"brightness", 400.0}, {"minorness", 0.17},
      {"loudness_db", 3.0}, {"note_density", 1.3}, {"flatness", 0.12}};
  return scale;
}

std::string to_string(Design d) {
  return d == Design::ab_pairs ? "ab_pairs" : "within_subject";
}

namespace {

struct Reader {
  fs::path origin;

  [[noreturn]] void fail(const YAML::Node& at, const std::string& key,
                         const std::string& what) const {
    std::ostringstream s;
    s << origin.string();
    const YAML::Mark m = at.Mark();
    if (!m.is_null()) s << ":" << m.line + 1;
    s << ": " << key << ": " << what;
    throw StudyError(s.str());
  }

  std::string describe(const YAML::Node& n) const {
    if (n.IsMap()) return "a mapping";
    if (n.IsSequence()) return "a list";
    if (n.IsNull()) return "nothing";
    return "'" + n.Scalar() + "'";
  }

  double number(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) fail(n, key, "expected a number, got " + describe(n));
    try {
      const double v = n.as<double>();
      if (!std::isfinite(v)) fail(n, key, "expected a finite number, got " + describe(n));
      return v;
    } catch (const YAML::Exception&) {
      fail(n, key, "expected a number, got " + describe(n));
    }
  }

  double number_in(const YAML::Node& n, const std::string& key, double lo, double hi) const {
    const double v = number(n, key);
    if (v < lo || v > hi) {
      std::ostringstream s;
      s << "must be between " << lo << " and " << hi << ", not " << n.Scalar();
      fail(n, key, s.str());
    }
    return v;
  }

  long integer(const YAML::Node& n, const std::string& key, long lo, long hi) const {
    const double v = number(n, key);
    if (std::floor(v) != v) fail(n, key, "expected a whole number, got " + describe(n));
    if (v < lo || v > hi)
      fail(n, key,
           "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", not " +
               n.Scalar());
    return static_cast<long>(v);
  }

  std::string text(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) fail(n, key, "expected text, got " + describe(n));
    return n.Scalar();
  }

  void map_of(const YAML::Node& n, const std::string& key) const {
    if (!n.IsMap()) fail(n, key, "expected a mapping, got " + describe(n));
  }

  // Throws for a key that is not one of `known` (the message lists them).
  void known_keys(const YAML::Node& map, const std::string& prefix,
                  const std::vector<std::string>& known) const {
    std::set<std::string> seen;
    for (const auto& e : map) {
      const std::string k = e.first.IsScalar() ? e.first.Scalar() : describe(e.first);
      const std::string full = prefix.empty() ? k : prefix + "." + k;
      if (std::find(known.begin(), known.end(), k) == known.end()) {
        std::string list;
        for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
        fail(e.first, full, "unknown key (expected one of: " + list + ")");
      }
      if (!seen.insert(k).second) fail(e.first, full, "appears twice");
    }
  }

  void feature_name(const YAML::Node& at, const std::string& key, const std::string& name) const {
    const auto& names = audio::feature_names();
    if (std::find(names.begin(), names.end(), name) != names.end()) return;
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    fail(at, key, "unknown audio feature '" + name + "' (known: " + list + ")");
  }

  // feature: number, per feature; `positive` demands > 0.
  std::map<std::string, double> feature_map(const YAML::Node& n, const std::string& key,
                                            bool positive) const {
    map_of(n, key);
    std::map<std::string, double> out;
    for (const auto& e : n) {
      const std::string f = text(e.first, key);
      feature_name(e.first, key + "." + f, f);
      const double v = number(e.second, key + "." + f);
      if (positive && v <= 0)
        fail(e.second, key + "." + f, "must be greater than 0, not " + e.second.Scalar());
      out[f] = v;
    }
    return out;
  }

  Taste taste(const YAML::Node& n, const std::string& key) const {
    map_of(n, key);
    if (n.size() == 0) fail(n, key, "names no feature (give at least one, e.g. tempo_bpm: 140)");
    Taste t;
    for (const auto& e : n) {
      const std::string f = text(e.first, key);
      const std::string fk = key + "." + f;
      feature_name(e.first, fk, f);
      if (e.second.IsMap()) {
        known_keys(e.second, fk, {"target", "weight"});
        if (!e.second["target"]) fail(e.second, fk + ".target", "is required");
        t.target[f] = number(e.second["target"], fk + ".target");
        if (e.second["weight"]) {
          const double w = number(e.second["weight"], fk + ".weight");
          if (w <= 0)
            fail(e.second["weight"], fk + ".weight",
                 "must be greater than 0, not " + e.second["weight"].Scalar());
          t.weight[f] = w;
        }
      } else {
        t.target[f] = number(e.second, fk);
      }
    }
    return t;
  }

  Participant participant(const YAML::Node& n, const std::string& key) const {
    map_of(n, key);
    known_keys(n, key,
               {"name", "kind", "taste", "bias", "noise", "tolerance", "skip_tendency", "drift"});
    Participant p;
    if (!n["name"]) fail(n, key + ".name", "is required");
    p.name = text(n["name"], key + ".name");
    if (p.name.empty() || p.name.size() > 64 ||
        !std::all_of(p.name.begin(), p.name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        }))
      fail(n["name"], key + ".name",
           "must be 1–64 letters, digits, '_' or '-' (it names the participant's folder), not '" +
               p.name + "'");
    if (n["kind"]) {
      const std::string k = text(n["kind"], key + ".kind");
      if (k == "simulated")
        p.kind = Participant::Kind::simulated;
      else if (k == "human")
        p.kind = Participant::Kind::human;
      else
        fail(n["kind"], key + ".kind", "must be simulated or human, not '" + k + "'");
    }
    if (p.kind == Participant::Kind::human) {
      for (const char* k : {"taste", "bias", "noise", "tolerance", "skip_tendency", "drift"})
        if (n[k])
          fail(n[k], key + "." + k, "applies to simulated participants only (this one is human)");
      return p;
    }
    if (!n["taste"]) fail(n, key + ".taste", "is required for a simulated participant");
    p.taste = taste(n["taste"], key + ".taste");
    if (n["bias"]) p.bias = number_in(n["bias"], key + ".bias", -4, 4);
    if (n["noise"]) p.noise = number_in(n["noise"], key + ".noise", 0, 4);
    if (n["tolerance"]) {
      p.tolerance = number(n["tolerance"], key + ".tolerance");
      if (p.tolerance <= 0)
        fail(n["tolerance"], key + ".tolerance",
             "must be greater than 0, not " + n["tolerance"].Scalar());
    }
    if (n["skip_tendency"])
      p.skip_tendency = number_in(n["skip_tendency"], key + ".skip_tendency", 0, 1);
    if (n["drift"]) p.drift = feature_map(n["drift"], key + ".drift", false);
    return p;
  }

  PilotStudy study(const YAML::Node& root) const {
    PilotStudy s;
    s.file = origin;
    if (!root.IsMap())
      fail(root, "(top level)",
           "expected a mapping (participants:, iterations:, …), got " + describe(root));
    known_keys(root, "",
               {"name", "participants", "iterations", "tracks_per_iteration",
                "eval_tracks_per_iteration", "scale", "design", "seed", "output", "feature_scale",
                "daemon_config", "iteration_timeout_s", "parallel"});
    if (root["name"]) s.name = text(root["name"], "name");
    if (root["iterations"])
      s.iterations = static_cast<int>(integer(root["iterations"], "iterations", 1, 50));
    if (root["tracks_per_iteration"])
      s.tracks_per_iteration =
          static_cast<int>(integer(root["tracks_per_iteration"], "tracks_per_iteration", 2, 256));
    if (root["eval_tracks_per_iteration"])
      s.eval_tracks_per_iteration = static_cast<int>(
          integer(root["eval_tracks_per_iteration"], "eval_tracks_per_iteration", 0, 256));
    if (root["seed"])
      s.seed = static_cast<std::uint64_t>(integer(root["seed"], "seed", 0, 2147483647));
    if (root["parallel"])
      s.parallel = static_cast<int>(integer(root["parallel"], "parallel", 1, 64));
    if (root["iteration_timeout_s"])
      s.iteration_timeout_s =
          number_in(root["iteration_timeout_s"], "iteration_timeout_s", 1, 86400);
    if (root["design"]) {
      const std::string d = text(root["design"], "design");
      if (d == "within_subject")
        s.design = Design::within_subject;
      else if (d == "ab_pairs")
        s.design = Design::ab_pairs;
      else
        fail(root["design"], "design", "must be within_subject or ab_pairs, not '" + d + "'");
    }
    if (root["scale"]) {
      const YAML::Node sc = root["scale"];
      map_of(sc, "scale");
      known_keys(sc, "scale", {"min", "max", "step"});
      // The daemon takes 1–5 stars in half steps, so a study scale must fit inside that.
      if (sc["min"]) s.scale.min = number_in(sc["min"], "scale.min", 1, 5);
      if (sc["max"]) s.scale.max = number_in(sc["max"], "scale.max", 1, 5);
      if (sc["step"]) {
        s.scale.step = number(sc["step"], "scale.step");
        if (s.scale.step != 0.5 && s.scale.step != 1.0)
          fail(sc["step"], "scale.step", "must be 0.5 or 1, not " + sc["step"].Scalar());
      }
      if (s.scale.min >= s.scale.max) fail(sc, "scale", "min must be below max");
      for (double v : {s.scale.min, s.scale.max})
        if (std::fabs(v / s.scale.step - std::round(v / s.scale.step)) > 1e-9)
          fail(sc, "scale", "min and max must be multiples of the step");
    }
    if (root["output"]) {
      fs::path out = text(root["output"], "output");
      if (out.empty()) fail(root["output"], "output", "must not be empty");
      s.output = out;
    }
    if (s.output.is_relative()) {
      fs::path base = origin.parent_path();
      s.output = (base.empty() ? s.output : base / s.output).lexically_normal();
    }
    s.feature_scale = default_feature_scale();
    if (root["feature_scale"])
      for (const auto& [f, v] : feature_map(root["feature_scale"], "feature_scale", true))
        s.feature_scale[f] = v;
    if (root["daemon_config"]) {
      const YAML::Node dc = root["daemon_config"];
      map_of(dc, "daemon_config");
      YAML::Emitter e;
      e << dc;
      s.daemon_config_yaml = e.c_str();
    }
    if (!root["participants"]) fail(root, "participants", "is required (a list of participants)");
    const YAML::Node ps = root["participants"];
    if (!ps.IsSequence() || ps.size() == 0)
      fail(ps, "participants", "expected a non-empty list, got " + describe(ps));
    std::set<std::string> names;
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const std::string key = "participants[" + std::to_string(i) + "]";
      Participant p = participant(ps[i], key);
      if (!names.insert(p.name).second)
        fail(ps[i]["name"], key + ".name", "'" + p.name + "' is used twice");
      s.participants.push_back(std::move(p));
    }
    return s;
  }
};

}  // namespace

PilotStudy parse_study(const std::string& yaml, const fs::path& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw StudyError(origin.string() + ":" + std::to_string(e.mark.line + 1) +
                     ": not valid YAML: " + e.msg);
  }
  return Reader{origin}.study(root);
}

PilotStudy load_study(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw StudyError(file.string() + ": cannot read the study file");
  std::ostringstream s;
  s << in.rdbuf();
  return parse_study(s.str(), file);
}

std::vector<std::pair<int, long long>> blinded_order(
    const std::vector<std::pair<int, long long>>& tracks, int per_iteration, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<int, std::vector<long long>> by_it;
  for (const auto& [it, id] : tracks) by_it[it].push_back(id);
  std::vector<std::pair<int, long long>> out;
  for (auto& [it, ids] : by_it) {
    std::sort(ids.begin(), ids.end());
    std::shuffle(ids.begin(), ids.end(), rng);
    const std::size_t n =
        per_iteration > 0 ? std::min<std::size_t>(per_iteration, ids.size()) : ids.size();
    for (std::size_t i = 0; i < n; ++i) out.emplace_back(it, ids[i]);
  }
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

}  // namespace tuneloop::study
