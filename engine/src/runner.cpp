#include "tessera/runner.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "tessera/checkpoint.hpp"
#include "tessera/collective.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "tessera/io/hdf5_writer.hpp"
#include "tessera/resample.hpp"
#include "tessera/transpose.hpp"
#include "tessera/version.hpp"

namespace tessera {
namespace {

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Comm {
  MPI_Comm comm;
  int rank = 0, size = 1;
  explicit Comm(MPI_Comm c) : comm(c) {
    MPI_Comm_rank(c, &rank);
    MPI_Comm_size(c, &size);
  }
};

/// Replicated per-frame vectors and images written by a step phase become the same on
/// every rank. Vectors under frame slabs: each rank's own frames count. Vectors under pixel
/// tiles, and images: each rank added its contribution to what was there when the phase
/// started (the same everywhere, and readable during the phase), so the contributions are
/// summed across ranks and added to it.
struct Snapshot {
  std::map<std::string, std::vector<double>> vectors;
  std::map<std::string, std::vector<float>> images;
};

bool summed(const DataOut& w, Layout layout) {
  if (w.combine == Combine::Identical) return false;
  return w.kind == DataKind::Image || (w.kind == DataKind::FrameVector && layout == Layout::PixelTiles);
}

/// What summed outputs hold when a phase starts.
Snapshot start_contributions(Dataset& data, const StepIO& io) {
  Snapshot snap;
  const Layout layout = data.partition().layout();
  for (const auto& w : io.writes) {
    if (!summed(w, layout)) continue;
    if (w.kind == DataKind::FrameVector)
      snap.vectors[w.info.name] = data.frame_vector(w.info.name).values;
    else if (auto image = data.images().find(w.info.name); image != data.images().end())
      snap.images[w.info.name] = image->second.values;
  }
  return snap;
}

/// values = before + Σ over ranks (values − before). Contributions that are counts (or other
/// integers) add up exactly, so the result does not depend on the rank count.
template <class T>
void sum_contributions(std::vector<T>& values, const std::vector<T>* before, MPI_Datatype type, MPI_Comm comm) {
  if (before && before->size() == values.size())
    for (std::size_t i = 0; i < values.size(); ++i) values[i] -= (*before)[i];
  MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), type, MPI_SUM, comm);
  if (before && before->size() == values.size())
    for (std::size_t i = 0; i < values.size(); ++i) values[i] += (*before)[i];
}

void combine_outputs(Dataset& data, const StepIO& io, const Snapshot& before, MPI_Comm comm) {
  const Partition& p = data.partition();
  for (const auto& w : io.writes) {
    if (w.combine == Combine::Identical) continue;
    if (w.kind == DataKind::FrameVector) {
      std::vector<double>& values = data.frame_vector(w.info.name).values;
      if (p.layout() == Layout::Frames) {
        for (std::size_t t = 0; t < values.size(); ++t)
          if (t < p.frame_begin(data.rank()) || t >= p.frame_end(data.rank())) values[t] = 0;
        MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, comm);
      } else {
        auto it = before.vectors.find(w.info.name);
        sum_contributions(values, it == before.vectors.end() ? nullptr : &it->second, MPI_DOUBLE, comm);
      }
    } else if (w.kind == DataKind::Image) {
      // A step may erase an image it only needed in between (the same on every rank).
      auto image = data.images().find(w.info.name);
      if (image == data.images().end()) continue;
      auto it = before.images.find(w.info.name);
      sum_contributions(image->second.values, it == before.images.end() ? nullptr : &it->second, MPI_FLOAT, comm);
    }
  }
}

void combine_frame_vectors(Dataset& data, const StepIO& io, MPI_Comm comm) { combine_outputs(data, io, {}, comm); }

/// "name: total 123, most 9 in frame 4" for a per-frame result, as a quick diagnostic.
std::string describe_vector(const FrameVector& v) {
  if (v.values.empty()) return v.info.name + ": empty";
  const auto most = std::max_element(v.values.begin(), v.values.end());
  double total = 0;
  for (double x : v.values) total += x;
  char text[256];
  std::snprintf(text, sizeof text, "%s: total %.6g, largest %.6g in frame %td", v.info.name.c_str(), total, *most,
                most - v.values.begin());
  return text;
}

