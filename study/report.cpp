#include "study/report.hpp"

#include <fcntl.h>
#include <sys/wait.h>

#include <csignal>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "loop/statistics.hpp"
#include "audio/features.hpp"
#include "audio/sound_profile.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace tuneloop::study {

namespace {

constexpr double kPaperIteration1 = 0.20;  // mean-rating gain after the first cycle
constexpr double kPaperIteration2 = 0.39;  // a further gain after the second
constexpr double kTargetIteration1 = 0.5;
constexpr double kTargetIteration2 = 1.0;
constexpr double kTargetP = 0.01;
constexpr double kTargetDiversity = 0.5;

double as_num(const json& v) {
  return v.is_number() ? v.get<double>() : std::nan("");
}

std::string fmt(double v, int digits = 2, bool sign = false) {
  if (!std::isfinite(v)) return "–";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << (sign && v >= 0 ? "+" : "") << v;
  return s.str();
}
std::string fmt(const json& v, int digits = 2, bool sign = false) {
  return fmt(as_num(v), digits, sign);
}

std::string p_fmt(const json& v) {
  const double p = as_num(v);
  if (!std::isfinite(p)) return "–";
  std::ostringstream s;
  if (p < 0.001)
    s << std::scientific << std::setprecision(1) << p;
  else
    s << std::fixed << std::setprecision(3) << p;
  return s.str();
}

std::string csv_num(double v) {
  if (!std::isfinite(v)) return "";
  std::ostringstream s;
  s << std::setprecision(10) << v;
  return s.str();
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

const std::vector<std::string>& base_columns() {
  static const std::vector<std::string> cols = {
      "participant",     "phase",          "kind",          "iteration", "track_id",
      "position",        "stars",          "seconds_heard", "duration",  "ended",
      "other_iteration", "other_track_id", "preferred"};
  return cols;
}

const std::vector<std::string>& iteration_columns() {
  static const std::vector<std::string> cols = {"participant", "iteration", "reward_accuracy",
                                                "feedback_tracks"};
  return cols;
}

// Mean of each participant's ratings per iteration: participant -> iteration -> mean.
using Means = std::map<std::string, std::map<int, double>>;

struct Paired {
  std::vector<std::string> who;
  std::vector<double> diffs;
};

Paired paired(const Means& means, int before, int after) {
  Paired p;
  for (const auto& [name, by_it] : means) {
    auto b = by_it.find(before), a = by_it.find(after);
    if (b == by_it.end() || a == by_it.end()) continue;
    p.who.push_back(name);
    p.diffs.push_back(a->second - b->second);
  }
  return p;
}

json test_differences(const std::vector<double>& d, const ReportOptions& o, std::uint64_t salt) {
  json r;
  r["n_listeners"] = d.size();
  if (d.empty()) return r;
  r["mean_delta"] = loop::mean(d);
  const auto ci = loop::bootstrap_mean_ci(d, 0.95, o.bootstrap_resamples, o.seed + salt);
  r["ci_lower"] = ci.lower;
  r["ci_upper"] = ci.upper;
  const auto w = loop::wilcoxon_signed_rank(d);
  r["wilcoxon"] = {{"n", w.n},
                   {"zeros", w.zeros},
                   {"w_plus", w.w_plus},
                   {"w_minus", w.w_minus},
                   {"statistic", w.statistic},
                   {"p_value", w.p_value},
                   {"exact", w.exact}};
  const auto perm = loop::paired_permutation_test(d, o.permutation_resamples, o.seed + salt + 1);
  r["permutation"] = {
      {"p_value", perm.p_value}, {"exact", perm.exact}, {"patterns", perm.patterns}};
  json dz = nullptr;
  try {
    dz = loop::cohens_dz(d);
  } catch (const std::invalid_argument&) {
    // Fewer than two listeners or identical deltas: no standardised effect to report.
  }
  r["cohens_dz"] = dz;
  r["rank_biserial"] = loop::rank_biserial(w);
  r["wins"] = std::count_if(d.begin(), d.end(), [](double x) { return x > 0; });
  r["losses"] = std::count_if(d.begin(), d.end(), [](double x) { return x < 0; });
  return r;
}

}  // namespace

void write_events_csv(const std::vector<Event>& events, std::ostream& out) {
  for (const auto& c : base_columns()) out << (&c == &base_columns().front() ? "" : ",") << c;
  for (const auto& f : audio::feature_names()) out << "," << f;
  out << ",sound\n";
  for (const auto& e : events) {
    out << e.participant << "," << e.phase << "," << e.kind << "," << e.iteration << ","
        << e.track_id << "," << e.position << "," << csv_num(e.stars) << ","
        << csv_num(e.seconds_heard) << "," << csv_num(e.duration) << "," << e.ended << ","
        << e.other_iteration << "," << e.other_track_id << ","
        << (e.preferred < 0 ? std::string() : std::to_string(e.preferred));
    for (std::size_t i = 0; i < audio::feature_names().size(); ++i)
      out << "," << (i < e.features.size() ? csv_num(e.features[i]) : std::string());
    out << ",";
    for (std::size_t i = 0; i < e.sound.size(); ++i) out << (i ? ";" : "") << csv_num(e.sound[i]);
    out << "\n";
  }
  if (!out) throw ReportError("cannot write the events CSV");
}

std::vector<Event> read_events_csv(std::istream& in, const std::string& origin) {
  std::string line;
  if (!std::getline(in, line)) throw ReportError(origin + ": empty file (expected a header line)");
  const auto header = split(line);
  const std::size_t nf = audio::feature_names().size();
  const std::size_t nb = base_columns().size();
  // Files written before the sound column have none.
  const bool has_sound = header.size() == nb + nf + 1 && header.back() == "sound";
  if ((header.size() != nb + nf && !has_sound) ||
      !std::equal(base_columns().begin(), base_columns().end(), header.begin()))
    throw ReportError(origin + ":1: not a tuneloop events file (the header differs)");
  std::vector<Event> events;
  int line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    const auto c = split(line);
    if (c.size() != header.size())
      throw ReportError(origin + ":" + std::to_string(line_no) + ": expected " +
                        std::to_string(header.size()) + " fields, got " + std::to_string(c.size()));
    auto d = [&](std::size_t i) -> double {
      if (c[i].empty()) return Event::none;
      try {
        return std::stod(c[i]);
      } catch (const std::exception&) {
        throw ReportError(origin + ":" + std::to_string(line_no) + ": " + header[i] +
                          ": not a number: '" + c[i] + "'");
      }
    };
    Event e;
    e.participant = c[0];
    e.phase = c[1];
    e.kind = c[2];
    e.iteration = static_cast<int>(d(3));
    e.track_id = static_cast<long long>(d(4));
    e.position = static_cast<int>(d(5));
    e.stars = d(6);
    e.seconds_heard = d(7);
    e.duration = d(8);
    e.ended = c[9];
    e.other_iteration = static_cast<int>(d(10));
    e.other_track_id = static_cast<long long>(d(11));
    e.preferred = c[12].empty() ? -1 : static_cast<int>(d(12));
    bool any = false;
    for (std::size_t i = 0; i < nf; ++i) any = any || !c[nb + i].empty();
    if (any)
      for (std::size_t i = 0; i < nf; ++i) e.features.push_back(d(nb + i));
    if (has_sound && !c[nb + nf].empty()) {
      std::string_view rest = c[nb + nf];
      while (!rest.empty()) {
        const auto cut = rest.find(';');
        const std::string item(rest.substr(0, cut));
        try {
          e.sound.push_back(std::stod(item));
        } catch (const std::exception&) {
          throw ReportError(origin + ":" + std::to_string(line_no) + ": sound: not a number: '" + item + "'");
        }
        rest = cut == std::string_view::npos ? std::string_view() : rest.substr(cut + 1);
      }
    }
    events.push_back(std::move(e));
  }
  return events;
}

