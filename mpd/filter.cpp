#include "mpd/filter.hpp"

#include "mpd/protocol.hpp"

#include <cstdlib>
#include <ctime>

namespace tuneloop::mpd {

namespace {

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string folded(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

bool equals_ignore_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// MPD's StringFilter: equality or substring, optionally case-folded, optionally negated.
struct StringMatch {
  std::string value;  // already folded when fold_case
  bool fold_case = false;
  bool substring = false;
  bool negated = false;

  bool matches_ignoring_negation(std::string_view s) const {
    const std::string text = fold_case ? folded(s) : std::string(s);
    return substring ? text.find(value) != std::string::npos : text == value;
  }
};

StringMatch make_match(std::string value, bool fold_case, bool substring, bool negated) {
  StringMatch m;
  m.value = fold_case ? folded(value) : std::move(value);
  m.fold_case = fold_case;
  m.substring = substring;
  m.negated = negated;
  return m;
}

MpdError filter_error(const std::string& message) { return MpdError(Ack::arg, message); }

// The special filter types besides tags (MPD's locate_parse_type).
enum class Special { none, file, any, base, modified_since, audio_format };

Special special_type(std::string_view name) {
  if (equals_ignore_case(name, "file") || equals_ignore_case(name, "filename")) return Special::file;
  if (equals_ignore_case(name, "any")) return Special::any;
  if (name == "base") return Special::base;
  if (name == "modified-since") return Special::modified_since;
  if (equals_ignore_case(name, "AudioFormat")) return Special::audio_format;
  return Special::none;
}

// A Unix time or an ISO 8601 UTC date ("2024-05-01" or "2024-05-01T10:00:00Z").
std::int64_t parse_time_stamp(const std::string& s) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end != s.c_str() && *end == '\0') return static_cast<std::int64_t>(v);
  std::tm tm{};
  const char* rest = ::strptime(s.c_str(), "%Y-%m-%d", &tm);
  if (rest && *rest == 'T') rest = ::strptime(rest + 1, "%H:%M:%S", &tm);
  if (rest && *rest == 'Z') ++rest;
  if (!rest || *rest != '\0') throw filter_error("Failed to parse time stamp: " + s);
  return static_cast<std::int64_t>(::timegm(&tm));
}

bool uri_safe(std::string_view uri) {
  if (uri.empty() || uri.front() == '/') return false;
  std::size_t pos = 0;
  while (pos <= uri.size()) {
    const auto slash = uri.find('/', pos);
    const std::string_view seg = uri.substr(pos, slash == std::string_view::npos ? uri.npos : slash - pos);
    if (seg.empty() || seg == "." || seg == "..") return false;
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return true;
}

}  // namespace

struct SongFilter::Node {
  enum class Kind { tag, any, uri, base, modified_since, all_of, negation };
  Kind kind = Kind::tag;
  Tag tag = Tag::artist;
  StringMatch m;
  std::string base;
  std::int64_t since = 0;
  std::vector<std::unique_ptr<Node>> children;

  bool match(const Song& s) const {
    switch (kind) {
      case Kind::tag: {
        bool present = false;
        for (const auto& [t, v] : s.tags) {
          if (t != tag) continue;
          present = true;
          if (m.matches_ignoring_negation(v)) return !m.negated;
        }
        // An absent tag equals the empty string (MPD's rule).
        if (!present && m.value.empty()) return !m.negated;
        return m.negated;
      }
      case Kind::any:
        for (const auto& tag_value : s.tags)
          if (m.matches_ignoring_negation(tag_value.second)) return !m.negated;
        return m.negated;
      case Kind::uri: return m.matches_ignoring_negation(s.uri) != m.negated;
      case Kind::base:
        return base.empty() || s.uri == base ||
               (s.uri.size() > base.size() && s.uri.compare(0, base.size(), base) == 0 &&
                s.uri[base.size()] == '/');
      case Kind::modified_since: return s.last_modified >= since;
      case Kind::all_of:
        for (const auto& c : children)
          if (!c->match(s)) return false;
        return true;
      case Kind::negation: return !children.front()->match(s);
    }
    return false;
  }
};

namespace {

using Node = SongFilter::Node;

// One expression argument, parsed as MPD's SongFilter::ParseExpression reads it.
class ExpressionParser {
 public:
  ExpressionParser(std::string_view s, bool fold_case) : s_(s), fold_case_(fold_case) {}

  std::unique_ptr<Node> parse_all() {
    auto node = expression();
    if (i_ != s_.size()) throw filter_error("Unparsed garbage after expression");
    return node;
  }

 private:
  char peek() const noexcept { return i_ < s_.size() ? s_[i_] : '\0'; }
  char peek2() const noexcept { return i_ + 1 < s_.size() ? s_[i_ + 1] : '\0'; }
  void skip_spaces() noexcept {
    while (i_ < s_.size() && static_cast<unsigned char>(s_[i_]) <= 0x20) ++i_;
  }

  std::string word() {
    const std::size_t begin = i_;
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-')) break;
      ++i_;
    }
    if (i_ == begin) throw filter_error("Word expected");
    std::string w(s_.substr(begin, i_ - begin));
    skip_spaces();
    return w;
  }

  std::string quoted() {
    const char quote = peek();
    if (quote != '"' && quote != '\'') throw filter_error("Quoted string expected");
    ++i_;
    std::string out;
    while (peek() != quote) {
      if (peek() == '\\') ++i_;
      if (i_ >= s_.size()) throw filter_error("Closing quote not found");
      out.push_back(s_[i_++]);
      if (out.size() >= 4096) throw filter_error("Quoted value is too long");
    }
    ++i_;
    skip_spaces();
    return out;
  }

