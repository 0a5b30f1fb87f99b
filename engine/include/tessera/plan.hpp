#pragma once
/// The execution plan: which layout each step runs in, where transposes happen and how
/// many bytes they move. Made from the workflow and the cube shape alone, before any
/// pixel is read.
#include <string>
#include <vector>

#include "tessera/partition.hpp"
#include "tessera/workflow.hpp"

namespace tessera {

struct PlanStage {
  std::size_t step = 0;            ///< index into Workflow::steps
  std::size_t phase = 0, phases = 1;  ///< which phase of the step (most steps have one)
  Access access = Access::Frames;
  Layout layout = Layout::Frames;  ///< layout the step runs in
  bool transpose_before = false;
  std::size_t bytes_moved = 0;     ///< by the transpose before it, all ranks together
  std::size_t cubes = 0;           ///< cubes that exist when it runs
};

struct Plan {
  CubeShape shape;
  int nranks = 1;
  EngineSettings engine;
  std::vector<PlanStage> stages;
  Layout output_layout = Layout::Frames;
  std::size_t total_bytes_moved() const;
  /// Human-readable plan, one line per step.
  std::string str(const Workflow& workflow) const;
};

/// The partition the engine uses for a layout.
Partition partition_for(Layout layout, const CubeShape& shape, int nranks, const EngineSettings& engine);
/// The layout a step with this access runs in, given the current one.
Layout layout_for(Access access, Layout current);

Plan make_plan(const Workflow& workflow, const CubeShape& shape, int nranks);

/// "1.5 GB", "12.0 MB", "512 B"
std::string human_bytes(double bytes);

}  // namespace tessera
