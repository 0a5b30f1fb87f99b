#pragma once
/// Step and input parameters, declared once.
///
/// A parameter struct lists its fields in one `schema()`; that declaration binds TOML
/// values (types, ranges, choices, unknown keys), prints help, generates docs and writes
/// provenance. Example:
/// ```cpp
/// struct MyParams {
///   double threshold = 3.5;
///   static auto schema() {
///     return tessera::schema<MyParams>(tessera::field(&MyParams::threshold, "threshold",
///         "Clip at this many sigma", tessera::Range::above(0)));
///   }
/// };
/// ```
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tessera/diagnostics.hpp"

namespace toml {
inline namespace v3 {
class node;
class table;
}  // namespace v3
}  // namespace toml

namespace tessera {

/// Allowed interval for numbers (applied to every element of a list).
struct Range {
  std::optional<double> lo, hi;
  bool lo_open = false, hi_open = false;
  static Range closed(double lo, double hi) { return {lo, hi, false, false}; }
  static Range at_least(double lo) { return {lo, std::nullopt, false, false}; }
  static Range above(double lo) { return {lo, std::nullopt, true, false}; }
  bool contains(double v) const;
  /// e.g. "> 0", "in [1, 100]"
  std::string str() const;
};

/// Allowed values for strings.
struct Choices {
  std::vector<std::string> values;
  std::string str() const;
};

/// Marks a parameter that has no default and must be given.
struct Required {};

/// What help, docs and provenance show of one parameter.
struct ParamDoc {
  std::string name;
  std::string type;        ///< e.g. "number", "list of numbers", "integer or unset"
  std::string default_text;///< TOML text of the default, "unset", or "(required)"
  std::string constraint;  ///< e.g. "> 0", "one of: std, mad"; may be empty
  std::string doc;         ///< one line
  bool required = false;
};

/// Parsing and printing of one parameter type. Specialised in params.cpp for:
/// bool, std::int64_t, double, std::string, std::vector<double>, std::vector<std::int64_t>,
/// std::vector<std::string>, std::vector<std::vector<double>>, and std::optional of each.
template <class T>
struct ParamType {
  static const char* name();
  /// Converts a TOML value; on failure returns nullopt and sets `why`.
  static std::optional<T> parse(const toml::node& node, std::string& why);
  static std::string to_toml(const T& value);
  /// Numbers inside the value, for range checks.
  static std::vector<double> numbers(const T& value);
  /// Strings inside the value, for choice checks.
  static std::vector<std::string> strings(const T& value);
};

/// One field of a parameter struct P, type-erased.
template <class P>
struct Field {
  ParamDoc doc;
  /// Reads the TOML value into p, recording problems in diagnostics.
  std::function<void(P& p, const toml::node& node, Diagnostics& diagnostics, const std::string& context)> bind;
  /// TOML text of the field's current value in p ("unset" for an empty optional).
  std::function<std::string(const P& p)> value_text;
};

namespace detail {
struct Constraints {
  std::optional<Range> range;
  std::optional<Choices> choices;
  bool required = false;
  void apply(const Range& r) { range = r; }
  void apply(const Choices& c) { choices = c; }
  void apply(Required) { required = true; }
};
/// Returns a message for a value that breaks a constraint, or "".
std::string check(const Constraints& c, const std::vector<double>& numbers, const std::vector<std::string>& strings);
std::string constraint_text(const Constraints& c);
SourcePos node_pos(const toml::node& node);
}  // namespace detail

/// Declares one parameter: member pointer, TOML key, one-line doc, optional Range/Choices/Required.
template <class P, class T, class... C>
Field<P> field(T P::*member, std::string name, std::string doc, C... constraint_args) {
  detail::Constraints constraints;
  (constraints.apply(constraint_args), ...);
  Field<P> f;
  f.doc.name = name;
  f.doc.type = ParamType<T>::name();
  f.doc.constraint = detail::constraint_text(constraints);
  f.doc.doc = std::move(doc);
  f.doc.required = constraints.required;
  f.doc.default_text = constraints.required ? "(required)" : ParamType<T>::to_toml(P{}.*member);
  f.bind = [member, name, constraints](P& p, const toml::node& node, Diagnostics& diagnostics,
                                        const std::string& context) {
    std::string why;
    std::optional<T> value = ParamType<T>::parse(node, why);
    if (!value) {
      diagnostics.add(detail::node_pos(node), context + name + ": expected " + ParamType<T>::name() + why);
      return;
    }
    std::string problem = detail::check(constraints, ParamType<T>::numbers(*value), ParamType<T>::strings(*value));
    if (!problem.empty()) {
      diagnostics.add(detail::node_pos(node), context + name + ": " + problem + ", got " + ParamType<T>::to_toml(*value));
      return;
    }
    p.*member = std::move(*value);
  };
  f.value_text = [member](const P& p) { return ParamType<T>::to_toml(p.*member); };
  return f;
}

/// The ordered fields of a parameter struct.
template <class P>
class Schema {
 public:
  explicit Schema(std::vector<Field<P>> fields) : fields_(std::move(fields)) {}
  const std::vector<Field<P>>& fields() const { return fields_; }

  std::vector<ParamDoc> docs() const {
    std::vector<ParamDoc> out;
    for (const auto& f : fields_) out.push_back(f.doc);
    return out;
  }

  /// Binds the keys of `table` other than `reserved` (e.g. id, uses, after). Unknown keys,
  /// wrong types, out-of-range values and missing required keys go to `diagnostics`, each
  /// prefixed with `context` (e.g. "step 'clip': ") and located at the offending line.
  P bind(const toml::table& table, const std::vector<std::string>& reserved, Diagnostics& diagnostics,
         const std::string& context) const;

  /// (name, TOML text) of every field, defaults included, in declaration order.
  std::vector<std::pair<std::string, std::string>> resolved(const P& p) const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& f : fields_) out.emplace_back(f.doc.name, f.value_text(p));
    return out;
  }

 private:
  std::vector<Field<P>> fields_;
};

template <class P, class... F>
Schema<P> schema(F&&... fields) {
  return Schema<P>(std::vector<Field<P>>{std::forward<F>(fields)...});
}

namespace detail {
/// Shared part of Schema::bind that does not depend on P: visits each key of the table.
/// `known` are the field names; `visit(index, node)` binds field `index`.
void bind_table(const toml::table& table, const std::vector<std::string>& known, const std::vector<bool>& required,
                const std::vector<std::string>& reserved, Diagnostics& diagnostics, const std::string& context,
                const std::function<void(std::size_t, const toml::node&)>& visit);
}  // namespace detail

template <class P>
P Schema<P>::bind(const toml::table& table, const std::vector<std::string>& reserved, Diagnostics& diagnostics,
                  const std::string& context) const {
  P p{};
  std::vector<std::string> known;
  std::vector<bool> required;
  for (const auto& f : fields_) {
    known.push_back(f.doc.name);
    required.push_back(f.doc.required);
  }
  detail::bind_table(table, known, required, reserved, diagnostics, context,
                     [&](std::size_t i, const toml::node& node) { fields_[i].bind(p, node, diagnostics, context); });
  return p;
}

}  // namespace tessera