void write_iterations_csv(const std::vector<IterationRecord>& records, std::ostream& out) {
  for (const auto& c : iteration_columns())
    out << (&c == &iteration_columns().front() ? "" : ",") << c;
  out << "\n";
  for (const auto& r : records)
    out << r.participant << "," << r.iteration << "," << csv_num(r.reward_accuracy) << ","
        << (r.feedback_tracks < 0 ? std::string() : std::to_string(r.feedback_tracks)) << "\n";
  if (!out) throw ReportError("cannot write the iterations CSV");
}

std::vector<IterationRecord> read_iterations_csv(std::istream& in, const std::string& origin) {
  std::string line;
  if (!std::getline(in, line)) throw ReportError(origin + ": empty file (expected a header line)");
  const auto header = split(line);
  // By name, so a column added later does not stop this reader.
  auto column = [&](const std::string& name) -> std::optional<std::size_t> {
    const auto f = std::find(header.begin(), header.end(), name);
    if (f == header.end()) return std::nullopt;
    return static_cast<std::size_t>(f - header.begin());
  };
  const auto who = column("participant"), it = column("iteration"),
             accuracy = column("reward_accuracy"), fed = column("feedback_tracks");
  if (!who || !it || !accuracy)
    throw ReportError(origin +
                      ":1: not a tuneloop iterations file (expected participant, iteration and "
                      "reward_accuracy columns)");
  std::vector<IterationRecord> records;
  int line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    const auto c = split(line);
    const std::string where = origin + ":" + std::to_string(line_no);
    if (c.size() != header.size())
      throw ReportError(where + ": expected " + std::to_string(header.size()) + " fields, got " +
                        std::to_string(c.size()));
    auto d = [&](std::size_t i) -> double {
      if (c[i].empty()) return Event::none;
      try {
        return std::stod(c[i]);
      } catch (const std::exception&) {
        throw ReportError(where + ": " + header[i] + ": not a number: '" + c[i] + "'");
      }
    };
    IterationRecord r;
    r.participant = c[*who];
    const double number = d(*it);
    if (!std::isfinite(number))
      throw ReportError(where + ": iteration: not a number: '" + c[*it] + "'");
    r.iteration = static_cast<int>(number);
    r.reward_accuracy = d(*accuracy);
    if (fed && std::isfinite(d(*fed))) r.feedback_tracks = static_cast<int>(d(*fed));
    records.push_back(std::move(r));
  }
  return records;
}