  void close_paren() {
    if (peek() != ')') throw filter_error("')' expected");
    ++i_;
    skip_spaces();
  }

  bool after_prefix_ignore_case(std::string_view prefix) {
    if (s_.size() - i_ < prefix.size() || !equals_ignore_case(s_.substr(i_, prefix.size()), prefix))
      return false;
    i_ += prefix.size();
    skip_spaces();
    return true;
  }

  StringMatch string_match() {
    if (after_prefix_ignore_case("contains ")) return make_match(quoted(), fold_case_, true, false);
    if (after_prefix_ignore_case("!contains ")) return make_match(quoted(), fold_case_, true, true);
    bool negated = false;
    if (peek() == '!' && peek2() == '=')
      negated = true;
    else if (peek() != '=' || peek2() != '=')
      throw filter_error("'==' or '!=' expected");
    i_ += 2;
    skip_spaces();
    return make_match(quoted(), fold_case_, false, negated);
  }

  std::unique_ptr<Node> expression() {
    // Parsing, matching and freeing the tree all recurse once per level: a line of
    // thousands of '(' must be refused, not overflow the io thread's stack.
    if (++depth_ > kMaxDepth) throw filter_error("expression nested too deeply");
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{depth_};
    ++i_;  // '('
    skip_spaces();
    auto node = std::make_unique<Node>();
    if (peek() == '(') {
      auto first = expression();
      if (peek() == ')') {
        ++i_;
        return first;
      }
      if (word() != "AND") throw filter_error("'AND' expected");
      node->kind = Node::Kind::all_of;
      node->children.push_back(std::move(first));
      for (;;) {
        if (peek() != '(') throw filter_error("'(' expected");
        node->children.push_back(expression());
        if (peek() == ')') {
          ++i_;
          return node;
        }
        if (word() != "AND") throw filter_error("'AND' expected");
      }
    }
    if (peek() == '!') {
      ++i_;
      skip_spaces();
      if (peek() != '(') throw filter_error("'(' expected");
      node->kind = Node::Kind::negation;
      node->children.push_back(expression());
      close_paren();
      return node;
    }
    const std::string name = word();
    switch (special_type(name)) {
      case Special::modified_since:
        node->kind = Node::Kind::modified_since;
        node->since = parse_time_stamp(quoted());
        close_paren();
        return node;
      case Special::base:
        node->kind = Node::Kind::base;
        node->base = quoted();
        close_paren();
        return node;
      case Special::audio_format:
        throw filter_error("AudioFormat filters are not supported");
      case Special::file:
        node->kind = Node::Kind::uri;
        break;
      case Special::any:
        node->kind = Node::Kind::any;
        break;
      case Special::none: {
        const auto tag = parse_tag(name);
        if (!tag) throw filter_error("Unknown filter type: " + name);
        node->kind = Node::Kind::tag;
        node->tag = *tag;
        break;
      }
    }
    node->m = string_match();
    close_paren();
    return node;
  }

  std::string_view s_;
  static constexpr int kMaxDepth = 64;
  bool fold_case_;
  std::size_t i_ = 0;
  int depth_ = 0;
};

// One old-style "TYPE VALUE" pair; `search` matches substrings, case-insensitively.
std::unique_ptr<Node> pair_term(const std::string& type, const std::string& value, bool fold_case) {
  auto node = std::make_unique<Node>();
  switch (special_type(type)) {
    case Special::base:
      if (!uri_safe(value) && !value.empty()) throw filter_error("Bad URI");
      node->kind = Node::Kind::base;
      node->base = value;
      return node;
    case Special::modified_since:
      node->kind = Node::Kind::modified_since;
      node->since = parse_time_stamp(value);
      return node;
    case Special::file: node->kind = Node::Kind::uri; break;
    case Special::any: node->kind = Node::Kind::any; break;
    case Special::audio_format:
    case Special::none: {
      const auto tag = parse_tag(type);
      if (!tag) throw filter_error("Unknown filter type");
      node->kind = Node::Kind::tag;
      node->tag = *tag;
      break;
    }
  }
  node->m = make_match(value, fold_case, fold_case, false);
  return node;
}

}  // namespace

SongFilter::SongFilter() = default;
SongFilter::~SongFilter() = default;
SongFilter::SongFilter(SongFilter&&) noexcept = default;
SongFilter& SongFilter::operator=(SongFilter&&) noexcept = default;

SongFilter SongFilter::parse(const std::vector<std::string>& args, bool fold_case) {
  if (args.empty()) throw filter_error("Incorrect number of filter arguments");
  SongFilter f;
  for (std::size_t i = 0; i < args.size();) {
    if (!args[i].empty() && args[i].front() == '(') {
      f.terms_.push_back(ExpressionParser(args[i], fold_case).parse_all());
      ++i;
      continue;
    }
    if (args.size() - i < 2) throw filter_error("Incorrect number of filter arguments");
    f.terms_.push_back(pair_term(args[i], args[i + 1], fold_case));
    i += 2;
  }
  return f;
}

SongFilter SongFilter::equals(Tag tag, std::string value) {
  SongFilter f;
  auto node = std::make_unique<Node>();
  node->kind = Node::Kind::tag;
  node->tag = tag;
  node->m = make_match(std::move(value), false, false, false);
  f.terms_.push_back(std::move(node));
  return f;
}

bool SongFilter::match(const Song& song) const {
  for (const auto& t : terms_)
    if (!t->match(song)) return false;
  return true;
}

bool SongFilter::empty() const noexcept { return terms_.empty(); }

}  // namespace tuneloop::mpd