/// Counts NaN and infinite values of the float cubes in each frame just read, records them
/// in the per-frame vector `nonfinite_input` and warns, naming the first frame's unit (file).
/// They are not an error: cleaning steps replace them.
void report_non_finite(Dataset& data, const FrameOrder& order, MPI_Comm comm, const Logger& log) {
  FrameVector& counts = data.add_frame_vector({"nonfinite_input", "1", "NaN or infinite input values in the frame (all float cubes)"}, true);
  for (auto& [name, cube] : data.cubes()) {
    if (cube.type() != ElementType::Float32) continue;
    auto slab = data.frames<float>(name);
    for (std::size_t t = slab.t_begin; t < slab.t_end; ++t)
      for (float v : slab.frame(t)) counts.values[t] += std::isfinite(v) ? 0.0 : 1.0;
  }
  combine_frame_vectors(data, {{}, {DataOut{DataKind::FrameVector, counts.info}}}, comm);
  double total = 0;
  std::size_t frames = 0, first = counts.values.size();
  for (std::size_t t = 0; t < counts.values.size(); ++t) {
    total += counts.values[t];
    if (counts.values[t] > 0) {
      ++frames;
      first = std::min(first, t);
    }
  }
  if (total > 0 && data.rank() == 0) {
    char text[512];
    std::snprintf(text, sizeof text,
                  "%.0f NaN or infinite input values in %zu frame%s, first in frame %zu (%s); see the per-frame "
                  "vector nonfinite_input",
                  total, frames, frames == 1 ? "" : "s", first, order.unit_names[order.units[first]].c_str());
    log.warn(text);
  }
}

PlotSettings plot_settings(const Workflow& wf, int rank) {
  PlotSettings plots;
  plots.directory = wf.output.plots_directory();
  plots.level = wf.output.plot_level();
  plots.writer = rank == 0;
  return plots;
}

/// Writes `text` to PATH.partial and renames it to PATH.
void write_text_atomically(const std::string& path, const std::string& text) {
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial);
    out << text;
    if (!out) throw IoError(partial + ": cannot write");
  }
  std::error_code ec;
  std::filesystem::rename(partial, path, ec);
  if (ec) throw IoError(path + ": cannot rename from " + partial + ": " + ec.message());
}

std::string describe_failure(const std::string& where, int rank, const std::exception& e) {
  return where + " failed on rank " + std::to_string(rank) + ": " + e.what();
}

}  // namespace

void prepare_outputs(Dataset& data, const StepIO& io) {
  for (const auto& w : io.writes) {
    if (w.kind == DataKind::Cube && !data.has_cube(w.info.name)) data.add_cube(w.info, w.type, 0.0, w.grouped);
    if (w.kind == DataKind::FrameVector) data.add_frame_vector(w.info, w.integer);
    if (w.kind == DataKind::Image) {
      Image image;
      image.info = w.info;
      auto size = [&](std::size_t n, std::size_t frame_size) {
        if (n == DataOut::frames) return data.shape().nt;
        if (n == DataOut::rows) return data.shape().ny;
        if (n == DataOut::columns) return data.shape().nx;
        return n ? n : frame_size;
      };
      image.ny = w.dim_y.empty() ? 1 : size(w.image_ny, data.shape().ny);
      image.nx = size(w.image_nx, data.shape().nx);
      image.dim_y = w.dim_y;
      image.dim_x = w.dim_x;
      image.values.assign(image.ny * image.nx, 0.0f);
      data.images()[w.info.name] = std::move(image);
    }
  }
}

