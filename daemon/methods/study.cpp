#include "daemon/export_folder.hpp"
#include "daemon/methods/study.hpp"

#include "rpc/errors.hpp"
#include "study/report.hpp"
#include "study/study.hpp"
#include "audio/audio.hpp"
#include "audio/features.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <set>

namespace tuneloop::daemon {

namespace fs = std::filesystem;
using nlohmann::json;
using rpc::Command;
using rpc::CommandTable;
using rpc::ErrorCode;
using rpc::Params;
using rpc::RpcError;
using rpc::Session;

namespace {

// Letters and digits that cannot be misread for each other (no 0/O, 1/I/L).
constexpr std::string_view kCodeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";

std::string make_code(std::mt19937_64& rng) {
  std::uniform_int_distribution<std::size_t> pick(0, kCodeAlphabet.size() - 1);
  std::string code;
  for (int i = 0; i < 4; ++i) code += kCodeAlphabet[pick(rng)];
  return code;
}

std::string safe_name(const std::string& name) {
  std::string out;
  for (char c : name) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
  return out.substr(0, 40);
}

struct StudyView {
  store::Study study;
  std::vector<store::StudyItem> items;
  int answered() const {
    return static_cast<int>(std::count_if(items.begin(), items.end(),
                                          [](const auto& i) { return i.answered_at.has_value(); }));
  }
  const store::StudyItem* current() const {
    for (const auto& i : items)
      if (!i.answered_at) return &i;
    return nullptr;
  }
};

class StudyMethods {
 public:
  explicit StudyMethods(StudyMethodContext c) : c_(std::move(c)) {}

  // The study named by `study_id`, else the listener's newest running one.
  StudyView study(const Params& p) {
    std::optional<store::Study> s;
    if (auto id = p.opt<store::Id>("study_id")) {
      s = c_.store.get_study(*id);
      if (!s || s->listener_id != c_.listener_id())
        throw RpcError(ErrorCode::not_found, "no study with id " + std::to_string(*id),
                       {{"study_id", *id}});
    } else {
      for (const auto& x : c_.store.studies(c_.listener_id()))
        if (x.status == store::StudyStatus::running) s = x;
      if (!s)
        throw RpcError(ErrorCode::not_found,
                       "no running study (start one with study.start, or pass study_id)");
    }
    return {*s, c_.store.study_items(s->id)};
  }

  // The item `code` (default: the first unanswered one).
  const store::StudyItem& item(const StudyView& v, const Params& p) {
    if (auto code = p.opt<std::string>("code")) {
      for (const auto& i : v.items)
        if (i.code == *code) return i;
      throw RpcError(ErrorCode::not_found,
                     "study " + std::to_string(v.study.id) + " has no track with code '" + *code + "'",
                     {{"param", "code"}});
    }
    if (const auto* i = v.current()) return *i;
    throw RpcError(ErrorCode::not_found,
                   "study " + std::to_string(v.study.id) + " has no track left to rate (finish it with study.finish)");
  }

  static json status_json(const StudyView& v) {
    const int answered = v.answered();
    return {{"study_id", v.study.id},
            {"name", v.study.name},
            {"participant", v.study.participant},
            {"status", store::to_string(v.study.status)},
            {"total", v.items.size()},
            {"answered", answered},
            {"remaining", static_cast<int>(v.items.size()) - answered},
            {"created_at", v.study.created_at},
            {"params", json::parse(v.study.params_json, nullptr, false)}};
  }

  // What the participant may see of an item: nothing that names the track or iteration.
  json item_json(const StudyView& v, const store::StudyItem& i) {
    json j = {{"study_id", v.study.id},
              {"position", i.position},
              {"code", i.code},
              {"path", i.blinded_path},
              {"total", v.items.size()},
              {"remaining", static_cast<int>(v.items.size()) - v.answered()},
              {"done", false}};
    if (auto t = c_.store.get_track(i.track_id)) j["duration"] = t->duration_s;
    return j;
  }

