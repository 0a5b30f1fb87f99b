#pragma once
/// A workflow file: TOML → validated steps → a Boost.Graph DAG in topological order.
///
/// ```toml
/// [workflow]
/// name = "smoke"
/// [input]
/// kind = "hst_flt_dir"
/// path = "sim"
/// [output]
/// path = "out/smoke.h5"
/// [[step]]
/// id = "clip"
/// uses = "fixed_iter"
/// sigmas = [5.0, 5.0]
/// ```
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tessera/diagnostics.hpp"
#include "tessera/registry.hpp"

namespace tessera {

/// One `[[step]]` table.
struct WorkflowStep {
  std::string id;
  std::string uses;
  std::vector<std::string> after;  ///< ids it depends on (default: the previous step)
  bool enabled = true;
  bool checkpoint = false;         ///< write the visit's state to a checkpoint file after this step
  SourcePos where;                 ///< the table's position
  const StepInfo* info = nullptr;
  std::unique_ptr<StepInstance> instance;
};

/// Engine settings from the optional `[engine]` table.
struct EngineSettings {
  std::int64_t tile_ny = 64;            ///< pixel tile height
  std::int64_t tile_nx = 256;           ///< pixel tile width
  double transpose_chunk_mb = 64;       ///< bound on each all-to-all round's send buffer
};

/// The `[output]` table. Paths may use placeholders `{input.KEY}`, `{output.KEY}` and
/// `{workflow.KEY}`, replaced by that key's value (e.g. "{input.path}/outputs/stage1/{output.run}/clean_obs.h5").
struct OutputSettings {
  std::string path;              ///< HDF5 file (placeholders replaced)
  std::string run;               ///< name of this run, for placeholders (template: output_run)
  bool save = true;              ///< write the HDF5 file (template: do_save)
  std::string plots = "plots";   ///< plots directory, relative to the output file's directory
  std::int64_t save_plots = 1;   ///< 0 none, 1 the main diagnostics, 2 all
  std::int64_t show_plots = 0;   ///< as save_plots; plots are written, never shown (nothing blocks)
  bool copy_workflow = true;     ///< write the resolved workflow next to the output
  /// Directory plots go to ("" when none are wanted).
  std::string plots_directory() const;
  /// Where the copy of the workflow goes: OUTPUT_STEM.workflow.toml next to the output.
  std::string workflow_copy_path() const;
  int plot_level() const { return static_cast<int>(std::max(save_plots, show_plots)); }
};

struct Workflow {
  std::string file;        ///< path as given
  std::string text;        ///< the file's TOML text (for provenance)
  std::vector<std::string> overrides;  ///< --set arguments applied
  std::string name, description;
  std::string input_kind;
  std::unique_ptr<FrameSource> input;
  std::vector<DataOut> input_provides;
  std::string output_path;  ///< output.path, kept for brevity
  OutputSettings output;
  std::optional<std::int64_t> verbose;  ///< [workflow] verbose (0, 1, 2); the command line's -q/-v win
  std::string visit;                    ///< [workflow] visit: the directory {workflow.visit} stands for
  EngineSettings engine;
  std::vector<WorkflowStep> steps;  ///< in file order
  std::vector<std::size_t> order;   ///< indices into steps, topological, enabled steps only

  /// The resolved workflow as TOML: every step with every parameter, defaults included.
  std::string resolved_toml() const;
};

/// Parses and validates a workflow. `overrides` are "STEP.PARAM=VALUE" strings (`--set`).
/// Every problem found is reported at once: throws ConfigError whose message has one
/// "file:line:column: problem" line per problem.
Workflow load_workflow(const std::string& path, const std::vector<std::string>& overrides, const Registry& registry);
/// Same, from text already in memory (`path` is used for messages).
Workflow parse_workflow(const std::string& text, const std::string& path, const std::vector<std::string>& overrides,
                        const Registry& registry);

/// Graphviz DOT of the workflow's DAG, each node labelled with its kind and access pattern.
std::string workflow_dot(const Workflow& workflow);

}  // namespace tessera
