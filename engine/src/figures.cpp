#include "tessera/figures.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "tessera/errors.hpp"

namespace tessera {
namespace {

const std::vector<std::string> kReductions = {"sum", "mean", "median", "min", "max", "count_nonzero"};

std::string trimmed(const std::string& text) {
  std::size_t a = 0, b = text.size();
  while (a < b && std::isspace(static_cast<unsigned char>(text[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(text[b - 1]))) --b;
  return text.substr(a, b - a);
}

/// Median of values (reordered in place); the mean of the two middle ones for an even count.
double median_of(std::vector<double>& values) {
  const std::size_t n = values.size(), half = n / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(half), values.end());
  const double upper = values[half];
  if (n % 2) return upper;
  return 0.5 * (upper + *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(half)));
}

}  // namespace

ParsedFigure parse_figure(const FigureSpec& spec, const std::string& where) {
  const std::string expr = trimmed(spec.expression);
  const auto fail = [&](const std::string& why) {
    throw ConfigError(where + ": figure '" + spec.name + "' = \"" + spec.expression + "\": " + why +
                      " (expected REDUCTION(VARIABLE, ...) with REDUCTION one of sum, mean, median, min, max, "
                      "count_nonzero)");
  };
  const std::size_t open = expr.find('(');
  if (open == std::string::npos || expr.back() != ')') fail("no parenthesised variable list");
  ParsedFigure figure;
  figure.name = spec.name;
  figure.reduction = trimmed(expr.substr(0, open));
  if (std::find(kReductions.begin(), kReductions.end(), figure.reduction) == kReductions.end())
    fail("unknown reduction '" + figure.reduction + "'");
  std::string list = expr.substr(open + 1, expr.size() - open - 2);
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const std::string variable = trimmed(list.substr(start, comma - start));
    if (variable.empty()) fail("empty variable name");
    figure.variables.push_back(variable);
    start = comma + 1;
  }
  return figure;
}

double evaluate_figure(const ParsedFigure& figure, const Dataset& data) {
  std::vector<double> values;
  for (const auto& name : figure.variables) {
    if (auto v = data.frame_vectors().find(name); v != data.frame_vectors().end()) {
      for (double x : v->second.values)
        if (std::isfinite(x)) values.push_back(x);
    } else if (auto image = data.images().find(name); image != data.images().end()) {
      for (float x : image->second.values)
        if (std::isfinite(x)) values.push_back(x);
    } else {
      throw ConfigError("figure '" + figure.name + "': no per-frame vector or image named '" + name +
                        "' in this run's results");
    }
  }
  if (figure.reduction == "count_nonzero")
    return static_cast<double>(std::count_if(values.begin(), values.end(), [](double x) { return x != 0; }));
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  if (figure.reduction == "median") return median_of(values);
  if (figure.reduction == "min") return *std::min_element(values.begin(), values.end());
  if (figure.reduction == "max") return *std::max_element(values.begin(), values.end());
  double sum = 0;
  for (double x : values) sum += x;
  return figure.reduction == "sum" ? sum : sum / static_cast<double>(values.size());
}

std::string figure_attribute(const std::string& name) { return "figure_" + name; }

}  // namespace tessera
