#include "pilot/runner.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "audio/audio.hpp"
#include "audio/features.hpp"
#include "audio/sound_profile.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace tuneloop::pilot {

using study::blinded_order;
using study::Design;
using study::Event;
using study::IterationRecord;
using study::ListenOutcome;
using study::Participant;
using study::PilotStudy;
using study::ReportOptions;
using study::SimulatedListener;
using study::StudyError;
using study::write_report;

namespace {

using Clock = std::chrono::steady_clock;

void sleep_s(double s) {
  std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  // splitmix64 of the pair, so neighbouring seeds give unrelated streams.
  std::uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::string one_line(const json& j, std::size_t max = 160) {
  std::string s = j.dump();
  return s.size() > max ? s.substr(0, max) + "…" : s;
}

}  // namespace

const std::vector<std::string>& required_methods() {
  static const std::vector<std::string> m = {"tracks.list", "listen.report", "rate", "iterate",
                                             "iterations.list"};
  return m;
}

void require_methods(const std::set<std::string>& available, const std::vector<std::string>& needed,
                     const std::string& where) {
  std::string missing;
  for (const auto& m : needed)
    if (!available.count(m)) missing += (missing.empty() ? "'" : ", '") + m + "'";
  if (missing.empty()) return;
  throw PilotError(
      where + " has no method " + missing +
      ", which `tuneloop pilot run` needs to drive the loop; this tuneloopd was built without the "
      "loop's IPC methods (iterate, iterations.list, job.status)");
}

std::string participant_config(const PilotStudy& study, const Participant& p, std::size_t index) {
  YAML::Node c;
  c["daemon"]["listener"] = p.name;
  c["http"]["enabled"] = false;  // many daemons at once must not fight over one port
  c["audio"]["output"] = "none";
  c["generation"]["tracks_per_iteration"] = study.tracks_per_iteration;
  // The runner decides when an iteration starts, as a researcher would.
  c["schedule"]["interval_minutes"] = 0;
  c["schedule"]["after_new_ratings"] = 0;
  c["mpd"]["port"] = 0;  // scratch daemons leave the MPD port to the listener's own
  c["training"]["seed"] = static_cast<long long>((study.seed * 1000 + index) % 2147483647);
  if (!study.daemon_config_yaml.empty()) {
    YAML::Node extra;
    try {
      extra = YAML::Load(study.daemon_config_yaml);
    } catch (const YAML::Exception& e) {
      throw StudyError(study.file.string() + ": daemon_config: " + e.what());
    }
    if (!extra.IsMap())
      throw StudyError(study.file.string() + ": daemon_config: expected a mapping of sections");
    for (const auto& section : extra) {
      const std::string name = section.first.Scalar();
      if (!section.second.IsMap())
        throw StudyError(study.file.string() + ": daemon_config." + name +
                         ": expected a mapping of keys");
      for (const auto& kv : section.second) c[name][kv.first.Scalar()] = kv.second;
    }
  }
  YAML::Emitter e;
  e << c;
  return std::string("# Written by tuneloop pilot run for participant ") + p.name + "\n" +
         e.c_str() + "\n";
}

// ---------------------------------------------------------------- start_daemon

client::DaemonProcess start_daemon(const fs::path& exe, const fs::path& dir, const fs::path& config,
                                   const fs::path& socket, double wait_s) {
  fs::create_directories(dir / "data");
  std::error_code ec;
  fs::remove(socket, ec);
  client::DaemonProcess d({.exe = exe,
                           .args = {"--config", config.string(), "--data-dir",
                                    (dir / "data").string(), "--socket", socket.string()},
                           .socket = socket,
                           .log = dir / "tuneloopd.log",
                           .wait_s = wait_s});
  try {
    d.start();
  } catch (const client::LaunchError& e) {
    if (e.exit_code() == 127)
      throw PilotError("cannot run " + exe.string() + " (pass --daemon PATH_TO_TUNELOOPD)");
    throw PilotError(e.what());
  }
  return d;
}

fs::path default_daemon_path() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& p : {self.parent_path() / "tuneloopd",
                              self.parent_path().parent_path() / "daemon" / "tuneloopd"})
      if (fs::exists(p)) return p;
  }
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty() && fs::exists(fs::path(dir) / "tuneloopd"))
        return fs::path(dir) / "tuneloopd";
  }
  return "tuneloopd";
}