json summarise(const std::vector<Event>& events, const ReportOptions& o,
               const std::vector<IterationRecord>& records) {
  bool have_eval = false;
  for (const auto& e : events)
    have_eval = have_eval || (e.kind == "rating" && e.phase == "evaluation");
  const std::string source = have_eval ? "evaluation" : "training";

  std::set<int> iterations;
  std::set<std::string> participants;
  std::map<std::string, std::map<int, std::vector<double>>> ratings;
  for (const auto& e : events) {
    participants.insert(e.participant);
    iterations.insert(e.iteration);
    if (e.kind == "rating" && e.phase == source && std::isfinite(e.stars))
      ratings[e.participant][e.iteration].push_back(e.stars);
  }
  Means means;
  for (const auto& [name, by_it] : ratings)
    for (const auto& [it, v] : by_it) means[name][it] = loop::mean(v);

  json s;
  s["study"] = o.study_name;
  s["scale"] = {{"min", o.scale.min}, {"max", o.scale.max}, {"step", o.scale.step}};
  s["rating_source"] = source;
  s["participants"] = participants;
  s["iterations"] = iterations;
  s["events"] = events.size();

  // Per iteration: the unit of analysis is the listener, so the CI is over listener means.
  json per_it = json::array();
  for (int it : iterations) {
    std::vector<double> lm, all;
    for (const auto& [name, by_it] : ratings)
      if (auto f = by_it.find(it); f != by_it.end()) {
        lm.push_back(means[name][it]);
        all.insert(all.end(), f->second.begin(), f->second.end());
      }
    json r = {{"iteration", it}, {"n_listeners", lm.size()}, {"n_ratings", all.size()}};
    if (!lm.empty()) {
      const auto ci = loop::bootstrap_mean_ci(lm, 0.95, o.bootstrap_resamples, o.seed + 17 * it);
      r["mean"] = ci.estimate;
      r["ci_lower"] = ci.lower;
      r["ci_upper"] = ci.upper;
      r["mean_of_all_ratings"] = loop::mean(all);
    } else {
      r["mean"] = r["ci_lower"] = r["ci_upper"] = r["mean_of_all_ratings"] = nullptr;
    }
    if (it > 0) {
      r["vs_base"] = test_differences(paired(means, 0, it).diffs, o, 1000 + it);
      r["vs_previous"] = test_differences(paired(means, it - 1, it).diffs, o, 2000 + it);
    }
    per_it.push_back(r);
  }
  s["per_iteration"] = per_it;

  json per_listener = json::object();
  for (const auto& name : participants) {
    json m = json::object(), d = json::object();
    if (auto f = means.find(name); f != means.end()) {
      for (const auto& [it, v] : f->second) m[std::to_string(it)] = v;
      if (auto b = f->second.find(0); b != f->second.end())
        for (const auto& [it, v] : f->second)
          if (it > 0) d[std::to_string(it)] = v - b->second;
    }
    per_listener[name] = {{"mean_rating", m}, {"delta_vs_base", d}};
  }

  // Listening during training: what the loop learned from.
  json listening = json::array();
  for (int it : iterations) {
    std::vector<double> frac;
    int skips = 0;
    for (const auto& e : events)
      if (e.kind == "listen" && e.iteration == it && std::isfinite(e.seconds_heard) &&
          std::isfinite(e.duration) && e.duration > 0) {
        frac.push_back(std::min(1.0, e.seconds_heard / e.duration));
        skips += e.ended == "skipped";
      }
    if (frac.empty()) continue;
    listening.push_back({{"iteration", it},
                         {"listens", frac.size()},
                         {"mean_fraction_heard", loop::mean(frac)},
                         {"skip_share", static_cast<double>(skips) / frac.size()}});
  }
  s["listening"] = listening;

  // Diversity: each listener's batches on one scale (pooled over all their tracks).
  std::map<std::string, std::map<int, std::map<long long, std::vector<double>>>> tracks;
  for (const auto& e : events)
    if (!e.features.empty() && e.track_id > 0)
      tracks[e.participant][e.iteration][e.track_id] = e.features;
  std::map<int, std::vector<double>> div_abs, div_rel;
  for (const auto& [name, by_it] : tracks) {
    std::vector<std::vector<double>> pool;
    for (const auto& [it, ts] : by_it)
      for (const auto& [id, f] : ts) pool.push_back(f);
    if (pool.size() < 2) continue;
    const auto scales = loop::feature_scales(pool);
    std::map<int, double> d;
    for (const auto& [it, ts] : by_it) {
      if (ts.size() < 2) continue;
      std::vector<std::vector<double>> batch;
      for (const auto& [id, f] : ts) batch.push_back(f);
      d[it] = loop::diversity(batch, scales);
      div_abs[it].push_back(d[it]);
    }
    if (auto b = d.find(0); b != d.end() && b->second > 0)
      for (const auto& [it, v] : d) div_rel[it].push_back(v / b->second);
    per_listener[name]["diversity"] = json::object();
    for (const auto& [it, v] : d) per_listener[name]["diversity"][std::to_string(it)] = v;
  }
  json diversity = json::array();
  for (int it : iterations) {
    json r = {{"iteration", it}};
    r["mean_diversity"] = div_abs.count(it) ? json(loop::mean(div_abs[it])) : json(nullptr);
    r["relative_to_base"] = div_rel.count(it) ? json(loop::mean(div_rel[it])) : json(nullptr);
    r["n_listeners"] = div_abs.count(it) ? div_abs[it].size() : 0;
    diversity.push_back(r);
  }
  s["diversity"] = diversity;

  // Variety as heard: mean pairwise distance of the tracks' sound profiles (dB) and the share
  // of near-duplicate pairs, per listener and iteration, relative to the listener's base batch.
  std::map<std::string, std::map<int, std::map<long long, std::vector<double>>>> sounds;
  for (const auto& e : events)
    if (!e.sound.empty() && e.track_id > 0) sounds[e.participant][e.iteration][e.track_id] = e.sound;
  std::map<int, std::vector<double>> var_abs, var_rel;
  std::map<int, std::pair<int, int>> near;  // iteration -> (near-duplicate pairs, pairs)
  for (const auto& [name, by_it] : sounds) {
    std::map<int, audio::BatchVariety> v;
    for (const auto& [it, ts] : by_it) {
      std::vector<std::vector<double>> batch;
      for (const auto& [id, f] : ts) batch.push_back(f);
      v[it] = audio::batch_variety(batch);
      if (v[it].pairs == 0) continue;
      var_abs[it].push_back(v[it].mean_distance);
      near[it].first += static_cast<int>(std::lround(v[it].near_duplicate_share * v[it].pairs));
      near[it].second += v[it].pairs;
    }
    if (auto b = v.find(0); b != v.end() && b->second.mean_distance > 0)
      for (const auto& [it, x] : v)
        if (x.pairs > 0) var_rel[it].push_back(x.mean_distance / b->second.mean_distance);
    per_listener[name]["variety_db"] = json::object();
    for (const auto& [it, x] : v)
      if (x.pairs > 0) per_listener[name]["variety_db"][std::to_string(it)] = x.mean_distance;
  }
  json variety = json::array();
  for (int it : iterations) {
    json r = {{"iteration", it}};
    r["mean_distance_db"] = var_abs.count(it) ? json(loop::mean(var_abs[it])) : json(nullptr);
    r["relative_to_base"] = var_rel.count(it) ? json(loop::mean(var_rel[it])) : json(nullptr);
    r["near_duplicate_share"] =
        near.count(it) && near[it].second > 0
            ? json(static_cast<double>(near[it].first) / near[it].second)
            : json(nullptr);
    r["n_listeners"] = var_abs.count(it) ? var_abs[it].size() : 0;
    variety.push_back(r);
  }
  s["variety"] = variety;
  s["per_listener"] = per_listener;

  // A/B pairs: each listener's share of pairs won by iteration k over the base.
  std::map<int, std::map<std::string, std::pair<int, int>>> wins;  // it -> listener -> (won, total)
  for (const auto& e : events)
    if (e.kind == "choice" && e.preferred >= 0) {
      auto& w = wins[e.iteration][e.participant];
      w.first += e.preferred;
      w.second += 1;
    }
  json choices = json::array();
  for (const auto& [it, by_listener] : wins) {
    std::vector<double> shares, centred;
    for (const auto& [name, w] : by_listener) {
      shares.push_back(static_cast<double>(w.first) / w.second);
      centred.push_back(shares.back() - 0.5);
    }
    json r = test_differences(centred, o, 3000 + it);
    r["iteration"] = it;
    r["mean_share_preferred"] = loop::mean(shares);
    choices.push_back(r);
  }
  s["ab_choices"] = choices;

  // The reward model as each listener's loop fitted it: its accuracy over listeners, per
  // iteration. Only with the runner's iteration records; the rest of the summary stands alone.
  if (!records.empty()) {
    std::map<int, std::map<std::string, const IterationRecord*>> by_it;
    for (const auto& r : records) by_it[r.iteration][r.participant] = &r;
    json reward = json::array();
    for (const auto& [it, by_listener] : by_it) {
      std::vector<double> accuracy, fed;
      for (const auto& [name, record] : by_listener) {
        if (std::isfinite(record->reward_accuracy)) accuracy.push_back(record->reward_accuracy);
        if (record->feedback_tracks >= 0) fed.push_back(record->feedback_tracks);
      }
      json r = {
          {"iteration", it}, {"n_listeners", accuracy.size()}, {"n_recorded", by_listener.size()}};
      if (accuracy.empty()) {
        r["mean_accuracy"] = r["min_accuracy"] = r["max_accuracy"] = nullptr;
      } else {
        r["mean_accuracy"] = loop::mean(accuracy);
        r["min_accuracy"] = *std::min_element(accuracy.begin(), accuracy.end());
        r["max_accuracy"] = *std::max_element(accuracy.begin(), accuracy.end());
      }
      r["mean_feedback_tracks"] = fed.empty() ? json(nullptr) : json(loop::mean(fed));
      reward.push_back(r);
    }
    s["reward_model"] = reward;
  }

  s["paper"] = {{"iteration_1_vs_0", kPaperIteration1},
                {"iteration_2_vs_1", kPaperIteration2},
                {"iteration_2_vs_0", kPaperIteration1 + kPaperIteration2},
                {"note", "arXiv 2506.04852: very few listeners, no significance test"}};

  // The study's target, checked rather than assumed.
  json target = {{"iteration_1_delta", kTargetIteration1},
                 {"iteration_2_delta", kTargetIteration2},
                 {"p_below", kTargetP},
                 {"diversity_at_least", kTargetDiversity}};
  auto met_at = [&](int it, double need) -> json {
    for (const auto& r : per_it)
      if (r["iteration"] == it && r.contains("vs_base") && r["vs_base"].contains("mean_delta")) {
        const double d = r["vs_base"]["mean_delta"].get<double>();
        const double p = r["vs_base"]["wilcoxon"]["p_value"].get<double>();
        return {{"delta", d},
                {"p_value", p},
                {"met", d >= need && p < kTargetP},
                {"short_by", std::max(0.0, need - d)}};
      }
    return nullptr;
  };
  target["iteration_1"] = met_at(1, kTargetIteration1);
  target["iteration_2"] = met_at(2, kTargetIteration2);
  json min_rel = nullptr;
  for (const auto& r : diversity)
    if (r["iteration"].get<int>() > 0 && r["relative_to_base"].is_number())
      min_rel = min_rel.is_null()
                    ? r["relative_to_base"]
                    : json(std::min(min_rel.get<double>(), r["relative_to_base"].get<double>()));
  target["diversity"] = {{"lowest_relative", min_rel},
                         {"met", min_rel.is_number() && min_rel.get<double>() >= kTargetDiversity}};
  s["target"] = target;
  return s;
}