  json start(const Params& p) {
    const store::Id listener = c_.listener_id();
    const std::string name = p.get<std::string>("name");
    if (name.empty())
      throw RpcError(ErrorCode::invalid_params, "parameter 'name' must not be empty", {{"param", "name"}});
    std::string participant = p.value<std::string>("participant", "");
    if (participant.empty())
      if (auto l = c_.store.get_listener(listener)) participant = l->name;
    std::set<int> wanted;
    if (p.has("iterations"))
      for (const auto& n : p.json().at("iterations")) {
        const bool number = n.is_number_integer() &&
                            (n.is_number_unsigned() ? n.get<unsigned long long>() <= INT_MAX
                                                    : n.get<long long>() >= 0 && n.get<long long>() <= INT_MAX);
        if (!number)
          throw RpcError(ErrorCode::invalid_params,
                         "parameter 'iterations' must list iteration numbers (integers >= 0), got " + n.dump(),
                         {{"param", "iterations"}});
        wanted.insert(n.get<int>());
      }
    const int per_iteration = p.value<int>("tracks_per_iteration", 0);
    const auto seed = static_cast<std::uint64_t>(p.value<std::int64_t>("seed", store::now_ms()));

    std::vector<std::pair<int, long long>> pool;
    std::map<long long, store::Track> tracks;
    std::set<int> found;
    for (const auto& it : c_.store.iterations(listener)) {
      if (it.status == store::IterationStatus::deleted) continue;
      if (!wanted.empty() && !wanted.count(it.number)) continue;
      for (const auto& t : c_.store.tracks(listener, it.id)) {
        pool.emplace_back(it.number, t.id);
        tracks[t.id] = t;
        found.insert(it.number);
      }
    }
    for (int n : wanted)
      if (!found.count(n))
        throw RpcError(ErrorCode::not_found, "iteration " + std::to_string(n) + " has no tracks to draw from",
                       {{"param", "iterations"}, {"iteration", n}});
    if (pool.empty()) throw RpcError(ErrorCode::not_found, "no iteration has tracks to draw from yet");

    const auto order = study::blinded_order(pool, per_iteration, seed);
    // Copies named by their code, so neither the file name nor its folder gives the
    // iteration away.
    const fs::path dir = c_.data_dir() / "studies" / (safe_name(name) + "-" + std::to_string(store::now_ms()));
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw RpcError(ErrorCode::storage_error, "cannot create " + dir.string() + ": " + ec.message());
    std::mt19937_64 rng(seed ^ 0x5bd1e995ULL);
    std::set<std::string> codes;
    std::vector<store::NewStudyItem> items;
    for (const auto& [number, id] : order) {
      std::string code;
      do code = make_code(rng);
      while (!codes.insert(code).second);
      const store::Track& t = tracks.at(id);
      std::string ext = fs::path(t.path).extension().string();
      const fs::path copy = dir / (code + (ext.empty() ? ".wav" : ext));
      try {
        audio::durable_copy(t.path, copy.string());
      } catch (const audio::AudioError& e) {
        throw RpcError(ErrorCode::storage_error, "cannot copy track " + std::to_string(id) + ": " + e.what());
      }
      items.push_back({id, number, code, copy.string()});
    }
    json params = {{"iterations", json(std::vector<int>(found.begin(), found.end()))},
                   {"tracks_per_iteration", per_iteration},
                   {"seed", seed}};
    const store::Id id = c_.store.create_study(listener, name, participant, params.dump(), items);
    spdlog::info("study: started study={} name={} participant={} items={}", id, name, participant, items.size());
    StudyView v{*c_.store.get_study(id), c_.store.study_items(id)};
    json out = status_json(v);
    json queue = json::array();
    for (const auto& i : v.items) queue.push_back({{"position", i.position}, {"code", i.code}});
    out["queue"] = queue;
    out["next"] = item_json(v, v.items.front());
    return out;
  }

  json next(const Params& p) {
    const StudyView v = study(p);
    if (const auto* i = v.current()) return item_json(v, *i);
    return {{"study_id", v.study.id}, {"done", true}, {"total", v.items.size()}, {"remaining", 0}};
  }

  json play(const Params& p, Session& s) {
    const StudyView v = study(p);
    const store::StudyItem& i = item(v, p);
    const Command* play = c_.table.find("player.play");
    if (!play) throw RpcError(ErrorCode::no_audio_device, "this daemon has no player");
    const json r = play->handler(Params(json{{"track_id", i.track_id}}), s);
    // player.play answers with the track id, which would unblind the item.
    return {{"code", i.code}, {"state", r.value("state", "playing")}};
  }

  json rate(const Params& p) {
    const StudyView v = study(p);
    const store::StudyItem& i = item(v, p);
    const bool skip = p.value<bool>("skip", false);
    if (skip == p.has("stars"))
      throw RpcError(ErrorCode::invalid_params, "pass either 'stars' or 'skip': true", {{"param", "stars"}});
    std::optional<double> stars;
    if (!skip) stars = p.get<double>("stars");
    c_.store.answer_study_item(i.id, stars, p.opt<double>("seconds_heard"));
    spdlog::info("study: study={} code={} stars={}", v.study.id, i.code, stars ? json(*stars).dump() : "skip");
    const StudyView after = study(Params(json{{"study_id", v.study.id}}));
    json out = {{"study_id", v.study.id},
                {"code", i.code},
                {"stars", stars ? json(*stars) : json(nullptr)},
                {"remaining", static_cast<int>(after.items.size()) - after.answered()}};
    if (const auto* n = after.current())
      out["next"] = item_json(after, *n);
    else
      out["next"] = nullptr;
    return out;
  }

  json status(const Params& p) { return status_json(study(p)); }

  json list() {
    json out = json::array();
    for (const auto& s : c_.store.studies(c_.listener_id()))
      out.push_back(status_json({s, c_.store.study_items(s.id)}));
    return out;
  }

  json finish(const Params& p) {
    StudyView v = study(p);
    c_.store.finish_study(v.study.id);
    spdlog::info("study: finished study={} answered={}/{}", v.study.id, v.answered(), v.items.size());
    v.study = *c_.store.get_study(v.study.id);
    json out = status_json(v);
    if (p.has("out")) out["export"] = export_to(v, p.get<std::string>("out"), p.value<bool>("plots", true));
    return out;
  }

