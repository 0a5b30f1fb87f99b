#pragma once
/// Key figures of a run: small reductions of its per-frame vectors and images, named by the
/// user (e.g. `outliers_found = "sum(fixed_iter_outliers, led_outliers)"`), computed after the
/// last step, written to the output as root attributes `figure_NAME` and listed in a survey's
/// index. The engine gives them no meaning: a figure is whatever the expression reduces.
#include <string>
#include <vector>

#include "tessera/dataset.hpp"

namespace tessera {

struct FigureSpec {
  std::string name;        ///< column / attribute name, e.g. "median_background"
  std::string expression;  ///< "REDUCTION(VAR, ...)": sum, mean, median, min, max, count_nonzero
};

/// Parses "REDUCTION(VAR[, VAR...])"; throws ConfigError naming `where` and the figure.
struct ParsedFigure {
  std::string name, reduction;
  std::vector<std::string> variables;
};
ParsedFigure parse_figure(const FigureSpec& spec, const std::string& where);

/// The figure over the finite values of every named per-frame vector or image (pooled);
/// NaN when there are none. Throws ConfigError when a variable does not exist.
double evaluate_figure(const ParsedFigure& figure, const Dataset& data);

/// Attribute name a figure is stored under in the output: "figure_" + name.
std::string figure_attribute(const std::string& name);

}  // namespace tessera