std::string render_markdown(const json& s) {
  std::ostringstream md;
  md << "# Pilot study: " << s.value("study", "study") << "\n\n";
  md << s["participants"].size() << " participants, iterations " << s["iterations"].front() << "–"
     << s["iterations"].back() << ", " << s["events"] << " events. Ratings from the **"
     << s["rating_source"].get<std::string>() << "** phase on a " << s["scale"]["min"] << "–"
     << s["scale"]["max"] << " scale (step " << s["scale"]["step"]
     << "). Means are over listeners (each listener's mean rating of an iteration's tracks); "
        "CIs are 95 % percentile bootstrap over listeners; tests are paired across listeners, "
        "two-sided.\n\n";

  md << "## Mean rating by iteration\n\n";
  md << "| iteration | listeners | ratings | mean | 95 % CI | Δ vs 0 | 95 % CI of Δ | Wilcoxon p | "
        "permutation p | d_z | "
        "rank-biserial | wins/losses | paper Δ vs 0 |\n";
  md << "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  const auto& paper = s["paper"];
  for (const auto& r : s["per_iteration"]) {
    const int it = r["iteration"].get<int>();
    md << "| " << it << " | " << r["n_listeners"] << " | " << r["n_ratings"] << " | "
       << fmt(r["mean"]) << " | [" << fmt(r["ci_lower"]) << ", " << fmt(r["ci_upper"]) << "] | ";
    if (it > 0 && r["vs_base"].contains("mean_delta")) {
      const auto& v = r["vs_base"];
      md << fmt(v["mean_delta"], 2, true) << " | [" << fmt(v["ci_lower"], 2, true) << ", "
         << fmt(v["ci_upper"], 2, true) << "] | " << p_fmt(v["wilcoxon"]["p_value"]) << " | "
         << p_fmt(v["permutation"]["p_value"]) << " | " << fmt(v["cohens_dz"]) << " | "
         << fmt(v["rank_biserial"]) << " | " << v["wins"] << "/" << v["losses"] << " | ";
    } else {
      md << "– | – | – | – | – | – | – | ";
    }
    md << (it == 1   ? fmt(paper["iteration_1_vs_0"], 2, true)
           : it == 2 ? fmt(paper["iteration_2_vs_0"], 2, true)
                     : "–")
       << " |\n";
  }
  md << "\nThe paper (" << paper["note"].get<std::string>()
     << ") reported +0.20 after the first cycle and a further +0.39 "
        "after the second (+0.59 in all).\n\n";

  md << "### Iteration vs the one before\n\n| iteration | Δ vs previous | Wilcoxon p | permutation "
        "p | paper |\n|---|---|---|---|---|\n";
  for (const auto& r : s["per_iteration"]) {
    const int it = r["iteration"].get<int>();
    if (it == 0 || !r["vs_previous"].contains("mean_delta")) continue;
    const auto& v = r["vs_previous"];
    md << "| " << it << " vs " << it - 1 << " | " << fmt(v["mean_delta"], 2, true) << " | "
       << p_fmt(v["wilcoxon"]["p_value"]) << " | " << p_fmt(v["permutation"]["p_value"]) << " | "
       << (it == 1   ? "+0.20"
           : it == 2 ? "+0.39"
                     : "–")
       << " |\n";
  }

  md << "\n## Per listener\n\n| listener |";
  for (const auto& it : s["iterations"]) md << " mean " << it << " |";
  for (const auto& it : s["iterations"])
    if (it.get<int>() > 0) md << " Δ" << it << " |";
  md << "\n|---|";
  for (const auto& it : s["iterations"]) md << "---|" << (it.get<int>() > 0 ? "---|" : "");
  md << "\n";
  for (const auto& [name, l] : s["per_listener"].items()) {
    md << "| " << name << " |";
    for (const auto& it : s["iterations"]) {
      const std::string k = std::to_string(it.get<int>());
      md << " " << (l["mean_rating"].contains(k) ? fmt(l["mean_rating"][k]) : "–") << " |";
    }
    for (const auto& it : s["iterations"]) {
      const std::string k = std::to_string(it.get<int>());
      if (it.get<int>() > 0)
        md << " " << (l["delta_vs_base"].contains(k) ? fmt(l["delta_vs_base"][k], 2, true) : "–")
           << " |";
    }
    md << "\n";
  }

  if (s.contains("variety")) {
    md << "\n## Variety as heard\n\nMean pairwise distance between an iteration's tracks' "
          "sound profiles (log-mel statistics on a fixed 16-kHz band, level-invariant; dB), "
          "relative to each listener's iteration 0, and the share of near-duplicate pairs "
          "(closer than "
       << fmt(json(audio::kNearDuplicateDb), 1) << " dB).\n\n"
       << "| iteration | listeners | mean distance (dB) | relative to iteration 0 | near-duplicate pairs |\n"
          "|---|---|---|---|---|\n";
    for (const auto& r : s["variety"])
      md << "| " << r["iteration"] << " | " << r["n_listeners"] << " | "
         << fmt(r["mean_distance_db"]) << " | " << fmt(r["relative_to_base"]) << " | "
         << fmt(r["near_duplicate_share"]) << " |\n";
  }

  md << "\n## Within-batch diversity\n\nMean pairwise distance between an iteration's tracks in "
        "audio-feature space "
        "(each listener's tracks on one pooled scale), relative to iteration 0.\n\n"
        "| iteration | listeners | mean diversity | relative to iteration 0 |\n|---|---|---|---|\n";
  for (const auto& r : s["diversity"])
    md << "| " << r["iteration"] << " | " << r["n_listeners"] << " | " << fmt(r["mean_diversity"])
       << " | " << fmt(r["relative_to_base"]) << " |\n";

  if (!s["listening"].empty()) {
    md << "\n## Listening during training\n\n| iteration | listens | mean fraction heard | skip "
          "share |\n|---|---|---|---|\n";
    for (const auto& r : s["listening"])
      md << "| " << r["iteration"] << " | " << r["listens"] << " | "
         << fmt(r["mean_fraction_heard"]) << " | " << fmt(r["skip_share"]) << " |\n";
  }
  if (s.contains("reward_model")) {
    md << "\n## Reward model\n\nLeave-one-out pairwise accuracy of each listener's reward model "
          "over their rated tracks, as their daemon fitted it for the iteration: the share of "
          "pairs of differently rated tracks it orders as the listener did (0.5 = chance; "
          "slightly optimistic, as its prior is chosen on the same ratings). Iteration 0, the "
          "base model, has none. Feedback tracks: how many tracks the listener had rated or "
          "heard by then.\n\n"
          "| iteration | listeners | mean accuracy | min | max | feedback tracks |\n"
          "|---|---|---|---|---|---|\n";
    for (const auto& r : s["reward_model"])
      md << "| " << r["iteration"] << " | " << r["n_listeners"] << " | " << fmt(r["mean_accuracy"])
         << " | " << fmt(r["min_accuracy"]) << " | " << fmt(r["max_accuracy"]) << " | "
         << fmt(r["mean_feedback_tracks"], 1) << " |\n";
  }
  if (!s["ab_choices"].empty()) {
    md << "\n## A/B pairs (iteration k vs iteration 0)\n\n| iteration | listeners | share "
          "preferring k | Wilcoxon p "
          "(share vs 0.5) | permutation p |\n|---|---|---|---|---|\n";
    for (const auto& r : s["ab_choices"])
      md << "| " << r["iteration"] << " | " << r["n_listeners"] << " | "
         << fmt(r["mean_share_preferred"]) << " | " << p_fmt(r["wilcoxon"]["p_value"]) << " | "
         << p_fmt(r["permutation"]["p_value"]) << " |\n";
  }

  const auto& t = s["target"];
  md << "\n## Against the target\n\nTarget: Δ ≥ +" << fmt(t["iteration_1_delta"], 1)
     << " after iteration 1 and ≥ +" << fmt(t["iteration_2_delta"], 1)
     << " after iteration 2 (Wilcoxon p < " << t["p_below"] << "), diversity ≥ "
     << fmt(t["diversity_at_least"], 1) << " of the base model's.\n\n";
  for (const char* k : {"iteration_1", "iteration_2"}) {
    if (t[k].is_null()) {
      md << "- " << k << ": no data\n";
      continue;
    }
    md << "- " << k << ": Δ " << fmt(t[k]["delta"], 2, true) << ", p " << p_fmt(t[k]["p_value"])
       << " — "
       << (t[k]["met"].get<bool>() ? "met" : "not met (short by " + fmt(t[k]["short_by"]) + ")")
       << "\n";
  }
  md << "- diversity: lowest relative " << fmt(t["diversity"]["lowest_relative"]) << " — "
     << (t["diversity"]["met"].get<bool>() ? "met" : "not met") << "\n";

  md << "\n## Plots\n\n![rating by iteration](rating_by_iteration.png)\n\n![rating by "
        "listener](rating_by_listener.png)\n\n"
        "![diversity](diversity.png)\n";
  return md.str();
}

