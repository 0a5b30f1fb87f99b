#include "tessera/plan.hpp"

#include <cstdio>
#include <map>
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
  // Bytes each cube holds per pixel and frame: element size times groups for grouped cubes.
  // (Shapes as read: a step that resamples the frame axis is not followed here.)
  std::map<std::string, std::size_t> cubes;
  auto bytes_of = [&](const DataOut& c) {
    return (c.type == ElementType::UInt8 ? std::size_t{1} : std::size_t{4}) * (c.grouped ? shape.ng : 1);
  };
  if (wf.input)
    for (const auto& c : wf.input->cubes()) cubes.emplace(c.info.name, bytes_of(c));
  Layout current = Layout::Frames;
  Partition frames = partition_for(Layout::Frames, shape, nranks, wf.engine);
  Partition tiles = partition_for(Layout::PixelTiles, shape, nranks, wf.engine);
  const std::size_t moved_pixels = Partition::elements_moved(frames, tiles);
  for (std::size_t index : wf.order) {
    const auto& step = wf.steps[index];
    const StepIO io = step.instance->io();
    // Cubes a step creates exist from its first phase on.
    for (const auto& w : io.writes)
      if (w.kind == DataKind::Cube) cubes.emplace(w.info.name, bytes_of(w));
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
        for (const auto& [name, bytes] : cubes) stage.bytes_moved += moved_pixels * bytes;
        current = stage.layout;
      }
      plan.stages.push_back(stage);
    }
    for (const auto& name : io.removes) cubes.erase(name);
  }
  plan.output_layout = current;
  return plan;
}

std::string Plan::str(const Workflow& wf) const {
  std::string out;
  char line[512];
  const double samples = static_cast<double>(shape.elements());
  const std::string groups = shape.ng > 1 ? " of " + std::to_string(shape.ng) + " groups" : "";
  std::snprintf(line, sizeof line, "plan for %s on %d rank%s: %zu frames%s of %zu x %zu pixels (%.3g pixel-samples)\n",
                wf.file.c_str(), nranks, nranks == 1 ? "" : "s", shape.nt, groups.c_str(), shape.ny, shape.nx, samples);
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
