#include "tessera/plan.hpp"

#include <cstdio>
#include <set>

namespace tessera {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) {
    bytes /= 1000;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return text;
}

Partition partition_for(Layout layout, const CubeShape& shape, int nranks, const EngineSettings& engine) {
  if (layout == Layout::Frames) return Partition::frames(shape, nranks);
  return Partition::tiles(shape, nranks, static_cast<std::size_t>(engine.tile_ny),
                          static_cast<std::size_t>(engine.tile_nx));
}

Layout layout_for(Access access, Layout current) {
  switch (access) {
    case Access::Frames: return Layout::Frames;
    case Access::Pixels: return Layout::PixelTiles;
    case Access::Reduce: return current;
  }
  return current;
}

std::size_t Plan::total_bytes_moved() const {
  std::size_t total = 0;
  for (const auto& s : stages) total += s.bytes_moved;
  return total;
}

Plan make_plan(const Workflow& wf, const CubeShape& shape, int nranks) {
  Plan plan;
  plan.shape = shape;
  plan.nranks = nranks;
  plan.engine = wf.engine;
  std::set<std::string> cubes;
  if (wf.input)
    for (const auto& c : wf.input->cubes()) cubes.insert(c.info.name);
  Layout current = Layout::Frames;
  Partition frames = partition_for(Layout::Frames, shape, nranks, wf.engine);
  Partition tiles = partition_for(Layout::PixelTiles, shape, nranks, wf.engine);
  const std::size_t moved_per_cube = Partition::elements_moved(frames, tiles) * 4;  // all cube types are 4 bytes
  for (std::size_t index : wf.order) {
    const auto& step = wf.steps[index];
    // Cubes a step creates exist from its first phase on.
    for (const auto& w : step.instance->io().writes)
      if (w.kind == DataKind::Cube) cubes.insert(w.info.name);
    const auto phases = step.instance->phases();
    for (std::size_t phase = 0; phase < phases.size(); ++phase) {
      PlanStage stage;
      stage.step = index;
      stage.phase = phase;
      stage.phases = phases.size();
      stage.access = phases[phase];
      stage.layout = layout_for(stage.access, current);
      stage.cubes = cubes.size();
      if (stage.layout != current) {
        stage.transpose_before = true;
        stage.bytes_moved = moved_per_cube * cubes.size();
        current = stage.layout;
      }
      plan.stages.push_back(stage);
    }
  }
  plan.output_layout = current;
  return plan;
}

std::string Plan::str(const Workflow& wf) const {
  std::string out;
  char line[512];
  const double samples = static_cast<double>(shape.elements());
  std::snprintf(line, sizeof line, "plan for %s on %d rank%s: %zu frames of %zu x %zu pixels (%.3g pixel-samples)\n",
                wf.file.c_str(), nranks, nranks == 1 ? "" : "s", shape.nt, shape.ny, shape.nx, samples);
  out += line;
  Partition frames = partition_for(Layout::Frames, shape, nranks, engine);
  Partition tiles = partition_for(Layout::PixelTiles, shape, nranks, engine);
  std::snprintf(line, sizeof line, "  read    %-16s %-14s into frame slabs (%zu frames per rank at most)\n",
                wf.input_kind.c_str(), "", frames.frame_end(0) - frames.frame_begin(0));
  out += line;
  for (const auto& stage : stages) {
    const auto& step = wf.steps[stage.step];
    if (stage.transpose_before) {
      const bool to_tiles = stage.layout == Layout::PixelTiles;
      std::snprintf(line, sizeof line, "  move    %s -> %s: %zu cube%s, %s between ranks\n",
                    to_tiles ? "frames" : tiles.describe().c_str(), to_tiles ? tiles.describe().c_str() : "frames",
                    stage.cubes, stage.cubes == 1 ? "" : "s", human_bytes(static_cast<double>(stage.bytes_moved)).c_str());
      out += line;
    }
    const std::string id = stage.phases > 1 ? step.id + " (" + std::to_string(stage.phase + 1) + "/" +
                                                  std::to_string(stage.phases) + ")"
                                            : step.id;
    std::snprintf(line, sizeof line, "  step    %-16s %-14s access %-7s in %s\n", id.c_str(), step.uses.c_str(),
                  to_string(stage.access).c_str(),
                  stage.layout == Layout::Frames ? "frames" : tiles.describe().c_str());
    out += line;
  }
  std::snprintf(line, sizeof line, "  write   %s from %s (collective parallel HDF5)\n",
                wf.output.save ? wf.output_path.c_str() : "nothing ([output] save = false)",
                output_layout == Layout::Frames ? "frames" : tiles.describe().c_str());
  out += line;
  std::snprintf(line, sizeof line, "transposes move %s in total; each round buffers at most %.0f MiB per rank\n",
                human_bytes(static_cast<double>(total_bytes_moved())).c_str(), engine.transpose_chunk_mb);
  out += line;
  return out;
}

}  // namespace tessera
