// The listener's tracks as MPD's database (MPD's DatabaseCommands.cxx and lsinfo): one
// folder per iteration. Read fresh from tracks.list on each command, so a track added a
// moment ago over JSON-RPC is there.
#include "mpd/arguments.hpp"
#include "mpd/filter.hpp"
#include "mpd/handlers.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace tuneloop::mpd {

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return lower(x) == lower(y); });
}

// "iteration-0/" and "/" (which some clients send for the root) name what they would
// without the slash.
std::string_view without_slashes(std::string_view uri) {
  while (!uri.empty() && uri.back() == '/') uri.remove_suffix(1);
  return uri;
}

void print_folder(Context& ctx, const Library::Folder& f, bool with_time) {
  ctx.pair("directory", f.name);
  if (with_time && f.last_modified > 0) ctx.pair("Last-Modified", iso8601(f.last_modified));
}

// What lsinfo, listall and listallinfo print for `uri`: the root (folders, and with
// `recursive` their songs), one folder's songs, or one song. `info` prints song tags.
void print_tree(Context& ctx, std::string_view uri, bool recursive, bool info) {
  const Library& lib = ctx.shared.library.fresh(ctx.daemon);
  uri = without_slashes(uri);
  auto print_song = [&](const Song& s) {
    if (info)
      ctx.out += song_info(s, ctx.client.tag_mask);
    else
      ctx.pair("file", s.uri);
  };
  if (uri.empty()) {
    for (const auto& f : lib.folders) {
      print_folder(ctx, f, info || !recursive);
      if (!recursive) continue;
      for (const auto& s : lib.songs)
        if (s.directory == f.name) print_song(s);
    }
    return;
  }
  if (lib.has_folder(uri)) {
    for (const auto& s : lib.songs)
      if (s.directory == uri) print_song(s);
    return;
  }
  if (const Song* s = lib.find_uri(uri)) {
    print_song(*s);
    return;
  }
  throw MpdError(Ack::no_exist, "No such directory");
}

// MPD's "window START:END" and "sort [-]TAG" at the end of find and search.
struct Selection {
  Range window;
  std::optional<Tag> sort_tag;
  bool sort_by_time = false;
  bool descending = false;
};

Selection take_selection(Args& args) {
  Selection sel;
  if (args.size() >= 2 && args[args.size() - 2] == "window") {
    sel.window = parse_range(args.back());
    args.resize(args.size() - 2);
  }
  if (args.size() >= 2 && args[args.size() - 2] == "sort") {
    std::string_view name = args.back();
    if (!name.empty() && name.front() == '-') {
      sel.descending = true;
      name.remove_prefix(1);
    }
    if (iequals(name, "Last-Modified")) {
      sel.sort_by_time = true;
    } else if (auto tag = parse_tag(name)) {
      sel.sort_tag = tag;
    } else {
      throw MpdError(Ack::arg, "Unknown sort tag");
    }
    args.resize(args.size() - 2);
  }
  return sel;
}

std::string first_value(const Song& s, Tag t) {
  const auto values = s.values(t);
  return values.empty() ? std::string() : std::string(values.front());
}

Result find_songs(Context& ctx, const Args& given, bool fold_case) {
  Args args = given;
  const Selection sel = take_selection(args);
  const SongFilter filter = SongFilter::parse(args, fold_case);
  const Library& lib = ctx.shared.library.fresh(ctx.daemon);
  std::vector<const Song*> found;
  for (const auto& s : lib.songs)
    if (filter.match(s)) found.push_back(&s);
  if (sel.sort_tag || sel.sort_by_time) {
    std::stable_sort(found.begin(), found.end(), [&](const Song* a, const Song* b) {
      const bool less = sel.sort_by_time ? a->last_modified < b->last_modified
                                         : first_value(*a, *sel.sort_tag) < first_value(*b, *sel.sort_tag);
      const bool greater = sel.sort_by_time ? b->last_modified < a->last_modified
                                            : first_value(*b, *sel.sort_tag) < first_value(*a, *sel.sort_tag);
      return sel.descending ? greater : less;
    });
  }
  const std::size_t end = std::min<std::size_t>(sel.window.end, found.size());
  for (std::size_t i = sel.window.start; i < end; ++i) ctx.out += song_info(*found[i], ctx.client.tag_mask);
  return Result::ok;
}

Tag group_tag(const std::string& name) {
  const auto tag = parse_tag(name);
  if (!tag) throw MpdError(Ack::arg, "Unknown tag type: " + name);
  return *tag;
}

// Every combination of the song's values for `tags` ("" where a group tag is missing).
void value_tuples(const Song& s, const std::vector<Tag>& tags, std::size_t i,
                  std::vector<std::string>& current, std::set<std::vector<std::string>>& out) {
  if (i == tags.size()) {
    out.insert(current);
    return;
  }
  auto values = s.values(tags[i]);
  if (values.empty()) {
    if (i + 1 == tags.size()) return;  // the listed tag itself must be there
    values.push_back("");
  }
  for (auto v : values) {
    current.emplace_back(v);
    value_tuples(s, tags, i + 1, current, out);
    current.pop_back();
  }
}

}  // namespace

Result handle_lsinfo(Context& ctx, const Args& args) {
  print_tree(ctx, args.empty() ? std::string_view() : std::string_view(args[0]), false, true);
  return Result::ok;
}

Result handle_listall(Context& ctx, const Args& args) {
  print_tree(ctx, args.empty() ? std::string_view() : std::string_view(args[0]), true, false);
  return Result::ok;
}

Result handle_listallinfo(Context& ctx, const Args& args) {
  print_tree(ctx, args.empty() ? std::string_view() : std::string_view(args[0]), true, true);
  return Result::ok;
}

