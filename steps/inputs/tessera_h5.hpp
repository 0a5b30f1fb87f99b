#pragma once
/// tessera_h5: a Tessera output file (the HDF5 that `tessera run` writes) read back as a
/// workflow's input, so that one workflow can carry on from another's result — e.g. the
/// spectral workflow reads the rate cubes that the detector1 workflow wrote:
///
///     [input]
///     kind = "tessera_h5"
///     path = "{workflow.visit}/outputs/detector1/rateints.h5"
///
/// What comes back (docs/spectra-inputs.md):
/// - cubes: every (time, y, x) variable of float32 or uint32 (data, err, dq, var_poisson,
///   var_rnoise, profile, ...), or those named in `cubes` (which may also name grouped
///   (time, group, y, x) cubes such as `ramp` and `groupdq`); `data` must be there by default;
/// - frame vectors: every float64 or integer variable over (time); `time` stays the coordinate
///   (`nonfinite_input` is not read: the engine counts the new run's input itself);
/// - images: every other 1D or 2D variable with its dimension names; 1D coordinates other
///   than time/y/x/group (e.g. `wavelength`) come back as coordinate images;
/// - attributes: the root attributes, except the provenance that `tessera run` writes for
///   itself (tessera_version, workflow_toml, step.*, ...; written anew by the next run).
/// Units and long names come back from each variable's `units` and `long_name` attributes.
/// `frames` = [first, last) reads part of the file's integrations (per-frame images too).
///
/// The whole file is one unit: every rank keeps it open and reads its own frames as
/// hyperslabs (serial HDF5 reads, no MPI-IO).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/input.hpp"

namespace tessera {

struct TesseraH5Params {
  std::string path;
  std::vector<std::string> cubes;
  std::vector<std::int64_t> frames;

  static Schema<TesseraH5Params> schema();
};

struct TesseraH5 {
  static constexpr std::string_view name = "tessera_h5";
  static constexpr std::string_view summary =
      "A Tessera output HDF5 file (cubes, frame vectors, images, attributes), to chain one workflow onto another";
  using Params = TesseraH5Params;

  /// Meaning of UnitHeader::values for this input (one unit = the file).
  static constexpr std::size_t frames_index = 0;  ///< frames in the file (length of `time`)
  static constexpr std::size_t groups_index = 1;  ///< groups per frame of the grouped cubes read (1: none)

  /// Root attributes that `tessera run` writes as provenance (engine/src/runner.cpp); they are
  /// not read back, since the next run writes its own. Also left out: "step.*" and "_*"
  /// (netCDF's own, e.g. _NCProperties).
  static const std::vector<std::string>& provenance_attributes();
  /// Per-frame vectors the engine computes anew in every run (engine/src/runner.cpp:
  /// `nonfinite_input`, the count of NaN or infinite input values); not read back either.
  static const std::vector<std::string>& engine_vectors();

  /// Returns the source without reading data (workflow validation calls it; provides() looks
  /// at the file's list of variables when the file exists).
  static std::unique_ptr<FrameSource> open(const Params& params);
};

}  // namespace tessera
