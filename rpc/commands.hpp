#pragma once
// The command table: every protocol method is one row — name, parameter schema,
// handler, the version that introduced it and a one-line summary (MPD's command table).
// Parameters are checked against the schema in one place (CommandTable::validate), so a
// handler sees only well-typed, in-range values and may throw RpcError / store errors;
// the dispatcher turns whatever it throws into an error object.
//
// Adding a method (e.g. the loop's `iterate`):
//   table.add({"iterate", {Param::opt("force", JsonType::boolean)},
//              [&](const Params& p, Session&) { ...; return nlohmann::json{...}; },
//              "0.2", "Starts the next iteration now."});
// then document it in docs/protocol.md. Handlers run on the io thread.

#include "rpc/session.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tuneloop::rpc {

enum class JsonType { integer, number, string, boolean, object, array, any };
std::string_view to_string(JsonType type) noexcept;

/// One parameter of a method.
struct Param {
  std::string name;
  JsonType type = JsonType::any;
  bool required = false;
  std::optional<double> min;        // numbers: inclusive bounds
  std::optional<double> max;
  std::optional<double> step;       // numbers: value must be a multiple of step
  std::vector<std::string> one_of;  // strings: allowed values (empty = any)
  std::string doc;

  static Param req(std::string name, JsonType type, std::string doc = {}) {
    Param p;
    p.name = std::move(name);
    p.type = type;
    p.required = true;
    p.doc = std::move(doc);
    return p;
  }
  static Param opt(std::string name, JsonType type, std::string doc = {}) {
    Param p = req(std::move(name), type, std::move(doc));
    p.required = false;
    return p;
  }
  Param& range(double lo, double hi) { min = lo; max = hi; return *this; }
  Param& multiple_of(double s) { step = s; return *this; }
  Param& choices(std::vector<std::string> values) { one_of = std::move(values); return *this; }
};

/// A method's parameters after validation (a JSON object with only known names).
class Params {
 public:
  explicit Params(nlohmann::json object) : j_(std::move(object)) {}
  bool has(const std::string& name) const { return j_.contains(name) && !j_.at(name).is_null(); }
  template <typename T>
  T get(const std::string& name) const { return j_.at(name).get<T>(); }
  template <typename T>
  std::optional<T> opt(const std::string& name) const {
    if (!has(name)) return std::nullopt;
    return j_.at(name).get<T>();
  }
  template <typename T>
  T value(const std::string& name, T fallback) const {
    return has(name) ? j_.at(name).get<T>() : fallback;
  }
  const nlohmann::json& json() const noexcept { return j_; }

 private:
  nlohmann::json j_;
};

using Handler = std::function<nlohmann::json(const Params&, Session&)>;

struct Command {
  std::string name;
  std::vector<Param> params;
  Handler handler;
  std::string since = "0.1";  // the protocol version that introduced the method
  std::string summary;
};

class CommandTable {
 public:
  /// Adds a row. Throws std::logic_error if the name is taken (a programming error).
  void add(Command command);
  /// nullptr if there is no such method.
  const Command* find(const std::string& name) const;
  const std::map<std::string, Command>& all() const noexcept { return commands_; }

  /// Checks `params` (absent/null, an object, or an array taken positionally in schema
  /// order) against the row's schema and returns them as an object.
  /// Throws RpcError(invalid_params) naming the parameter and what was wrong.
  static Params validate(const Command& command, const nlohmann::json& params);

 private:
  std::map<std::string, Command> commands_;
};

}  // namespace tuneloop::rpc
