#include "tessera/params.hpp"

#include <toml++/toml.h>

#include <charconv>
#include <cmath>
#include <sstream>

namespace tessera {

namespace {

std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // Shortest text that reads back as the same double (0.1, not 0.10000000000000001).
  char buffer[64];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, v).ptr;
  std::string t(buffer, end);
  // Keep TOML floats recognisable as floats.
  if (t.find_first_of(".eEn") == std::string::npos) t += ".0";
  return t;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

template <class T, class F>
std::string join_list(const std::vector<T>& values, F&& format) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + format(values[i]);
  return out + "]";
}

std::string kind_of(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "a list";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

/// ", got a string" etc.
std::string got(const toml::node& node) { return ", got " + kind_of(node); }

std::optional<double> as_number(const toml::node& node) {
  if (auto i = node.as_integer()) return static_cast<double>(i->get());
  if (auto f = node.as_floating_point()) return f->get();
  return std::nullopt;
}

template <class T, class Element>
std::optional<std::vector<T>> parse_list(const toml::node& node, std::string& why, Element&& element) {
  const toml::array* array = node.as_array();
  if (!array) {
    why = got(node);
    return std::nullopt;
  }
  std::vector<T> out;
  for (std::size_t i = 0; i < array->size(); ++i) {
    std::string inner;
    auto v = element((*array)[i], inner);
    if (!v) {
      why = " (element " + std::to_string(i) + inner + ")";
      return std::nullopt;
    }
    out.push_back(*v);
  }
  return out;
}

bool is_unset_word(const toml::node& node) {
  auto s = node.as_string();
  return s && (s->get() == "none" || s->get() == "None" || s->get() == "unset");
}

}  // namespace

// ---- scalar types ----
template <>
const char* ParamType<bool>::name() { return "a boolean"; }
template <>
std::optional<bool> ParamType<bool>::parse(const toml::node& node, std::string& why) {
  if (auto b = node.as_boolean()) return b->get();
  why = got(node);
  return std::nullopt;
}
template <>
std::string ParamType<bool>::to_toml(const bool& v) { return v ? "true" : "false"; }
template <>
std::vector<double> ParamType<bool>::numbers(const bool&) { return {}; }
template <>
std::vector<std::string> ParamType<bool>::strings(const bool&) { return {}; }

template <>
const char* ParamType<std::int64_t>::name() { return "an integer"; }
template <>
std::optional<std::int64_t> ParamType<std::int64_t>::parse(const toml::node& node, std::string& why) {
  if (auto i = node.as_integer()) return i->get();
  if (auto f = node.as_floating_point()) {
    double v = f->get();
    if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 9.0e15) return static_cast<std::int64_t>(v);
  }
  why = got(node);
  return std::nullopt;
}
template <>
std::string ParamType<std::int64_t>::to_toml(const std::int64_t& v) { return std::to_string(v); }
template <>
std::vector<double> ParamType<std::int64_t>::numbers(const std::int64_t& v) { return {static_cast<double>(v)}; }
template <>
std::vector<std::string> ParamType<std::int64_t>::strings(const std::int64_t&) { return {}; }

template <>
const char* ParamType<double>::name() { return "a number"; }
template <>
std::optional<double> ParamType<double>::parse(const toml::node& node, std::string& why) {
  if (auto v = as_number(node)) return v;
  why = got(node);
  return std::nullopt;
}
template <>
std::string ParamType<double>::to_toml(const double& v) { return format_number(v); }
template <>
std::vector<double> ParamType<double>::numbers(const double& v) { return {v}; }
template <>
std::vector<std::string> ParamType<double>::strings(const double&) { return {}; }

template <>
const char* ParamType<std::string>::name() { return "a string"; }
template <>
std::optional<std::string> ParamType<std::string>::parse(const toml::node& node, std::string& why) {
  if (auto s = node.as_string()) return s->get();
  why = got(node);
  return std::nullopt;
}
template <>
std::string ParamType<std::string>::to_toml(const std::string& v) { return quote(v); }
template <>
std::vector<double> ParamType<std::string>::numbers(const std::string&) { return {}; }
template <>
std::vector<std::string> ParamType<std::string>::strings(const std::string& v) { return {v}; }

// ---- lists ----
#define TESSERA_LIST_TYPE(T, NAME)                                                                           \
  template <>                                                                                                \
  const char* ParamType<std::vector<T>>::name() { return NAME; }                                            \
  template <>                                                                                                \
  std::optional<std::vector<T>> ParamType<std::vector<T>>::parse(const toml::node& node, std::string& why) { \
    return parse_list<T>(node, why, [](const toml::node& n, std::string& w) { return ParamType<T>::parse(n, w); }); \
  }                                                                                                          \
  template <>                                                                                                \
  std::string ParamType<std::vector<T>>::to_toml(const std::vector<T>& v) {                                  \
    return join_list(v, [](const T& e) { return ParamType<T>::to_toml(e); });                               \
  }                                                                                                          \
  template <>                                                                                                \
  std::vector<double> ParamType<std::vector<T>>::numbers(const std::vector<T>& v) {                          \
    std::vector<double> out;                                                                                 \
    for (const auto& e : v)                                                                                  \
      for (double x : ParamType<T>::numbers(e)) out.push_back(x);                                            \
    return out;                                                                                              \
  }                                                                                                          \
  template <>                                                                                                \
  std::vector<std::string> ParamType<std::vector<T>>::strings(const std::vector<T>& v) {                     \
    std::vector<std::string> out;                                                                            \
    for (const auto& e : v)                                                                                  \
      for (auto& x : ParamType<T>::strings(e)) out.push_back(x);                                             \
    return out;                                                                                              \
  }

