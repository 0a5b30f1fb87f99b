#pragma once
/// The step API. A step is a pure computation on this rank's view of the data; it never
/// calls MPI. The engine moves data into the layout the step's access pattern needs,
/// creates its declared outputs, runs it, and combines its per-frame outputs across ranks.
#include <concepts>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/dataset.hpp"
#include "tessera/params.hpp"

namespace tessera {

/// What a step needs to see at once.
enum class Access {
  Frames,  ///< whole frames (images): data in frame slabs
  Pixels,  ///< the whole time series of each pixel it is given: data in pixel tiles
  Reduce,  ///< runs on whatever layout is current and produces small results combined across ranks
};
std::string to_string(Access access);

enum class DataKind { Cube, FrameVector, Image, Attribute };
std::string to_string(DataKind kind);

/// Something a step reads (must be provided by the input or an upstream step).
struct DataRef {
  DataKind kind = DataKind::Cube;
  std::string name;
  std::string hint;  ///< what the user can do when nothing provides it
};

/// Something a step writes. Cubes and images that already exist are modified in place;
/// new ones are created by the engine before the step runs.
///
/// Per-frame vectors a step writes are combined across ranks after it runs: under frame
/// slabs each rank's own frames win; under pixel tiles (and Reduce in tiles) every rank's
/// values are summed, so a Pixels step writes partial sums (e.g. counts) into a fresh vector.
///
/// Images a step writes are sums too: each rank adds what its frames or tiles contribute
/// (e.g. a count of flagged pixels) and the engine adds the ranks' contributions. A vector or
/// image the step computes the same way on every rank from replicated data is declared
/// `Combine::Identical` and left as it is.
///
/// Outputs are reset to zero when the step starts. In a step with several phases, each
/// phase's contribution is combined when the phase ends and added to what was there; a
/// later phase reads the combined values of earlier ones.
enum class Combine { Auto, Identical };

struct DataOut {
  DataKind kind = DataKind::Cube;
  VarInfo info;
  ElementType type = ElementType::Float32;  ///< cubes
  bool integer = false;                     ///< frame vectors
  Combine combine = Combine::Auto;          ///< frame vectors and images
  /// Images: shape. 0 means the frame's (ny for image_ny, nx for image_nx); `frames` one row
  /// per frame (nt); `rows` the frame's ny and `columns` its nx, on either axis (e.g. a
  /// spectrum per frame along y is image_ny = frames, image_nx = rows, dim_x = "y").
  std::size_t image_ny = 0, image_nx = 0;
  static constexpr std::size_t frames = static_cast<std::size_t>(-1);
  static constexpr std::size_t rows = static_cast<std::size_t>(-2);
  static constexpr std::size_t columns = static_cast<std::size_t>(-3);
  /// Images: dimension names in the output. An empty dim_y makes a 1D image (ny = 1) over
  /// dim_x; a 1D image named like its dimension is written as that dimension's coordinate
  /// (e.g. `wavelength` over `wavelength`), before every variable that uses the dimension.
  std::string dim_y = "y", dim_x = "x";
  bool grouped = false;                     ///< cubes: (time, group, y, x), like the ramps
};

struct StepIO {
  std::vector<DataRef> reads;
  std::vector<DataOut> writes;
  /// Cubes the step drops when it has run (e.g. the ramps once rates are fitted), so that
  /// they are neither held nor written; later steps cannot read them.
  std::vector<std::string> removes;
};

/// A new frame and group axis for every cube, e.g. some frames left out, or frames of many
/// groups split into more frames of fewer groups. New sample (t, g) of a grouped cube is old
/// sample (source_frame[t·ng + g], source_group[t·ng + g]); new frame t of an ungrouped cube
/// and of every per-frame vector is old frame source_frame[t·ng].
struct Resampling {
  std::size_t nt = 0, ng = 1;
  std::vector<std::size_t> source_frame, source_group;
};

class Logger;

/// Where diagnostic plots go and how many are wanted (the template's save_plots / show_plots).
struct PlotSettings {
  std::filesystem::path directory;  ///< empty: no plots
  int level = 0;                    ///< 0 none, 1 the main ones, 2 all
  bool writer = false;              ///< this rank writes files (exactly one rank does)
};

/// What a running step may touch: this rank's data, logging and progress.
class StepContext {
 public:
  StepContext(Dataset& data, Logger& log, std::function<void(std::size_t)> on_progress, PlotSettings plots = {},
              std::size_t phase = 0)
      : data_(data), log_(log), on_progress_(std::move(on_progress)), plots_(std::move(plots)), phase_(phase) {}

  Dataset& data() { return data_; }
  const CubeShape& shape() const { return data_.shape(); }
  /// Which of the step's phases is running (0 for single-phase steps).
  std::size_t phase() const { return phase_; }
  /// Path for a diagnostic file (PNG, GIF) named `file_name` in the plots directory, given
  /// only on the one rank that writes files and only when the plot level is at least
  /// `level`; otherwise nothing. The directory exists when a path is returned.
  std::optional<std::filesystem::path> plot_file(const std::string& file_name, int level = 1) const;
  Logger& log() { return log_; }
  /// Reports `units` more frames (Frames access) or pixels (Pixels access) done.
  void advance(std::size_t units) {
    if (on_progress_) on_progress_(units);
  }

