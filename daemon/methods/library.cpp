// The library: the listener's own songs and the generated tracks. Rows of the command table (docs/protocol.md).
#include "daemon/daemon.hpp"
#include "daemon/methods/loop.hpp"
#include "daemon/methods/study.hpp"
#include "rpc/errors.hpp"
#include "daemon/daemon_helpers.hpp"
#include "daemon/export_folder.hpp"
#include "audio/audio.hpp"
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace tuneloop::daemon {

namespace fs = std::filesystem;
using nlohmann::json;
using rpc::ErrorCode;
using rpc::Params;
using rpc::RpcError;
using rpc::Session;
using namespace detail;

Daemon::ImportedSong Daemon::import_song_file(const fs::path& src, const fs::path& songs_dir) {
  // Checked readable first, so nothing is copied or stored for a bad file.
  const audio::Audio a = audio::read_audio(src.string());
  ImportedSong song;
  song.source = src;
  song.sha256 = audio::sha256_file(src.string());
  std::string ext = lower(src.extension().string());
  if (ext.empty()) ext = ".audio";
  song.copy = songs_dir / (song.sha256 + ext);
  if (!fs::exists(song.copy)) {
    try {
      audio::durable_copy(src.string(), song.copy.string());
    } catch (const audio::AudioError& e) {
      throw RpcError(ErrorCode::storage_error, e.what());
    }
  }
  song.seconds = a.seconds();
  song.sample_rate = a.sample_rate;
  return song;
}

json Daemon::record_song(const ImportedSong& s) {
  store::NewSong ns;
  ns.listener_id = listener_id_;
  ns.path = s.copy.string();
  ns.original_name = s.source.filename().string();
  ns.sha256 = s.sha256;
  ns.duration_s = s.seconds;
  ns.sample_rate = s.sample_rate;
  const store::SongAdded added = store_->add_song(ns);
  json song = song_json(*store_->get_song(added.id));
  song["inserted"] = added.inserted;
  if (added.inserted) {
    spdlog::info("song: added song={} from={}", added.id, s.source.string());
    publish("song.added", song);
  }
  return song;
}

void Daemon::add_library_methods() {
  using P = rpc::Param;
  using T = rpc::JsonType;
  auto& t = table_;

  t.add({"songs.add", {P::req("path", T::string)},
         [this](const Params& p, Session& session) -> json {
           const fs::path src = fs::absolute(p.get<std::string>("path"));
           const fs::path songs = config_.paths.data_dir / "songs";
           // A long file takes a while to decode, hash and copy: off the io thread when
           // the transport can take the reply later.
           if (auto later = session.defer()) {
             asio::post(files_, [this, src, songs, later = *later] {
               try {
                 ImportedSong song = import_song_file(src, songs);
                 asio::post(io_, [this, song = std::move(song), later] {
                   try {
                     later.result(record_song(song));
                   } catch (...) {
                     later.error(std::current_exception());
                   }
                 });
               } catch (...) {
                 asio::post(io_, [later, error = std::current_exception()] { later.error(error); });
               }
             });
             return nullptr;
           }
           return record_song(import_song_file(src, songs));
         }, "0.1", "Adds one of the listener's own audio files (copied, de-duplicated by content)."});

  t.add({"songs.list", {}, [this](const Params&, Session&) -> json {
           json out = json::array();
           for (const auto& s : store_->songs(listener_id_)) out.push_back(song_json(s));
           return out;
         }, "0.1", "The listener's own songs."});

  t.add({"songs.remove", {P::req("id", T::integer).range(1, 9e15)},
         [this](const Params& p, Session&) -> json {
           const store::Id id = p.get<store::Id>("id");
           auto s = store_->get_song(id);
           if (!s || s->listener_id != listener_id_)
             throw RpcError(ErrorCode::not_found, "no song with id " + std::to_string(id), {{"id", id}});
           store_->remove_song(id);
           bool shared = false;
           for (const auto& l : store_->listeners())
             for (const auto& o : store_->songs(l.id)) shared = shared || o.path == s->path;
           std::error_code ec;
           if (!shared && inside(s->path, config_.paths.data_dir)) fs::remove(s->path, ec);
           spdlog::info("song: removed song={}", id);
           return {{"removed", id}};
         }, "0.1", "Removes a song and its copied file."});

  t.add({"tracks.list", {P::opt("iteration", T::integer).range(1, 9e15)},
         [this](const Params& p, Session&) -> json {
           json out = json::array();
           for (const auto& tr : store_->tracks(listener_id_, p.opt<store::Id>("iteration")))
             out.push_back(track_json(tr));
           return out;
         }, "0.1", "The listener's tracks, newest first (only one iteration's if given)."});

  t.add({"tracks.add", {P::req("path", T::string), P::opt("tags", T::string),
                        P::opt("iteration", T::integer).range(1, 9e15)},
         [this](const Params& p, Session&) -> json {
           const fs::path path = fs::absolute(p.get<std::string>("path"));
           const audio::Audio a = audio::read_audio(path.string());
           store::NewTrack nt;
           nt.listener_id = listener_id_;
           nt.iteration_id = p.opt<store::Id>("iteration");
           nt.tags = p.value<std::string>("tags", "");
           nt.path = path.string();
           nt.duration_s = a.seconds();
           const store::Id id = store_->add_track(nt);
           queue_.enqueue(id);
           spdlog::info("track: added track={} path={}", id, nt.path);
           return track_json(*store_->get_track(id));
         }, "0.1", "Registers an existing audio file as a track and queues it."});
}

}  // namespace tuneloop::daemon
