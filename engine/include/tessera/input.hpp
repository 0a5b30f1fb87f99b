#pragma once
/// Input kinds: where a workflow's frames come from. An input reads one frame at a time
/// into this rank's frame slab; the engine decides which rank reads which frame and
/// gathers the headers, so an input never calls MPI either.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tessera/dataset.hpp"
#include "tessera/params.hpp"
#include "tessera/step.hpp"

namespace tessera {

/// Plain numbers describing one input unit (one file), small enough to gather on every rank.
struct UnitHeader {
  double ny = 0, nx = 0;
  double values[6] = {0, 0, 0, 0, 0, 0};  ///< meaning is the input kind's (e.g. start, end, exposure time)
};

/// The frames of a visit in time order, after any selection, and their per-frame vectors.
struct FrameOrder {
  std::vector<std::size_t> units;            ///< unit index of frame t
  CubeShape shape;
  std::vector<FrameVector> vectors;          ///< e.g. time, exposure time, orbit
  std::vector<std::string> unit_names;       ///< every unit's name (filled by the engine, for messages)
};

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  /// The units (e.g. files) in a fixed order; throws InputError when there are none.
  virtual std::vector<std::string> units() = 0;
  /// Reads one unit's header; throws InputError naming the file on any problem.
  virtual UnitHeader read_header(std::size_t unit) = 0;
  /// Orders and selects frames from every unit's header; checks they agree (e.g. shapes).
  virtual FrameOrder arrange(const std::vector<UnitHeader>& headers) = 0;
  /// The cubes each frame fills (created by the engine before read_frame).
  virtual std::vector<DataOut> cubes() const = 0;
  /// Reads unit `unit` into frame t of the dataset's cubes (frame layout, t is local to this rank).
  virtual void read_frame(std::size_t unit, std::size_t t, Dataset& data) = 0;
  /// Reads replicated extras (e.g. a direct image) and sets attributes; runs on every rank.
  virtual void read_extras(Dataset& data) = 0;
  /// Everything the input provides (cubes, frame vectors, images) without reading data.
  virtual std::vector<DataOut> provides() const = 0;

  /// (name, TOML text) of every parameter, defaults included (set by the registry).
  std::vector<std::pair<std::string, std::string>> resolved_params;
};

/// What an input kind must provide; see steps/inputs/hst_flt_dir.hpp.
template <class I>
concept InputKind = requires(const typename I::Params& p) {
  { I::name } -> std::convertible_to<std::string_view>;
  { I::summary } -> std::convertible_to<std::string_view>;
  { I::Params::schema() } -> std::same_as<Schema<typename I::Params>>;
  { I::open(p) } -> std::same_as<std::unique_ptr<FrameSource>>;
};

/// Registry entry for one input kind.
struct InputInfo {
  std::string name;
  std::string summary;
  std::vector<ParamDoc> params;
  std::function<std::unique_ptr<FrameSource>(const toml::table& table, const std::vector<std::string>& reserved,
                                             Diagnostics& diagnostics, const std::string& context)>
      create;
};

/// Builds the registry entry of an input kind. `open` must not read data (validation uses it).
template <InputKind I>
InputInfo describe_input() {
  using P = typename I::Params;
  InputInfo info;
  info.name = std::string(I::name);
  info.summary = std::string(I::summary);
  info.params = P::schema().docs();
  info.create = [](const toml::table& table, const std::vector<std::string>& reserved, Diagnostics& diagnostics,
                   const std::string& context) -> std::unique_ptr<FrameSource> {
    std::size_t before = diagnostics.size();
    P params = P::schema().bind(table, reserved, diagnostics, context);
    if (diagnostics.size() != before) return nullptr;
    auto source = I::open(params);
    source->resolved_params = P::schema().resolved(params);
    return source;
  };
  return info;
}

}  // namespace tessera