void write_plot_data(const json& s, const fs::path& dir) {
  fs::create_directories(dir);
  auto open = [&](const std::string& name) {
    std::ofstream f(dir / name, std::ios::trunc);
    if (!f) throw ReportError("cannot write " + (dir / name).string());
    return f;
  };
  double base = std::nan("");
  for (const auto& r : s["per_iteration"])
    if (r["iteration"] == 0) base = as_num(r["mean"]);
  {
    auto f = open("rating_by_iteration.dat");
    f << "# iteration mean ci_lower ci_upper paper\n";
    for (const auto& r : s["per_iteration"]) {
      const int it = r["iteration"].get<int>();
      const double paper = it == 0   ? base
                           : it == 1 ? base + kPaperIteration1
                           : it == 2 ? base + kPaperIteration1 + kPaperIteration2
                                     : std::nan("");
      f << it << " " << as_num(r["mean"]) << " " << as_num(r["ci_lower"]) << " "
        << as_num(r["ci_upper"]) << " " << paper << "\n";
    }
  }
  {
    auto f = open("listeners.dat");
    f << "iteration";
    for (const auto& [name, l] : s["per_listener"].items()) f << " " << name;
    f << "\n";
    for (const auto& it : s["iterations"]) {
      f << it;
      const std::string k = std::to_string(it.get<int>());
      for (const auto& [name, l] : s["per_listener"].items())
        f << " " << (l["mean_rating"].contains(k) ? as_num(l["mean_rating"][k]) : std::nan(""));
      f << "\n";
    }
  }
  {
    auto f = open("diversity.dat");
    f << "# iteration relative_to_base mean_diversity\n";
    for (const auto& r : s["diversity"])
      f << r["iteration"] << " " << as_num(r["relative_to_base"]) << " "
        << as_num(r["mean_diversity"]) << "\n";
  }
  const std::size_t listeners = s["per_listener"].size();
  auto f = open("plots.gp");
  f << "# Written by tuneloop pilot; run `gnuplot plots.gp` in this folder.\n"
       "set terminal pngcairo size 900,540 font 'sans,10' noenhanced\n"
       "set datafile missing 'NaN'\n"
       "set grid\nset xtics 1\nset xlabel 'iteration'\n"
    << "set yrange [" << s["scale"]["min"] << ":" << s["scale"]["max"] << "]\n"
    << "set output 'rating_by_iteration.png'\n"
       "set title 'Mean rating by iteration (95% bootstrap CI over listeners)'\n"
       "set ylabel 'rating'\nset key top left\n"
       "plot 'rating_by_iteration.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'this "
       "study', \\\n"
       "     '' using 1:5 with linespoints dt 2 pt 6 title 'paper (+0.20, then +0.39)'\n"
       "set output 'rating_by_listener.png'\n"
       "set title 'Mean rating by iteration, one line per listener'\n"
       "set key outside right autotitle columnhead\n"
    << "plot for [c=2:" << listeners + 1 << "] 'listeners.dat' using 1:c with linespoints lw 1.5\n"
    << "set output 'diversity.png'\n"
       "set title 'Within-batch diversity relative to iteration 0'\n"
       "set ylabel 'diversity / diversity of iteration 0'\nset yrange [0:*]\nset key inside top "
       "right noautotitle\n"
       "plot 'diversity.dat' using 1:2 with linespoints lw 2 pt 7 title 'this study', \\\n"
       "     0.5 with lines dt 2 title 'target: at least 0.5'\n";
  if (!f) throw ReportError("cannot write " + (dir / "plots.gp").string());
}