FrameOrder read_frame_order(Workflow& wf, MPI_Comm comm) {
  const Comm c(comm);
  std::vector<std::string> units;
  collectively(comm, [&] { units = wf.input->units(); });
  constexpr std::size_t kWidth = 8;
  std::vector<double> packed(units.size() * kWidth, 0.0);
  collectively(comm, [&] {
    // Contiguous blocks of units, like the frame slabs: when file order is time order (as
    // with HST rootnames) each rank opens only the files of its own frames.
    const Partition blocks = Partition::frames({units.size(), 1, 1}, c.size);
    for (std::size_t i = blocks.frame_begin(c.rank); i < blocks.frame_end(c.rank); ++i) {
      UnitHeader h = wf.input->read_header(i);
      packed[i * kWidth] = h.ny;
      packed[i * kWidth + 1] = h.nx;
      for (int k = 0; k < 6; ++k) packed[i * kWidth + 2 + static_cast<std::size_t>(k)] = h.values[k];
    }
  });
  // Each unit is read by exactly one rank and the others hold zeros, so a sum gathers them.
  MPI_Allreduce(MPI_IN_PLACE, packed.data(), static_cast<int>(packed.size()), MPI_DOUBLE, MPI_SUM, comm);
  std::vector<UnitHeader> headers(units.size());
  for (std::size_t i = 0; i < units.size(); ++i) {
    headers[i].ny = packed[i * kWidth];
    headers[i].nx = packed[i * kWidth + 1];
    for (int k = 0; k < 6; ++k) headers[i].values[k] = packed[i * kWidth + 2 + static_cast<std::size_t>(k)];
  }
  FrameOrder order;
  collectively(comm, [&] { order = wf.input->arrange(headers); });
  order.unit_names = units;
  return order;
}

namespace {

/// Called after each step with its 1-based position in execution order.
using AfterStep = std::function<void(std::size_t position, const WorkflowStep& step, Dataset& data)>;

/// Runs the steps of wf.order from 1-based position `first` on.
void run_step_range(Workflow& wf, Dataset& data, MPI_Comm comm, const Logger& log_in, RunSummary* summary,
                    std::size_t first, const AfterStep& after_step) {
  const Comm c(comm);
  Logger log = log_in;
  const std::size_t chunk_bytes = static_cast<std::size_t>(wf.engine.transpose_chunk_mb * 1024 * 1024);
  std::size_t position = 0;
  for (std::size_t index : wf.order) {
    WorkflowStep& step = wf.steps[index];
    if (++position < first) continue;
    const std::vector<Access> phases = step.instance->phases();
    const StepIO io = step.instance->io();
    // A step that changes the frame and group axes has them changed first, in pixel tiles
    // where each rank holds whole series; the same map on every rank (replicated inputs).
    const std::optional<Resampling> resampling = step.instance->resample(data.shape(), data.frame_vectors());
    if (resampling) check_resampling(*resampling, data.shape(), "step '" + step.id + "' (" + step.uses + ")");
    double step_seconds = 0;
    for (std::size_t phase = 0; phase < phases.size(); ++phase) {
      Layout layout = layout_for(phases[phase], data.partition().layout());
      if (phase == 0 && resampling) layout = Layout::PixelTiles;
      if (layout != data.partition().layout()) {
        const auto start = std::chrono::steady_clock::now();
        const Partition target = partition_for(layout, data.shape(), c.size, wf.engine);
        TransposeStats stats;
        log.set_step(step.id);
        collectively(comm, [&] { stats = redistribute(data, target, comm, chunk_bytes); });
        const std::size_t moved = sum_over_ranks(comm, stats.bytes_sent_to_other_ranks);
        const double seconds = seconds_since(start);
        log.info("  move to " + target.describe() + ": " + human_bytes(static_cast<double>(moved)) +
                 " between ranks in " + std::to_string(seconds).substr(0, 5) + " s");
        if (summary) summary->stages.push_back({"transpose", seconds, moved});
      }

      if (phase == 0) {
        std::map<std::string, FrameVector> resampled;
        if (resampling) {
          const CubeShape before = data.shape();
          apply_resampling(data, *resampling);
          log.set_step(step.id);
          log.info("  frames " + std::to_string(before.nt) + " x " + std::to_string(before.ng) + " groups -> " +
                   std::to_string(data.shape().nt) + " x " + std::to_string(data.shape().ng));
          resampled = data.frame_vectors();
        }
        prepare_outputs(data, io);
        // A resampling step adjusts vectors it declares (e.g. times) from their resampled
        // values, which prepare_outputs has just reset.
        for (const auto& w : io.writes)
          if (w.kind == DataKind::FrameVector && w.combine == Combine::Identical)
            if (auto it = resampled.find(w.info.name); it != resampled.end())
              data.frame_vector(w.info.name).values = it->second.values;
      }
      log.set_step(step.id);
      char label[160];
      std::snprintf(label, sizeof label, "[%zu/%zu] %s (%s)%s", position, wf.order.size(), step.id.c_str(),
                    step.uses.c_str(),
                    phases.size() > 1 ? (" phase " + std::to_string(phase + 1) + "/" + std::to_string(phases.size())).c_str() : "");
      Progress progress(comm, log, label, data.partition().local_work_units(c.rank));
      Snapshot before = start_contributions(data, io);
      StepContext context(data, log, [&](std::size_t units) { progress.advance(units); }, plot_settings(wf, c.rank),
                          phase);
      std::exception_ptr failure;
      const auto phase_start = std::chrono::steady_clock::now();
      try {
        step.instance->run(context);
      } catch (const std::exception& e) {
        failure = std::make_exception_ptr(
            StepError(describe_failure("step '" + step.id + "' (" + step.uses + ")", c.rank, e)));
      }
      // Per-rank figures show load balance with -v.
      char detail[160];
      std::snprintf(detail, sizeof detail, "%zu %s on this rank in %.3f s", data.partition().local_work_units(c.rank),
                    layout == Layout::Frames ? "frames" : "pixels", seconds_since(phase_start));
      log.debug(detail);
      progress.finish("");
      agree_on_failure(comm, failure);
      combine_outputs(data, io, before, comm);
      step_seconds += progress.elapsed_seconds();
    }
    for (const auto& name : io.removes) data.cubes().erase(name);
    for (const auto& w : io.writes)
      if (w.kind == DataKind::FrameVector) log.info("  " + describe_vector(data.frame_vector(w.info.name)));
    if (summary) summary->stages.push_back({step.id, step_seconds, 0});
    if (after_step) after_step(position, step, data);
  }
  log.set_step("");
}

}  // namespace

