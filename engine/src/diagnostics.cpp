#include "tessera/diagnostics.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <numeric>

#include "tessera/errors.hpp"

namespace tessera {

SourcePos SourcePos::from(const toml::source_region& region) {
  SourcePos pos;
  if (region.path) pos.file = *region.path;
  pos.line = static_cast<int>(region.begin.line);
  pos.column = static_cast<int>(region.begin.column);
  return pos;
}

std::string SourcePos::str() const {
  std::string s = file.empty() ? std::string("<workflow>") : file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  return s;
}

std::string Diagnostic::str() const { return where.str() + ": " + message; }

std::string Diagnostics::str() const {
  std::vector<Diagnostic> sorted = items_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.where.file != b.where.file) return a.where.file < b.where.file;
    if (a.where.line != b.where.line) return a.where.line < b.where.line;
    return a.where.column < b.where.column;
  });
  std::string out;
  for (const auto& d : sorted) out += d.str() + "\n";
  return out;
}

void Diagnostics::throw_if_any() const {
  if (empty()) return;
  std::string text = str();
  if (!text.empty() && text.back() == '\n') text.pop_back();
  throw ConfigError(text);
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string closest_name(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(3, name.size() / 3) + 1;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(name, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

}  // namespace tessera