std::vector<fs::path> render_plots(const fs::path& dir, const std::string& gnuplot,
                                   std::chrono::milliseconds timeout) {
  const fs::path log = dir / "gnuplot.log";
  const pid_t pid = ::fork();
  if (pid < 0) throw ReportError("cannot start " + gnuplot + ": fork failed");
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    ::execlp(gnuplot.c_str(), gnuplot.c_str(), "plots.gp", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  for (std::chrono::milliseconds waited{0};; waited += std::chrono::milliseconds(20)) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (waited >= timeout) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      std::ostringstream limit;
      limit << static_cast<double>(timeout.count()) / 1000.0;
      throw ReportError("'" + gnuplot + " plots.gp' in " + dir.string() + " did not finish within " +
                        limit.str() + " s; killed");
    }
    ::usleep(20000);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    throw ReportError(code == 127 ? "cannot run '" + gnuplot +
                                        "' (is gnuplot installed? Debian: gnuplot-nox)"
                                  : "'" + gnuplot + " plots.gp' in " + dir.string() +
                                        " failed (exit " + std::to_string(code) + "): " + text);
  }
  std::vector<fs::path> out;
  for (const char* name : {"rating_by_iteration.png", "rating_by_listener.png", "diversity.png"})
    if (fs::exists(dir / name)) out.push_back(dir / name);
  return out;
}

json write_report(const std::vector<Event>& events, const ReportOptions& options,
                  const fs::path& dir, bool plots, const std::vector<IterationRecord>& iterations) {
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "events.csv", std::ios::trunc);
    if (!f) throw ReportError("cannot write " + (dir / "events.csv").string());
    write_events_csv(events, f);
  }
  if (!iterations.empty()) {
    std::ofstream f(dir / "iterations.csv", std::ios::trunc);
    if (!f) throw ReportError("cannot write " + (dir / "iterations.csv").string());
    write_iterations_csv(iterations, f);
  } else {
    // One left by an earlier report would describe other events.
    std::error_code ec;
    fs::remove(dir / "iterations.csv", ec);
  }
  const json s = summarise(events, options, iterations);
  {
    std::ofstream f(dir / "summary.json", std::ios::trunc);
    f << s.dump(2) << "\n";
    if (!f) throw ReportError("cannot write " + (dir / "summary.json").string());
  }
  {
    std::ofstream f(dir / "report.md", std::ios::trunc);
    f << render_markdown(s);
    if (!f) throw ReportError("cannot write " + (dir / "report.md").string());
  }
  write_plot_data(s, dir);
  if (plots) render_plots(dir);
  return s;
}

}  // namespace tuneloop::study
