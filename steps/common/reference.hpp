#pragma once
/// Detector reference data named in a workflow parameter (docs/jwst-data-model.md). A
/// reference "spec" is one of
///   - a number, e.g. "3.1": the same value for every pixel (for a mask: those bits everywhere);
///   - a FITS file path (relative to the working directory), e.g. "refs/gain.fits";
///   - "@name": the image `name` that an upstream step wrote into the dataset (e.g. "@gain"
///     from custom_gain); steps declare it as a read with reference_read().
/// FITS reference files follow docs/jwst-data-model.md: values in the "SCI" image extension
/// (or the primary HDU when there is none), optional bits in a "DQ" extension, cubes of planes
/// (a dark per group, linearity coefficients) as 3D images. A file larger than the data is cut
/// to the data's subarray with the SUBSTRT1/SUBSTRT2 keywords of both; a file of another
/// shape is an error naming the parameter and the file. SUBSTRT1/SUBSTRT2 are read from the
/// reference's primary header (1 when absent) and from the dataset attributes substrt1/substrt2
/// (1 when absent). Only the rows a cut needs are read.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::jwst {

/// Per-pixel values over the data's ny × nx pixels (or one value for a scalar spec).
struct ReferenceImage {
  std::vector<float> values;       ///< ny*nx values, or 1 for a scalar
  std::vector<std::uint32_t> dq;   ///< ny*nx bits from the file's DQ extension; empty if none
  std::string source;              ///< the spec, for messages
  bool scalar() const { return values.size() == 1; }
  float at(std::size_t pixel) const { return values.size() == 1 ? values[0] : values[pixel]; }
};

/// `planes` images of the data's ny × nx pixels, plane-major (plane k is values[k*ny*nx ...]).
struct ReferenceCube {
  std::size_t planes = 0;
  std::vector<float> values;
  std::vector<std::uint32_t> dq;  ///< ny*nx bits from the DQ extension; empty if none
  std::string source;
  const float* plane(std::size_t k, std::size_t frame_pixels) const { return values.data() + k * frame_pixels; }
};

/// The read a step must declare in io() for a spec of the form "@name"; nothing otherwise.
std::optional<DataRef> reference_read(const std::string& spec, const std::string& param);

/// Loads a per-pixel reference from `extension` (default "SCI"; the primary HDU if the file
/// has no such extension). `param` names the workflow parameter in errors. A scalar spec gives
/// one value. For a mask (only bits), pass extension "DQ": values are then empty and dq filled.
/// Throws StepError naming `param` and the file on any problem.
ReferenceImage load_reference_image(const std::string& spec, const std::string& param, StepContext& context,
                                    const std::string& extension = "SCI");

/// Loads a 3D reference (planes × ny × nx) from `extension` (e.g. "SCI" for a dark, "COEFFS"
/// for linearity); a 2D image is one plane, and axes beyond the third must have length 1 (a
/// JWST dark of shape 1 × groups × ny × nx). Only the first `max_planes` planes are read when
/// it is not 0 (e.g. a dark of more groups than the data). A scalar spec or "@name" gives one
/// plane holding the value(s) everywhere; the caller checks the number of planes it needs.
ReferenceCube load_reference_cube(const std::string& spec, const std::string& param, StepContext& context,
                                  const std::string& extension = "SCI", std::size_t max_planes = 0);

/// True when `spec` parses entirely as a number.
bool is_scalar_spec(const std::string& spec);

}  // namespace tessera::jwst
