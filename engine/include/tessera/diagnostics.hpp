#pragma once
/// Where a problem is (file:line:column) and a list of problems, so that validation can
/// report every problem at once instead of stopping at the first.
#include <string>
#include <vector>

namespace toml {
inline namespace v3 {
struct source_region;
}
}  // namespace toml

namespace tessera {

/// A place in a workflow file (or "<command line>" for --set overrides).
struct SourcePos {
  std::string file;
  int line = 0;
  int column = 0;
  static SourcePos from(const toml::source_region& region);
  /// "file:line:column", or just "file" when the line is unknown.
  std::string str() const;
};

struct Diagnostic {
  SourcePos where;
  std::string message;
  /// "file:line:column: message"
  std::string str() const;
};

class Diagnostics {
 public:
  void add(SourcePos where, std::string message) { items_.push_back({std::move(where), std::move(message)}); }
  bool empty() const { return items_.empty(); }
  std::size_t size() const { return items_.size(); }
  const std::vector<Diagnostic>& items() const { return items_; }
  /// All problems, one per line, sorted by position.
  std::string str() const;
  /// Throws ConfigError with str() when any problem was recorded.
  void throw_if_any() const;

 private:
  std::vector<Diagnostic> items_;
};

/// Levenshtein edit distance, used to suggest the closest known name.
std::size_t edit_distance(const std::string& a, const std::string& b);
/// The candidate closest to `name`, or "" when none is close enough to be a likely typo.
std::string closest_name(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace tessera