// ---------------------------------------------------------------- one participant

namespace {

struct TrackInfo {
  long long id = 0;
  int iteration = 0;
  std::string path;
  double duration = 0;
  audio::AudioFeatures features;
  std::vector<double> sound;
};

class ParticipantRun {
 public:
  ParticipantRun(const PilotStudy& study, const Participant& p, std::size_t index,
                 client::Client& client, std::set<std::string> methods,
                 std::function<void(const std::string&)> progress, fs::path data_dir)
      : data_dir_(std::move(data_dir)),
        study_(study),
        p_(p),
        index_(index),
        client_(client),
        methods_(std::move(methods)),
        progress_(std::move(progress)),
        listener_(p, study.scale, study.feature_scale, mix(study.seed, index)),
        rng_(mix(study.seed + 1, index)) {}

  std::vector<Event> run() {
    for (int k = 0; k <= study_.iterations; ++k) {
      if (k > 0) listener_.drift();
      const json it = ensure_iteration(k);
      record_iteration(k, it);
      const auto tracks = tracks_of(it, k);
      if (tracks.empty())
        throw PilotError(p_.name + ": iteration " + std::to_string(k) + " has no tracks");
      train_round(k, tracks);
    }
    evaluate();
    return std::move(events_);
  }

  /// One per iteration, in order, once run() has returned.
  std::vector<IterationRecord> take_records() { return std::move(records_); }

 private:
  void say(const std::string& s) const {
    if (progress_) progress_("[" + p_.name + "] " + s);
  }

  json iterations() {
    json list = client_.call("iterations.list");
    if (list.is_object() && list.contains("iterations")) list = list["iterations"];
    if (!list.is_array())
      throw PilotError(p_.name + ": iterations.list answered " + one_line(list) + ", not a list");
    return list;
  }

  static std::optional<json> find_number(const json& list, int number) {
    for (const auto& row : list)
      if (row.value("number", -1) == number && row.value("status", "") != "deleted") return row;
    return std::nullopt;
  }

  // Makes iteration `number` exist and be ready: starts it with `iterate` unless the
  // daemon already has it (the base iteration may be made at start-up), then waits.
  json ensure_iteration(int number) {
    const auto began = Clock::now();
    if (!find_number(iterations(), number)) {
      json params = json::object();
      if (iterate_takes_force()) params["force"] = true;
      say("iteration " + std::to_string(number) + ": iterate");
      last_job_ = client_.call("iterate", params);
      if (last_job_.is_object() && last_job_.value("started", true) == false) {
        // Not started, e.g. because the daemon began the base iteration itself a moment
        // ago; anything else (too little feedback, no model) will not fix itself.
        const auto until = Clock::now() + std::chrono::seconds(30);
        while (!find_number(iterations(), number) && Clock::now() < until) sleep_s(0.2);
        if (!find_number(iterations(), number))
          throw PilotError(p_.name + ": the daemon did not start iteration " +
                           std::to_string(number) + ": " + last_job_.value("reason", "no reason given"));
      }
    }
    const auto deadline = Clock::now() + std::chrono::duration<double>(study_.iteration_timeout_s);
    std::string last_progress;
    auto last_said = Clock::now() - std::chrono::seconds(60);
    double wait = 0.1;
    while (true) {
      const auto row = find_number(iterations(), number);
      const std::string status = row ? row->value("status", "") : "";
      if (row && status == "ready") {
        std::ostringstream t;
        t.precision(1);
        t << std::fixed << std::chrono::duration<double>(Clock::now() - began).count();
        say("iteration " + std::to_string(number) + " ready after " + t.str() + " s");
        return *row;
      }
      if (row && status == "failed")
        throw PilotError(p_.name + ": iteration " + std::to_string(number) +
                         " failed: " + one_line(*row, 600));
      if (Clock::now() > deadline)
        throw PilotError(p_.name + ": iteration " + std::to_string(number) + " not ready after " +
                         std::to_string(static_cast<int>(study_.iteration_timeout_s)) +
                         " s (iteration_timeout_s); last status '" + status + "'");
      const std::string prog = job_progress();
      // At most every 15 s, so a long fine-tune gives a few lines, not one per step.
      if (!prog.empty() && prog != last_progress && Clock::now() - last_said > std::chrono::seconds(15)) {
        say("iteration " + std::to_string(number) + ": " + prog);
        last_progress = prog;
        last_said = Clock::now();
      }
      // Quick first looks for a fast job, then once a second for a fine-tune.
      sleep_s(wait);
      wait = std::min(1.0, wait * 2);
    }
  }