void run_steps(Workflow& wf, Dataset& data, MPI_Comm comm, const Logger& log, RunSummary* summary) {
  run_step_range(wf, data, comm, log, summary, 1, {});
}

namespace {

/// Reads the input into frame slabs: headers first (shared out), then each rank its own frames.
Dataset read_input(Workflow& wf, MPI_Comm comm, const Logger& log, const RunOptions& options, RunSummary& summary) {
  const Comm c(comm);
  const auto start = std::chrono::steady_clock::now();
  FrameOrder order = read_frame_order(wf, comm);
  const CubeShape shape = order.shape;
  log.info("tessera " + std::string(version()) + ": " + wf.file + " on " + std::to_string(c.size) + " rank" +
           (c.size == 1 ? "" : "s") + ", " + std::to_string(shape.nt) + " frames of " +
           (shape.ng > 1 ? std::to_string(shape.ng) + " groups of " : std::string()) + std::to_string(shape.ny) +
           " x " + std::to_string(shape.nx) + " pixels");
  if (options.verbosity == Verbosity::Verbose && c.rank == 0)
    std::fprintf(log.sink(), "%s", make_plan(wf, shape, c.size).str(wf).c_str());
  Dataset data(shape, Partition::frames(shape, c.size), c.rank);
  for (const auto& cube : wf.input->cubes()) data.add_cube(cube.info, cube.type, 0.0, cube.grouped);
  for (auto& v : order.vectors) data.frame_vectors()[v.info.name] = v;
  Logger input_log = log;
  input_log.set_step("input");
  Progress progress(comm, input_log, "[read] " + wf.input_kind, data.partition().local_work_units(c.rank));
  std::exception_ptr failure;
  try {
    for (std::size_t t = data.partition().frame_begin(c.rank); t < data.partition().frame_end(c.rank); ++t) {
      wf.input->read_frame(order.units[t], t, data);
      progress.advance(1);
    }
    wf.input->read_extras(data);
  } catch (const Error&) {
    failure = std::current_exception();
  } catch (const std::exception& e) {
    failure = std::make_exception_ptr(InputError(describe_failure("reading the input", c.rank, e)));
  }
  progress.finish("");
  agree_on_failure(comm, failure);
  report_non_finite(data, order, comm, input_log);
  summary.input_frames = shape.nt;
  summary.stages.push_back({"read", seconds_since(start), 0});
  return data;
}

/// Parses the key figures and checks that each names something the input or a step makes,
/// so that a typo fails before the run rather than after it.
std::vector<ParsedFigure> check_figures(const Workflow& wf, const std::vector<FigureSpec>& specs) {
  std::set<std::string> made;
  for (const auto& out : wf.input_provides) made.insert(out.info.name);
  made.insert("nonfinite_input");
  for (std::size_t index : wf.order)
    for (const auto& w : wf.steps[index].instance->io().writes) made.insert(w.info.name);
  std::vector<ParsedFigure> figures;
  for (const auto& spec : specs) {
    figures.push_back(parse_figure(spec, wf.file));
    for (const auto& variable : figures.back().variables)
      if (!made.count(variable))
        throw ConfigError(wf.file + ": figure '" + spec.name + "' reads '" + variable +
                          "', which neither the input nor any enabled step writes");
  }
  return figures;
}

/// Slurm's description of the job this run belongs to, when it runs under Slurm.
std::map<std::string, AttrValue> slurm_attributes() {
  std::map<std::string, AttrValue> attrs;
  const std::pair<const char*, const char*> names[] = {{"SLURM_JOB_ID", "slurm_job_id"},
                                                       {"SLURM_ARRAY_JOB_ID", "slurm_array_job_id"},
                                                       {"SLURM_ARRAY_TASK_ID", "slurm_array_task_id"},
                                                       {"SLURM_JOB_NAME", "slurm_job_name"},
                                                       {"SLURM_CLUSTER_NAME", "slurm_cluster_name"}};
  for (const auto& [env, attr] : names)
    if (const char* value = std::getenv(env)) attrs[attr] = std::string(value);
  return attrs;
}

/// Where a resumed run starts: nothing to do (complete), after a checkpointed step, or from the input.
struct ResumePoint {
  bool complete = false;
  std::size_t after = 0;  ///< 1-based position of the checkpointed step; 0: from the input
};

/// Rank 0 looks at the files and tells everyone. The latest checkpoint whose hash matches the
/// current workflow's chain wins; checkpoints with another hash were made by a different
/// workflow (a changed step or an upstream change) and are removed, never reused.
ResumePoint find_resume_point(const Workflow& wf, const std::vector<std::string>& chain, const std::string& hash,
                              MPI_Comm comm, const Logger& log) {
  const Comm c(comm);
  std::int64_t packed[2] = {0, 0};
  collectively(comm, [&] {
    if (c.rank != 0) return;
    if (wf.output.save && output_is_complete(wf.output_path, hash)) {
      packed[0] = 1;
      return;
    }
    std::size_t position = 0;
    for (std::size_t index : wf.order) {
      ++position;
      const std::string path = checkpoint_path(wf.output_path, position, wf.steps[index].id);
      const auto info = read_checkpoint_info(path);
      if (!info) continue;
      if (info->hash == chain[position - 1] && info->position == position) {
        packed[1] = static_cast<std::int64_t>(position);
      } else {
        log.warn("checkpoint " + path + " was made by a different workflow (this step or one before it changed): removed");
        std::error_code ignored;
        std::filesystem::remove(path, ignored);
      }
    }
  });
  MPI_Bcast(packed, 2, MPI_INT64_T, 0, comm);
  return {packed[0] == 1, static_cast<std::size_t>(packed[1])};
}

/// Frames and key figures of a complete output, for a run that --resume skips.
void summarise_complete_output(const std::string& path, const std::vector<ParsedFigure>& figures, MPI_Comm comm,
                               RunSummary& summary) {
  const Comm c(comm);
  std::vector<double> values(figures.size() + 1, std::numeric_limits<double>::quiet_NaN());
  collectively(comm, [&] {
    if (c.rank != 0) return;
    const h5::File file = h5::File::open(path);
    values[0] = file.has("time") ? static_cast<double>(file.shape("time").at(0)) : 0.0;
    const auto attrs = file.attributes();
    for (std::size_t i = 0; i < figures.size(); ++i)
      if (auto it = attrs.find(figure_attribute(figures[i].name)); it != attrs.end()) {
        if (const auto* d = std::get_if<double>(&it->second)) values[i + 1] = *d;
        if (const auto* n = std::get_if<std::int64_t>(&it->second)) values[i + 1] = static_cast<double>(*n);
      }
  });
  MPI_Bcast(values.data(), static_cast<int>(values.size()), MPI_DOUBLE, 0, comm);
  summary.frames = static_cast<std::size_t>(values[0]);
  for (std::size_t i = 0; i < figures.size(); ++i) summary.figures.emplace_back(figures[i].name, values[i + 1]);
}

/// Testing hook for the killed-and-resumed tests: TESSERA_TEST_KILL_AFTER_CHECKPOINT=STEP_ID
/// kills this process (SIGKILL, as a scheduler would) once that step's checkpoint is on disk.
void maybe_die_after_checkpoint(const std::string& step_id, MPI_Comm comm) {
  const char* target = std::getenv("TESSERA_TEST_KILL_AFTER_CHECKPOINT");
  if (!target || step_id != target) return;
  MPI_Barrier(comm);
  std::raise(SIGKILL);
}

}  // namespace

