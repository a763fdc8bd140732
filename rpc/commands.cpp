#include "rpc/commands.hpp"

#include "rpc/errors.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace tuneloop::rpc {

std::string_view to_string(JsonType type) noexcept {
  switch (type) {
    case JsonType::integer: return "integer";
    case JsonType::number: return "number";
    case JsonType::string: return "string";
    case JsonType::boolean: return "boolean";
    case JsonType::object: return "object";
    case JsonType::array: return "array";
    case JsonType::any: return "any";
  }
  return "any";
}

void CommandTable::add(Command command) {
  if (commands_.count(command.name))
    throw std::logic_error("command table: method '" + command.name + "' added twice");
  std::string name = command.name;
  commands_.emplace(std::move(name), std::move(command));
}

const Command* CommandTable::find(const std::string& name) const {
  auto it = commands_.find(name);
  return it == commands_.end() ? nullptr : &it->second;
}

namespace {

// Whether an integer-valued number is a 64-bit signed integer (1e300 and 2^64 - 1 are not:
// converting them would be undefined or wrap to another id). A double of exactly -2^63 is
// refused too: the parser stores an integer literal as a double only when it does not fit,
// and -9223372036854775809 rounds to that double.
bool fits_int64(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX);
  if (v.is_number_float()) return v.get<double>() > -0x1p63 && v.get<double>() < 0x1p63;
  return true;
}

bool has_type(const nlohmann::json& v, JsonType type) {
  switch (type) {
    case JsonType::integer:
      if (v.is_number_integer()) return true;
      // 3.0 is accepted as an integer; 3.5 is not.
      return v.is_number_float() && std::isfinite(v.get<double>()) &&
             std::floor(v.get<double>()) == v.get<double>();
    case JsonType::number: return v.is_number();
    case JsonType::string: return v.is_string();
    case JsonType::boolean: return v.is_boolean();
    case JsonType::object: return v.is_object();
    case JsonType::array: return v.is_array();
    case JsonType::any: return true;
  }
  return false;
}

std::string type_name(const nlohmann::json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();
}

std::string expected_names(const Command& c) {
  std::string s;
  for (const auto& p : c.params) s += (s.empty() ? "" : ", ") + p.name;
  return s.empty() ? "none" : s;
}

RpcError bad_param(const Command& c, const std::string& param, const std::string& what) {
  return RpcError(ErrorCode::invalid_params,
                  "parameter '" + param + "' " + what, {{"param", param}});
}

}  // namespace

Params CommandTable::validate(const Command& c, const nlohmann::json& params) {
  nlohmann::json obj = nlohmann::json::object();
  if (params.is_null()) {
    // no parameters given
  } else if (params.is_object()) {
    obj = params;
  } else if (params.is_array()) {
    if (params.size() > c.params.size())
      throw RpcError(ErrorCode::invalid_params,
                     "takes at most " + std::to_string(c.params.size()) +
                         " positional parameter(s) (" + expected_names(c) + "), got " +
                         std::to_string(params.size()));
    for (std::size_t i = 0; i < params.size(); ++i) obj[c.params[i].name] = params[i];
  } else {
    throw RpcError(ErrorCode::invalid_request,
                   "'params' must be an object or an array, not " + type_name(params));
  }

  for (const auto& [key, value] : obj.items()) {
    bool known = false;
    for (const auto& p : c.params) known = known || p.name == key;
    if (!known)
      throw bad_param(c, key, "is not known (expected: " + expected_names(c) + ")");
  }

  for (const auto& p : c.params) {
    auto it = obj.find(p.name);
    if (it == obj.end() || it->is_null()) {
      if (p.required) throw bad_param(c, p.name, "is required (" + std::string(to_string(p.type)) + ")");
      continue;
    }
    const auto& v = *it;
    if (!has_type(v, p.type))
      throw bad_param(c, p.name, "must be " + std::string(to_string(p.type)) + ", not " + type_name(v));
    if (p.type == JsonType::integer && !fits_int64(v))
      throw bad_param(c, p.name, "is out of range for an integer, not " + v.dump());
    if (p.type == JsonType::integer && v.is_number_float()) *it = static_cast<std::int64_t>(v.get<double>());
    if (v.is_number()) {
      const double x = v.get<double>();
      if ((p.min && x < *p.min) || (p.max && x > *p.max)) {
        nlohmann::json lo = p.min ? nlohmann::json(*p.min) : nlohmann::json("-inf");
        nlohmann::json hi = p.max ? nlohmann::json(*p.max) : nlohmann::json("inf");
        throw bad_param(c, p.name, "must be between " + lo.dump() + " and " + hi.dump() +
                                        ", not " + v.dump());
      }
      if (p.step) {
        const double q = x / *p.step;
        if (std::fabs(q - std::round(q)) > 1e-9)
          throw bad_param(c, p.name, "must be a multiple of " + nlohmann::json(*p.step).dump() +
                                          ", not " + v.dump());
      }
    }
    if (v.is_string() && !p.one_of.empty()) {
      bool ok = false;
      std::string list;
      for (const auto& o : p.one_of) {
        ok = ok || o == v.get<std::string>();
        list += (list.empty() ? "" : "|") + o;
      }
      if (!ok) throw bad_param(c, p.name, "must be one of " + list + ", not " + v.dump());
    }
  }
  return Params(std::move(obj));
}

}  // namespace tuneloop::rpc