TESSERA_LIST_TYPE(double, "a list of numbers")
TESSERA_LIST_TYPE(std::int64_t, "a list of integers")
TESSERA_LIST_TYPE(std::string, "a list of strings")
TESSERA_LIST_TYPE(std::vector<double>, "a list of lists of numbers")

// ---- optionals: a missing key, or the string "none", means unset ----
#define TESSERA_OPTIONAL_TYPE(T, NAME)                                                                          \
  template <>                                                                                                   \
  const char* ParamType<std::optional<T>>::name() { return NAME; }                                             \
  template <>                                                                                                   \
  std::optional<std::optional<T>> ParamType<std::optional<T>>::parse(const toml::node& node, std::string& why) { \
    if (is_unset_word(node)) return std::optional<T>{};                                                         \
    auto v = ParamType<T>::parse(node, why);                                                                    \
    if (!v) return std::nullopt;                                                                                \
    return std::optional<T>{*v};                                                                                \
  }                                                                                                             \
  template <>                                                                                                   \
  std::string ParamType<std::optional<T>>::to_toml(const std::optional<T>& v) {                                 \
    return v ? ParamType<T>::to_toml(*v) : "unset";                                                             \
  }                                                                                                             \
  template <>                                                                                                   \
  std::vector<double> ParamType<std::optional<T>>::numbers(const std::optional<T>& v) {                         \
    return v ? ParamType<T>::numbers(*v) : std::vector<double>{};                                               \
  }                                                                                                             \
  template <>                                                                                                   \
  std::vector<std::string> ParamType<std::optional<T>>::strings(const std::optional<T>& v) {                    \
    return v ? ParamType<T>::strings(*v) : std::vector<std::string>{};                                          \
  }

TESSERA_OPTIONAL_TYPE(std::int64_t, "an integer or \"none\"")
TESSERA_OPTIONAL_TYPE(double, "a number or \"none\"")
TESSERA_OPTIONAL_TYPE(std::string, "a string or \"none\"")
TESSERA_OPTIONAL_TYPE(std::vector<double>, "a list of numbers or \"none\"")
TESSERA_OPTIONAL_TYPE(std::vector<std::vector<double>>, "a list of lists of numbers or \"none\"")
TESSERA_OPTIONAL_TYPE(std::vector<std::int64_t>, "a list of integers or \"none\"")
TESSERA_OPTIONAL_TYPE(std::vector<std::string>, "a list of strings or \"none\"")

// ---- constraints ----
bool Range::contains(double v) const {
  if (std::isnan(v)) return false;
  if (lo && (lo_open ? !(v > *lo) : !(v >= *lo))) return false;
  if (hi && (hi_open ? !(v < *hi) : !(v <= *hi))) return false;
  return true;
}

std::string Range::str() const {
  if (lo && hi) {
    return std::string("in ") + (lo_open ? "(" : "[") + format_number(*lo) + ", " + format_number(*hi) +
           (hi_open ? ")" : "]");
  }
  if (lo) return (lo_open ? "> " : ">= ") + format_number(*lo);
  if (hi) return (hi_open ? "< " : "<= ") + format_number(*hi);
  return "";
}

std::string Choices::str() const {
  std::string out = "one of: ";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + values[i];
  return out;
}

namespace detail {

std::string check(const Constraints& c, const std::vector<double>& numbers, const std::vector<std::string>& strings) {
  if (c.range) {
    for (double v : numbers)
      if (!c.range->contains(v)) return "expected a value " + c.range->str();
  }
  if (c.choices) {
    for (const auto& s : strings) {
      bool ok = false;
      for (const auto& allowed : c.choices->values) ok = ok || allowed == s;
      if (!ok) return "expected " + c.choices->str();
    }
  }
  return "";
}

std::string constraint_text(const Constraints& c) {
  std::string out;
  if (c.range) out += c.range->str();
  if (c.choices) out += (out.empty() ? "" : "; ") + c.choices->str();
  return out;
}

SourcePos node_pos(const toml::node& node) { return SourcePos::from(node.source()); }

void bind_table(const toml::table& table, const std::vector<std::string>& known, const std::vector<bool>& required,
                const std::vector<std::string>& reserved, Diagnostics& diagnostics, const std::string& context,
                const std::function<void(std::size_t, const toml::node&)>& visit) {
  std::vector<bool> seen(known.size(), false);
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    bool is_reserved = false;
    for (const auto& r : reserved) is_reserved = is_reserved || r == name;
    if (is_reserved) continue;
    std::size_t index = known.size();
    for (std::size_t i = 0; i < known.size(); ++i)
      if (known[i] == name) index = i;
    if (index == known.size()) {
      std::vector<std::string> candidates = known;
      candidates.insert(candidates.end(), reserved.begin(), reserved.end());
      std::string suggestion = closest_name(name, candidates);
      std::string message = context + "unknown parameter '" + name + "'";
      if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
      diagnostics.add(SourcePos::from(key.source()), message);
      continue;
    }
    seen[index] = true;
    visit(index, node);
  }
  for (std::size_t i = 0; i < known.size(); ++i) {
    if (required[i] && !seen[i])
      diagnostics.add(SourcePos::from(table.source()), context + "missing required parameter '" + known[i] + "'");
  }
}

}  // namespace detail
}  // namespace tessera