Result handle_find(Context& ctx, const Args& args) { return find_songs(ctx, args, false); }

Result handle_search(Context& ctx, const Args& args) { return find_songs(ctx, args, true); }

Result handle_list(Context& ctx, const Args& given) {
  Args args(given.begin() + 1, given.end());
  const std::string& name = given.front();
  const bool files = iequals(name, "file") || iequals(name, "filename");
  const Library& lib = ctx.shared.library.fresh(ctx.daemon);
  if (files) {
    const SongFilter filter = args.empty() ? SongFilter() : SongFilter::parse(args, false);
    for (const auto& s : lib.songs)
      if (filter.match(s)) ctx.pair("file", s.uri);
    return Result::ok;
  }
  const auto tag = parse_tag(name);
  if (!tag) throw MpdError(Ack::arg, "Unknown tag type: " + name);
  SongFilter filter;
  if (args.size() == 1 && (args[0].empty() || args[0].front() != '(')) {
    // MPD before 0.12: "list Album ARTIST".
    if (*tag != Tag::album) throw MpdError(Ack::arg, "should be \"Album\" for 3 arguments");
    filter = SongFilter::equals(Tag::artist, args[0]);
    args.clear();
  }
  std::vector<Tag> tags;  // outermost group first, the listed tag last
  while (args.size() >= 2 && args[args.size() - 2] == "group") {
    const Tag g = group_tag(args.back());
    if (g == *tag || std::find(tags.begin(), tags.end(), g) != tags.end())
      throw MpdError(Ack::arg, "Conflicting group");
    tags.push_back(g);
    args.resize(args.size() - 2);
  }
  tags.push_back(*tag);
  if (!args.empty()) filter = SongFilter::parse(args, false);
  std::set<std::vector<std::string>> tuples;
  std::vector<std::string> current;
  for (const auto& s : lib.songs)
    if (filter.match(s)) value_tuples(s, tags, 0, current, tuples);
  const std::vector<std::string>* previous = nullptr;
  for (const auto& t : tuples) {
    std::size_t differs = 0;
    while (previous && differs < t.size() && (*previous)[differs] == t[differs]) ++differs;
    for (std::size_t i = differs; i < t.size(); ++i) ctx.pair(tag_name(tags[i]), t[i]);
    previous = &t;
  }
  return Result::ok;
}

Result handle_count(Context& ctx, const Args& given) {
  Args args = given;
  std::optional<Tag> group;
  if (args.size() >= 2 && args[args.size() - 2] == "group") {
    group = group_tag(args.back());
    args.resize(args.size() - 2);
  }
  const SongFilter filter = args.empty() ? SongFilter() : SongFilter::parse(args, false);
  std::map<std::string, std::pair<unsigned, double>> totals;  // group value -> songs, seconds
  for (const auto& s : ctx.shared.library.fresh(ctx.daemon).songs) {
    if (!filter.match(s)) continue;
    std::vector<std::string_view> keys = group ? s.values(*group) : std::vector<std::string_view>{""};
    if (keys.empty()) keys.push_back("");
    for (auto k : keys) {
      auto& t = totals[std::string(k)];
      ++t.first;
      t.second += s.duration;
    }
  }
  if (!group && totals.empty()) totals[""] = {0, 0.0};
  for (const auto& [key, t] : totals) {
    if (group) ctx.pair(tag_name(*group), key);
    ctx.pair("songs", std::to_string(t.first));
    ctx.pair("playtime", std::to_string(static_cast<long long>(std::floor(t.second))));
  }
  return Result::ok;
}

// Every figure non-zero where it can be: Cantata takes an all-zero `stats` for a server
// without a database.
Result handle_stats(Context& ctx, const Args&) {
  const PlayerStatus status = PlayerStatus::load(ctx.daemon);
  const Library& lib = ctx.shared.library.fresh(ctx.daemon);
  double db_seconds = 0;
  std::int64_t newest = 0;
  for (const auto& s : lib.songs) {
    db_seconds += s.duration;
    newest = std::max(newest, s.last_modified);
  }
  double heard = 0;
  for (const auto& p : ctx.daemon.call("plays.list", {{"limit", 100000}}))
    heard += p.value("seconds_heard", 0.0);
  const auto uptime = std::max<long long>(1, std::llround(status.uptime_s));
  ctx.pair("uptime", std::to_string(uptime));
  ctx.pair("playtime", std::to_string(std::llround(heard)));
  ctx.pair("artists", "1");  // every track is by "tuneloop"
  ctx.pair("albums", std::to_string(lib.folders.size()));
  ctx.pair("songs", std::to_string(lib.songs.size()));
  ctx.pair("db_playtime", std::to_string(std::llround(db_seconds)));
  if (newest > 0) ctx.pair("db_update", std::to_string(newest));
  return Result::ok;
}

// Nothing to scan (the loop registers its tracks itself); answered as a finished job so
// clients refresh their view of the library.
Result handle_update(Context& ctx, const Args&) {
  ctx.shared.library.invalidate();
  ctx.pair("updating_db", std::to_string(++ctx.shared.update_jobs));
  ctx.shared.raise_all(idle::update | idle::database);
  return Result::ok;
}

// Generated WAV files carry no comments.
Result handle_readcomments(Context& ctx, const Args& args) {
  song_at(ctx, args[0]);
  return Result::ok;
}

Result handle_albumart(Context& ctx, const Args& args) {
  parse_unsigned(args[1]);
  song_at(ctx, args[0]);
  throw MpdError(Ack::no_exist, "No file exists");
}

// As MPD for a file without an embedded picture: an empty answer.
Result handle_readpicture(Context& ctx, const Args& args) {
  parse_unsigned(args[1]);
  song_at(ctx, args[0]);
  return Result::ok;
}

}  // namespace tuneloop::mpd
