#pragma once
/// The sbatch templates of slurm/templates/, embedded in the program at build time (so the
/// installed binary needs no source tree).
#include <string_view>
#include <utility>
#include <vector>

namespace tessera::app {

/// (file name, text) of every slurm/templates/*.sbatch, sorted by name.
const std::vector<std::pair<std::string_view, std::string_view>>& slurm_templates();
/// The text of one template; throws std::out_of_range when there is none of that name.
std::string_view slurm_template(std::string_view name);

}  // namespace tessera::app