  json export_study(const Params& p) {
    const StudyView v = study(p);
    return export_to(v, p.get<std::string>("out"), p.value<bool>("plots", true));
  }

 private:
  // The same files as a simulated study (study/report.hpp), from this study's answers.
  json export_to(const StudyView& v, const fs::path& out, bool plots) {
    if (out.empty() || out.is_relative())
      throw RpcError(ErrorCode::invalid_params, "parameter 'out' must be an absolute folder path",
                     {{"param", "out"}});
    prepare_export_folder(out, "out");
    std::vector<study::Event> events;
    for (const auto& i : v.items) {
      if (!i.stars) continue;  // unanswered or skipped
      study::Event e;
      e.participant = v.study.participant;
      e.phase = "evaluation";
      e.kind = "rating";
      e.iteration = i.iteration_number;
      e.track_id = i.track_id;
      e.position = i.position;
      e.stars = *i.stars;
      if (i.seconds_heard) e.seconds_heard = *i.seconds_heard;
      try {
        // Features let the report measure each iteration's diversity, as for simulated studies
        // (and at their rate, so a wider model does not move the figures).
        e.features = audio::as_vector(
            audio::measure(audio::read_audio(i.blinded_path, study::kListenerRate)));
      } catch (const std::exception& ex) {
        spdlog::warn("study: cannot measure {}: {}", i.blinded_path, ex.what());
      }
      events.push_back(std::move(e));
    }
    if (events.empty())
      throw RpcError(ErrorCode::not_found, "study " + std::to_string(v.study.id) + " has no ratings to export yet");
    study::ReportOptions ro;
    ro.study_name = v.study.name;
    ro.seed = static_cast<std::uint64_t>(v.study.id);
    json summary;
    try {
      summary = study::write_report(events, ro, out, plots);
    } catch (const study::ReportError& e) {
      throw RpcError(ErrorCode::storage_error, std::string("study export: ") + e.what(), {{"out", out.string()}});
    }
    spdlog::info("study: exported study={} to {}", v.study.id, out.string());
    json files = json::array();
    for (const char* f : {"events.csv", "summary.json", "report.md"}) files.push_back((out / f).string());
    for (const auto& entry : fs::directory_iterator(out))
      if (entry.path().extension() == ".png") files.push_back(entry.path().string());
    return {{"study_id", v.study.id}, {"out", out.string()}, {"ratings", events.size()}, {"files", files}};
  }

  StudyMethodContext c_;
};

}  // namespace

void add_study_methods(CommandTable& table, StudyMethodContext context) {
  using P = rpc::Param;
  using T = rpc::JsonType;
  auto m = std::make_shared<StudyMethods>(std::move(context));
  auto study_id = [] { return P::opt("study_id", T::integer).range(1, 9e15); };

  table.add({"study.start",
             {P::req("name", T::string), P::opt("iterations", T::array),
              P::opt("tracks_per_iteration", T::integer).range(0, 10000),
              P::opt("seed", T::integer).range(0, 9e15), P::opt("participant", T::string)},
             [m](const Params& p, Session&) { return m->start(p); }, "0.3",
             "Starts a human study: a blinded, shuffled playlist of tracks from the chosen iterations."});
  table.add({"study.next", {study_id()}, [m](const Params& p, Session&) { return m->next(p); }, "0.3",
             "The study's next unrated track: its blinded code and a copy of its audio."});
  table.add({"study.play", {study_id(), P::opt("code", T::string)},
             [m](const Params& p, Session& s) { return m->play(p, s); }, "0.3",
             "Plays a study track (default: the next one) without revealing which track it is."});
  table.add({"study.rate",
             {P::opt("stars", T::number).range(1, 5).multiple_of(0.5), P::opt("skip", T::boolean),
              P::opt("code", T::string), P::opt("seconds_heard", T::number).range(0, 1e7), study_id()},
             [m](const Params& p, Session&) { return m->rate(p); }, "0.3",
             "Records a study rating (or a skip) for a track (default: the next one); not loop feedback."});
  table.add({"study.status", {study_id()},
             [m](const Params& p, Session&) { return m->status(p); }, "0.3",
             "How far a study has got: total, answered, remaining."});
  table.add({"study.list", {}, [m](const Params&, Session&) { return m->list(); }, "0.3",
             "The listener's studies, oldest first."});
  table.add({"study.finish",
             {study_id(), P::opt("out", T::string), P::opt("plots", T::boolean)},
             [m](const Params& p, Session&) { return m->finish(p); }, "0.3",
             "Ends a study (no more ratings); with 'out', exports it there as well."});
  table.add({"study.export", {P::req("out", T::string), study_id(), P::opt("plots", T::boolean)},
             [m](const Params& p, Session&) { return m->export_study(p); }, "0.3",
             "Writes events.csv, summary.json, report.md and plots of a study's ratings to a folder."});
}

}  // namespace tuneloop::daemon