  // What the daemon measured while making the iteration; a daemon without a reward model
  // (or an older one) leaves fields out, and iteration 0 has no reward model.
  void record_iteration(int k, const json& row) {
    IterationRecord r;
    r.participant = p_.name;
    r.iteration = k;
    if (row.contains("metrics") && row["metrics"].is_object()) {
      const json& m = row["metrics"];
      if (m.contains("reward_accuracy") && m["reward_accuracy"].is_number())
        r.reward_accuracy = m["reward_accuracy"].get<double>();
      if (m.contains("feedback_tracks") && m["feedback_tracks"].is_number())
        r.feedback_tracks = m["feedback_tracks"].get<int>();
    }
    records_.push_back(r);
  }

  bool iterate_takes_force() {
    try {
      for (const auto& m : client_.call("methods"))
        if (m.value("name", "") == "iterate")
          for (const auto& p : m.value("params", json::array()))
            if (p.value("name", "") == "force") return true;
    } catch (const std::exception&) {
    }
    return false;
  }

  std::string job_progress() {
    if (!methods_.count("job.status")) return {};
    try {
      json j = client_.call("job.status");
      // tuneloopd answers {job, loop}; the job's own fields say what it is doing.
      if (j.is_object() && j.contains("job") && j["job"].is_object()) j = j["job"];
      if (!j.is_object()) return one_line(j);
      std::ostringstream s;
      for (const char* k : {"kind", "state", "phase", "step", "steps", "total_steps", "progress",
                            "loss", "eta_s", "message"})
        if (j.contains(k) && !j[k].is_null() && !(j[k].is_string() && j[k].get<std::string>().empty()))
          s << k << "=" << (j[k].is_string() ? j[k].get<std::string>() : j[k].dump()) << " ";
      return s.str().empty() ? one_line(j) : s.str();
    } catch (const std::exception&) {
      return {};
    }
  }