  template <class T>
  FrameSlab<T> frames(const std::string& cube) { return data_.frames<T>(cube); }
  template <class T>
  std::vector<TileBlock<T>> tiles(const std::string& cube) { return data_.tiles<T>(cube); }
  FrameVector& frame_vector(const std::string& name) { return data_.frame_vector(name); }
  Image& image(const std::string& name) { return data_.image(name); }

 private:
  Dataset& data_;
  Logger& log_;
  std::function<void(std::size_t)> on_progress_;
  PlotSettings plots_;
  std::size_t phase_ = 0;
};

/// A configured step, ready to run.
class StepInstance {
 public:
  virtual ~StepInstance() = default;
  /// The access of each phase, in order (one for most steps).
  virtual std::vector<Access> phases() const = 0;
  Access access() const { return phases().front(); }
  virtual StepIO io() const = 0;
  /// For steps that change the frame and group axes: the new axes, computed from the shape
  /// and the (replicated) per-frame vectors. The engine applies it in pixel tiles before the
  /// step's first phase runs. Nothing for every other step.
  virtual std::optional<Resampling> resample(const CubeShape&, const std::map<std::string, FrameVector>&) const {
    return std::nullopt;
  }
  virtual void run(StepContext& context) = 0;
  /// (name, TOML text) of every parameter, defaults included.
  virtual std::vector<std::pair<std::string, std::string>> resolved_params() const = 0;
};

/// "frames", or "frames+pixels" for a step with two phases.
std::string to_string(const std::vector<Access>& phases);

/// What a step kind must provide; see steps/cleaning/fixed_iter.hpp for an example.
///
/// `access(p)` returns one Access, or a std::vector<Access> for a step that works in
/// phases (e.g. fit per frame, then smooth the fits in time and subtract): `run` is then
/// called once per phase, `context.phase()` says which, the cubes are moved to each
/// phase's layout, and per-frame vectors and images are combined between phases.
template <class S>
concept StepKind = requires(const typename S::Params& p, StepContext& context) {
  { S::name } -> std::convertible_to<std::string_view>;
  { S::summary } -> std::convertible_to<std::string_view>;
  { S::Params::schema() } -> std::same_as<Schema<typename S::Params>>;
  requires std::same_as<decltype(S::access(p)), Access> || std::same_as<decltype(S::access(p)), std::vector<Access>>;
  { S::io(p) } -> std::same_as<StepIO>;
  { S::run(p, context) };
};

/// A step kind that resamples the frame and group axes (see Resampling): its first phase must
/// be Pixels, where the change is local to every rank.
template <class S>
concept ResamplingStepKind =
    StepKind<S> && requires(const typename S::Params& p, const CubeShape& shape,
                            const std::map<std::string, FrameVector>& vectors) {
      { S::resample(p, shape, vectors) } -> std::same_as<Resampling>;
    };

template <StepKind S>
std::vector<Access> phases_of(const typename S::Params& p) {
  if constexpr (std::same_as<decltype(S::access(p)), Access>)
    return {S::access(p)};
  else
    return S::access(p);
}

/// Registry entry for one step kind.
struct StepInfo {
  std::string name;
  std::string summary;
  std::vector<ParamDoc> params;
  std::vector<Access> default_phases;  ///< with default parameters (for help and docs)
  StepIO default_io;
  /// Binds `table` (minus `reserved` keys) and returns the step; problems go to diagnostics.
  std::function<std::unique_ptr<StepInstance>(const toml::table& table, const std::vector<std::string>& reserved,
                                              Diagnostics& diagnostics, const std::string& context)>
      create;
};

template <StepKind S>
StepInfo describe_step() {
  using P = typename S::Params;
  struct Bound final : StepInstance {
    P params;
    std::vector<Access> phases() const override { return phases_of<S>(params); }
    StepIO io() const override { return S::io(params); }
    std::optional<Resampling> resample(const CubeShape& shape,
                                       const std::map<std::string, FrameVector>& vectors) const override {
      if constexpr (ResamplingStepKind<S>)
        return S::resample(params, shape, vectors);
      else
        return std::nullopt;
    }
    void run(StepContext& context) override { S::run(params, context); }
    std::vector<std::pair<std::string, std::string>> resolved_params() const override {
      return P::schema().resolved(params);
    }
  };
  StepInfo info;
  info.name = std::string(S::name);
  info.summary = std::string(S::summary);
  info.params = P::schema().docs();
  info.default_phases = phases_of<S>(P{});
  info.default_io = S::io(P{});
  info.create = [](const toml::table& table, const std::vector<std::string>& reserved, Diagnostics& diagnostics,
                   const std::string& context) -> std::unique_ptr<StepInstance> {
    auto step = std::make_unique<Bound>();
    step->params = P::schema().bind(table, reserved, diagnostics, context);
    return step;
  };
  return info;
}

}  // namespace tessera
