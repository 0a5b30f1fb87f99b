#pragma once
/// The step API. A step is a pure computation on this rank's view of the data; it never
/// calls MPI. The engine moves data into the layout the step's access pattern needs,
/// creates its declared outputs, runs it, and combines its per-frame outputs across ranks.
#include <concepts>
#include <functional>
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
};

/// Something a step writes. Cubes and images that already exist are modified in place;
/// new ones are created by the engine before the step runs.
///
/// Per-frame vectors a step writes are combined across ranks after it runs: under frame
/// slabs each rank's own frames win; under pixel tiles (and Reduce in tiles) every rank's
/// values are summed, so a Pixels step writes partial sums (e.g. counts) into a fresh vector.
struct DataOut {
  DataKind kind = DataKind::Cube;
  VarInfo info;
  ElementType type = ElementType::Float32;  ///< cubes
  bool integer = false;                     ///< frame vectors
};

struct StepIO {
  std::vector<DataRef> reads;
  std::vector<DataOut> writes;
};

class Logger;

/// What a running step may touch: this rank's data, logging and progress.
class StepContext {
 public:
  StepContext(Dataset& data, Logger& log, std::function<void(std::size_t)> on_progress)
      : data_(data), log_(log), on_progress_(std::move(on_progress)) {}

  Dataset& data() { return data_; }
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
};

/// A configured step, ready to run.
class StepInstance {
 public:
  virtual ~StepInstance() = default;
  virtual Access access() const = 0;
  virtual StepIO io() const = 0;
  virtual void run(StepContext& context) = 0;
  /// (name, TOML text) of every parameter, defaults included.
  virtual std::vector<std::pair<std::string, std::string>> resolved_params() const = 0;
};

/// What a step kind must provide; see steps/cleaning/fixed_iter.hpp for an example.
template <class S>
concept StepKind = requires(const typename S::Params& p, StepContext& context) {
  { S::name } -> std::convertible_to<std::string_view>;
  { S::summary } -> std::convertible_to<std::string_view>;
  { S::Params::schema() } -> std::same_as<Schema<typename S::Params>>;
  { S::access(p) } -> std::same_as<Access>;
  { S::io(p) } -> std::same_as<StepIO>;
  { S::run(p, context) };
};

/// Registry entry for one step kind.
struct StepInfo {
  std::string name;
  std::string summary;
  std::vector<ParamDoc> params;
  Access default_access = Access::Frames;  ///< with default parameters (for help and docs)
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
    Access access() const override { return S::access(params); }
    StepIO io() const override { return S::io(params); }
    void run(StepContext& context) override { S::run(params, context); }
    std::vector<std::pair<std::string, std::string>> resolved_params() const override {
      return P::schema().resolved(params);
    }
  };
  StepInfo info;
  info.name = std::string(S::name);
  info.summary = std::string(S::summary);
  info.params = P::schema().docs();
  info.default_access = S::access(P{});
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