  std::vector<TrackInfo> tracks_of(const json& iteration, int number) {
    json list = client_.call("tracks.list", {{"iteration", iteration.at("id")}});
    std::vector<TrackInfo> out;
    for (const auto& t : list) {
      TrackInfo ti;
      ti.id = t.at("id").get<long long>();
      ti.iteration = number;
      ti.path = t.at("path").get<std::string>();
      if (fs::path(ti.path).is_relative()) ti.path = (data_dir_ / ti.path).string();
      auto cached = features_.find(ti.path);
      if (cached == features_.end()) {
        // Measured from the audio file itself: the listener hears what the model made, on
        // a fixed band whatever the model's rate.
        const audio::Audio a = audio::read_audio(ti.path, study::kListenerRate);
        cached = features_.emplace(ti.path, std::make_pair(audio::measure(a), a.seconds())).first;
        sounds_[ti.path] = audio::sound_profile(a);
      }
      ti.features = cached->second.first;
      ti.sound = sounds_[ti.path];
      ti.duration =
          t.value("duration", 0.0) > 0 ? t["duration"].get<double>() : cached->second.second;
      out.push_back(ti);
      all_tracks_[ti.id] = ti;
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
  }

  Event base_event(const TrackInfo& t, const std::string& phase, const std::string& kind,
                   int position) const {
    Event e;
    e.participant = p_.name;
    e.phase = phase;
    e.kind = kind;
    e.iteration = t.iteration;
    e.track_id = t.id;
    e.position = position;
    e.features = audio::as_vector(t.features);
    e.sound = t.sound;
    return e;
  }

  void train_round(int k, std::vector<TrackInfo> tracks) {
    std::shuffle(tracks.begin(), tracks.end(), rng_);
    double sum = 0;
    int skips = 0;
    for (const auto& t : tracks) {
      const ListenOutcome l = listener_.listen(t.features, t.duration);
      client_.call("listen.report", {{"track_id", t.id},
                                     {"seconds_heard", l.seconds_heard},
                                     {"duration", t.duration},
                                     {"ended", l.skipped ? "skipped" : "completed"}});
      Event le = base_event(t, "training", "listen", position_++);
      le.seconds_heard = l.seconds_heard;
      le.duration = t.duration;
      le.ended = l.skipped ? "skipped" : "completed";
      events_.push_back(le);
      skips += l.skipped;

      const double stars = listener_.rate(t.features);
      client_.call("rate", {{"track_id", t.id}, {"stars", stars}});
      Event re = base_event(t, "training", "rating", position_++);
      re.stars = stars;
      events_.push_back(re);
      sum += stars;
    }
    std::ostringstream s;
    s << "iteration " << k << ": rated " << tracks.size() << " tracks, mean " << sum / tracks.size()
      << ", " << skips << " skipped";
    say(s.str());
  }

  void evaluate() {
    std::vector<std::pair<int, long long>> pool;
    for (const auto& [id, t] : all_tracks_) pool.emplace_back(t.iteration, id);
    const std::uint64_t seed = mix(study_.seed + 2, index_);
    int position = 0;
    if (study_.design == Design::within_subject) {
      // Blinded: the order mixes iterations and the listener never sees which is which.
      for (const auto& [it, id] : blinded_order(pool, study_.eval_tracks_per_iteration, seed)) {
        const TrackInfo& t = all_tracks_.at(id);
        Event e = base_event(t, "evaluation", "rating", position++);
        e.stars = listener_.rate(t.features);
        events_.push_back(e);
      }
      say("evaluation: rated " + std::to_string(position) + " tracks in a blinded order");
      return;
    }
    // A/B pairs: each chosen track of iteration k against a base track, sides at random.
    const auto order = blinded_order(pool, study_.eval_tracks_per_iteration, seed);
    std::vector<long long> base;
    for (const auto& [it, id] : order)
      if (it == 0) base.push_back(id);
    if (base.empty()) throw PilotError(p_.name + ": no base-iteration tracks to pair with");
    std::size_t next_base = 0;
    for (const auto& [it, id] : order) {
      if (it == 0) continue;
      const TrackInfo& t = all_tracks_.at(id);
      const TrackInfo& b = all_tracks_.at(base[next_base++ % base.size()]);
      const bool k_first = std::uniform_int_distribution<int>(0, 1)(rng_) == 1;
      const bool first_wins = k_first ? listener_.prefer(t.features, b.features)
                                      : listener_.prefer(b.features, t.features);
      Event e = base_event(t, "evaluation", "choice", position++);
      e.other_iteration = b.iteration;
      e.other_track_id = b.id;
      e.preferred = (first_wins == k_first) ? 1 : 0;
      events_.push_back(e);
      // The base track's features, so diversity sees the base batch too.
      Event eb = base_event(b, "evaluation", "shown", position - 1);
      events_.push_back(eb);
    }
    say("evaluation: chose in " + std::to_string(position) + " A/B pairs");
  }

  fs::path data_dir_;
  const PilotStudy& study_;
  const Participant& p_;
  std::size_t index_;
  client::Client& client_;
  std::set<std::string> methods_;
  std::function<void(const std::string&)> progress_;
  SimulatedListener listener_;
  std::mt19937_64 rng_;
  json last_job_;
  int position_ = 0;
  std::map<std::string, std::pair<audio::AudioFeatures, double>> features_;
  std::map<std::string, std::vector<double>> sounds_;
  std::map<long long, TrackInfo> all_tracks_;
  std::vector<Event> events_;
  std::vector<IterationRecord> records_;
};

std::set<std::string> method_names(client::Client& c) {
  std::set<std::string> names;
  for (const auto& m : c.call("methods")) names.insert(m.value("name", ""));
  return names;
}

}  // namespace

StudyResult run_study(const PilotStudy& study, const RunOptions& options) {
  std::mutex say_mutex;
  std::function<void(const std::string&)> say = [&](const std::string& s) {
    std::lock_guard<std::mutex> lock(say_mutex);
    if (options.progress) options.progress(s);
  };
  StudyResult result;
  result.output = options.output.empty() ? study.output : options.output;
  fs::create_directories(result.output);
  const fs::path exe = options.daemon.empty() ? default_daemon_path() : options.daemon;

  // Unix socket paths are limited to ~107 bytes, so sockets live in a short /tmp folder.
  std::string tmpl = (fs::temp_directory_path() / "tuneloop-pilot-XXXXXX").string();
  if (!::mkdtemp(tmpl.data()))
    throw PilotError("cannot create a socket folder under " + fs::temp_directory_path().string());
  const fs::path sockets = tmpl;
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{sockets};

  ReportOptions ro;
  ro.study_name = study.name;
  ro.scale = study.scale;
  ro.seed = study.seed;

  // One participant from daemon start to stop; returns their events and iterations.
  auto run_one = [&](std::size_t i) {
    const Participant& p = study.participants[i];
    const fs::path dir = result.output / "participants" / p.name;
    fs::remove_all(dir);  // a rerun starts from a fresh daemon and database
    fs::create_directories(dir);
    const fs::path config = dir / "tuneloopd.yaml";
    {
      std::ofstream f(config, std::ios::trunc);
      f << participant_config(study, p, i);
      if (!f) throw PilotError("cannot write " + config.string());
    }
    say("[" + p.name + "] starting " + exe.string() + " on " + dir.string());
    auto d = start_daemon(exe, dir, config, sockets / (std::to_string(i) + ".sock"));
    auto client = d.connect();
    // A fine-tune may hold the daemon busy briefly; replies still come, only later.
    client.set_timeout_ms(120000);
    const auto methods = method_names(client);
    require_methods(methods, required_methods(), "tuneloopd (" + exe.string() + ")");
    ParticipantRun run(study, p, i, client, methods, say, dir / "data");
    auto events = run.run();
    d.stop();
    return std::make_pair(std::move(events), run.take_records());
  };

  std::vector<std::size_t> simulated;
  for (std::size_t i = 0; i < study.participants.size(); ++i) {
    if (study.participants[i].kind == Participant::Kind::human)
      say("[" + study.participants[i].name +
          "] human participant: not simulated (see `tuneloop study session`)");
    else
      simulated.push_back(i);
  }
  const int parallel = options.parallel > 0 ? options.parallel : study.parallel;
  std::vector<std::vector<Event>> per_participant(study.participants.size());
  std::vector<std::vector<IterationRecord>> records(study.participants.size());
  std::mutex mutex;  // guards per_participant, records, the report files and the first error
  std::exception_ptr error;
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    while (true) {
      const std::size_t k = next++;
      if (k >= simulated.size()) return;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (error) return;
      }
      try {
        auto [events, iterations] = run_one(simulated[k]);
        std::lock_guard<std::mutex> lock(mutex);
        per_participant[simulated[k]] = std::move(events);
        records[simulated[k]] = std::move(iterations);
        // Written after every participant, so an interrupted study keeps what it recorded.
        std::vector<Event> so_far;
        for (const auto& e : per_participant) so_far.insert(so_far.end(), e.begin(), e.end());
        std::vector<IterationRecord> iterations_so_far;
        for (const auto& r : records)
          iterations_so_far.insert(iterations_so_far.end(), r.begin(), r.end());
        write_report(so_far, ro, result.output, false, iterations_so_far);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        return;
      }
    }
  };
  if (parallel <= 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (int t = 0; t < std::min<int>(parallel, static_cast<int>(simulated.size())); ++t)
      threads.emplace_back(worker);
    for (auto& t : threads) t.join();
  }
  if (error) std::rethrow_exception(error);
  for (const auto& e : per_participant) result.events.insert(result.events.end(), e.begin(), e.end());
  for (const auto& r : records)
    result.iterations.insert(result.iterations.end(), r.begin(), r.end());
  if (result.events.empty())
    throw PilotError(
        "the study has no simulated participants, so nothing was run (human participants take part "
        "with `tuneloop pilot session`)");
  result.summary = write_report(result.events, ro, result.output, options.plots, result.iterations);
  say("wrote " + (result.output / "report.md").string());
  return result;
}

}  // namespace tuneloop::pilot