RunSummary run_workflow(Workflow& wf, MPI_Comm comm, const RunOptions& options) {
  const Comm c(comm);
  Logger log(c.rank, options.verbosity, options.log_file);
  RunSummary summary;
  summary.output_path = wf.output_path;
  const auto run_start = std::chrono::steady_clock::now();
  const std::string start_utc = utc_now();
  if (!wf.input) throw InternalError("workflow has no input");
  const std::vector<ParsedFigure> figures = check_figures(wf, options.figures);
  const std::vector<std::string> chain = step_chain_hashes(wf);
  summary.workflow_hash = workflow_hash(wf);

  ResumePoint resume;
  if (options.resume) {
    resume = find_resume_point(wf, chain, summary.workflow_hash, comm, log);
    if (resume.complete) {
      log.info(wf.output_path + " is complete for this workflow (hash " + summary.workflow_hash + "): nothing to do");
      summary.outcome = RunOutcome::AlreadyComplete;
      summarise_complete_output(wf.output_path, figures, comm, summary);
      summary.seconds = seconds_since(run_start);
      return summary;
    }
  }

  Dataset data;
  if (resume.after > 0) {
    const WorkflowStep& step = wf.steps[wf.order[resume.after - 1]];
    const std::string path = checkpoint_path(wf.output_path, resume.after, step.id);
    const auto start = std::chrono::steady_clock::now();
    data = read_checkpoint(path, comm);
    summary.resumed_after = step.id;
    summary.stages.push_back({"checkpoint read", seconds_since(start), 0});
    log.info("tessera " + std::string(version()) + ": " + wf.file + " on " + std::to_string(c.size) + " rank" +
             (c.size == 1 ? "" : "s") + ", resuming after step '" + step.id + "' from " + path + " (" +
             std::to_string(data.shape().nt) + " frames)");
  } else {
    data = read_input(wf, comm, log, options, summary);
  }

  collectively(comm, [&] {
    if (c.rank == 0) {
      const auto parent = std::filesystem::path(wf.output_path).parent_path();
      std::error_code ec;
      if (!parent.empty()) std::filesystem::create_directories(parent, ec);
      if (ec) throw IoError(wf.output_path + ": cannot create directory " + parent.string() + ": " + ec.message());
    }
  });
  const AfterStep checkpoint = [&](std::size_t position, const WorkflowStep& step, Dataset& state) {
    const bool last = position == wf.order.size();
    if (!step.checkpoint && !(options.checkpoint_all && !last)) return;
    const auto start = std::chrono::steady_clock::now();
    const CheckpointInfo info{checkpoint_path(wf.output_path, position, step.id), step.id, chain[position - 1], position};
    write_checkpoint(state, info, comm);
    log.info("  checkpoint " + info.path);
    summary.stages.push_back({"checkpoint " + step.id, seconds_since(start), 0});
    maybe_die_after_checkpoint(step.id, comm);
  };
  run_step_range(wf, data, comm, log, &summary, resume.after + 1, checkpoint);
  summary.frames = data.shape().nt;
  for (const auto& figure : figures) summary.figures.emplace_back(figure.name, evaluate_figure(figure, data));

  // Write: provenance first, then every rank its own part; renamed only on success.
  const auto start = std::chrono::steady_clock::now();
  std::map<std::string, AttrValue> provenance = {
      {"tessera_version", std::string(version())},
      {"tessera_git_commit", std::string(git_commit())},
      {"workflow_file", wf.file},
      {"workflow_name", wf.name},
      {"workflow_description", wf.description},
      {"workflow_toml", wf.text},
      {"resolved_workflow", wf.resolved_toml()},
      {"workflow_hash", summary.workflow_hash},
      {"mpi_ranks", static_cast<std::int64_t>(c.size)},
      {"start_utc", start_utc},
      {"end_utc", utc_now()},
      {"completed_utc", utc_now()},
      {"input_kind", wf.input_kind},
      {"resumed_after", summary.resumed_after},
      {"tessera_complete", std::int64_t{1}},
  };
  for (const auto& [name, value] : slurm_attributes()) provenance[name] = value;
  for (const auto& [name, value] : options.extra_attributes) provenance[name] = value;
  for (const auto& [name, value] : summary.figures) provenance[figure_attribute(name)] = value;
  std::string overrides, hosts;
  for (const auto& o : wf.overrides) overrides += (overrides.empty() ? "" : "\n") + o;
  for (const auto& h : host_names(comm)) hosts += (hosts.empty() ? "" : ",") + h;
  provenance["workflow_overrides"] = overrides;
  provenance["hosts"] = hosts;
  for (const auto& step : wf.steps) {
    std::string text = "uses = \"" + step.uses + "\"\nenabled = " + (step.enabled ? "true" : "false");
    if (step.instance)
      for (const auto& [k, v] : step.instance->resolved_params()) text += "\n" + k + " = " + v;
    provenance["step." + step.id] = text;
  }
  if (wf.output.save) {
    log.info("[write] " + wf.output_path);
    write_dataset_hdf5(data, wf.output_path, comm, provenance);
  } else {
    log.info("[write] skipped: [output] save = false");
  }
  if (wf.output.copy_workflow)
    collectively(comm, [&] {
      if (c.rank == 0) write_text_atomically(wf.output.workflow_copy_path(), wf.resolved_toml());
    });
  summary.stages.push_back({"write", seconds_since(start), 0});
  summary.seconds = seconds_since(run_start);
  return summary;
}

std::string RunSummary::str() const {
  std::string out = "summary:\n";
  char line[256];
  for (const auto& s : stages) {
    std::snprintf(line, sizeof line, "  %-24s %8.3f s%s%s\n", s.label.c_str(), s.seconds,
                  s.bytes_moved ? "   moved " : "", s.bytes_moved ? human_bytes(static_cast<double>(s.bytes_moved)).c_str() : "");
    out += line;
  }
  std::snprintf(line, sizeof line, "  %-24s %8.3f s\noutput: %s\n", "total", seconds, output_path.c_str());
  out += line;
  if (!resumed_after.empty()) out += "resumed after step '" + resumed_after + "' from its checkpoint\n";
  for (const auto& [name, value] : figures) {
    std::snprintf(line, sizeof line, "figure %s = %.6g\n", name.c_str(), value);
    out += line;
  }
  return out;
}

}  // namespace tessera
