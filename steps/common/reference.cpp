#include "steps/common/reference.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <span>
#include <variant>

#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"

namespace tessera::jwst {
namespace {

std::string trim(const std::string& text) {
  std::size_t a = 0, b = text.size();
  while (a < b && std::isspace(static_cast<unsigned char>(text[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(text[b - 1]))) --b;
  return text.substr(a, b - a);
}

/// The number a scalar spec holds (is_scalar_spec must be true).
double scalar_value(const std::string& spec, const std::string& param) {
  const double value = std::strtod(trim(spec).c_str(), nullptr);
  if (!std::isfinite(value)) throw StepError(param + ": \"" + spec + "\" is not a finite number");
  return value;
}

std::string shape_text(std::size_t ny, std::size_t nx) { return std::to_string(ny) + " x " + std::to_string(nx); }

/// An integer dataset attribute (stored as int64, or as a double by older writers).
long long attribute_int(const Dataset& data, const std::string& key, long long fallback) {
  auto it = data.attributes().find(key);
  if (it == data.attributes().end()) return fallback;
  if (const auto* i = std::get_if<std::int64_t>(&it->second)) return *i;
  if (const auto* d = std::get_if<double>(&it->second)) return std::llround(*d);
  return fallback;
}

/// Where the data's ny × nx pixels lie inside a reference of ry × rx pixels: the offset of the
/// data's first pixel in the reference (0-based). Both place themselves on the detector with
/// SUBSTRT1 (x) and SUBSTRT2 (y), 1-based, 1 when absent.
struct Cut {
  std::size_t y0 = 0, x0 = 0;
};

/// What a reference file is being read for, for messages: "saturation: refs/sat.fits".
struct Where {
  const std::string& param;
  const std::string& path;
  std::string operator()(const std::string& what) const { return param + ": " + path + ": " + what; }
};

Cut find_cut(const Where& where, const std::string& hdu, std::size_t ry, std::size_t rx, long long ref_x,
             long long ref_y, bool ref_has_substrt, const Dataset& data) {
  const std::size_t ny = data.shape().ny, nx = data.shape().nx;
  const long long data_x = attribute_int(data, "substrt1", 1), data_y = attribute_int(data, "substrt2", 1);
  if (ry == ny && rx == nx) {
    // The same size: the same pixels, unless both say where they are and disagree.
    if (ref_has_substrt && (ref_x != data_x || ref_y != data_y))
      throw StepError(where(hdu + " is " + shape_text(ry, rx) + " at SUBSTRT1, SUBSTRT2 = " + std::to_string(ref_x) +
                            ", " + std::to_string(ref_y) + " but the data are at " + std::to_string(data_x) + ", " +
                            std::to_string(data_y) + ": another subarray of the detector"));
    return {};
  }
  if (ry < ny || rx < nx)
    throw StepError(where(hdu + " is " + shape_text(ry, rx) + " but the data are " + shape_text(ny, nx) +
                          " (ny x nx): a reference must cover the data's pixels"));
  const long long x0 = data_x - ref_x, y0 = data_y - ref_y;
  if (ry < ny || rx < nx || x0 < 0 || y0 < 0 || static_cast<std::size_t>(x0) + nx > rx ||
      static_cast<std::size_t>(y0) + ny > ry)
    throw StepError(where(hdu + " is " + shape_text(ry, rx) + " at SUBSTRT1, SUBSTRT2 = " + std::to_string(ref_x) +
                          ", " + std::to_string(ref_y) + " but the data are " + shape_text(ny, nx) + " (ny x nx) at " +
                          std::to_string(data_x) + ", " + std::to_string(data_y) +
                          ", which the reference does not cover"));
  return {static_cast<std::size_t>(y0), static_cast<std::size_t>(x0)};
}

/// A reference FITS file open for one parameter.
class RefFile {
 public:
  RefFile(const std::string& path, const std::string& param) : path_(path), where_{param, path_} {
    try {
      file_.emplace(fits::File::open_read(path));
      const auto x = file_->read_double("SUBSTRT1"), y = file_->read_double("SUBSTRT2");
      has_substrt_ = x.has_value() || y.has_value();
      ref_x_ = x ? std::llround(*x) : 1;
      ref_y_ = y ? std::llround(*y) : 1;
    } catch (const InputError& e) {
      throw StepError(param + ": " + e.what());
    }
  }
  RefFile(const RefFile&) = delete;

  const Where& where() const { return where_; }
  fits::File& file() { return *file_; }

  /// Moves to image extension `name`; for "SCI" falls back to the primary HDU when it holds an
  /// image. Returns false when there is neither.
  bool go_to(const std::string& name) {
    if (file_->goto_extension(name)) {
      hdu_ = name;
      return true;
    }
    if (name != "SCI") return false;
    file_->goto_primary();
    if (file_->axes().empty()) return false;
    hdu_ = "primary HDU";
    return true;
  }
  const std::string& hdu() const { return hdu_; }

  /// Axes of the current HDU, y/x last: (planes, ry, rx). Images of more than three axes are
  /// accepted when the extra (outer) axes have length 1.
  void plane_shape(std::size_t& planes, std::size_t& ry, std::size_t& rx) {
    const std::vector<long> axes = file_->axes();
    if (axes.size() < 2)
      throw StepError(where_(hdu_ + " has " + std::to_string(axes.size()) + " axes; expected an image of ny x nx"));
    for (std::size_t k = 3; k < axes.size(); ++k)
      if (axes[k] != 1)
        throw StepError(where_(hdu_ + " has " + std::to_string(axes.size()) + " axes (NAXIS" + std::to_string(k + 1) +
                               " = " + std::to_string(axes[k]) + "); expected at most planes x ny x nx"));
    rx = static_cast<std::size_t>(axes[0]);
    ry = static_cast<std::size_t>(axes[1]);
    planes = axes.size() >= 3 ? static_cast<std::size_t>(axes[2]) : 1;
    if (rx == 0 || ry == 0 || planes == 0) throw StepError(where_(hdu_ + " is empty"));
  }

  /// Reads planes [0, planes) of the current HDU (ry × rx each), cut to the data's pixels,
  /// row by row so that a full-frame reference is never held whole.
  std::vector<float> read_planes(std::size_t planes, std::size_t ry, std::size_t rx, const Dataset& data) {
    const Cut cut = find_cut(where_, hdu_, ry, rx, ref_x_, ref_y_, has_substrt_, data);
    const std::size_t ny = data.shape().ny, nx = data.shape().nx;
    std::vector<float> out(planes * ny * nx);
    try {
      for (std::size_t k = 0; k < planes; ++k) {
        if (rx == nx) {
          file_->read_pixels_float(std::span<float>(out.data() + k * ny * nx, ny * nx), (k * ry + cut.y0) * rx);
          continue;
        }
        for (std::size_t y = 0; y < ny; ++y)
          file_->read_pixels_float(std::span<float>(out.data() + (k * ny + y) * nx, nx),
                                   (k * ry + cut.y0 + y) * rx + cut.x0);
      }
    } catch (const InputError& e) {
      throw StepError(where_.param + ": " + e.what());
    }
    return out;
  }

  /// The DQ extension (2D, bits as unsigned 32-bit) cut to the data's pixels; empty when the
  /// file has none and `required` is false.
  std::vector<std::uint32_t> read_dq(const Dataset& data, bool required) {
    if (!file_->goto_extension("DQ")) {
      if (required) throw StepError(where_("no DQ extension (a mask holds its bits there)"));
      return {};
    }
    hdu_ = "DQ";
    std::size_t planes = 0, ry = 0, rx = 0;
    plane_shape(planes, ry, rx);
    if (planes != 1) throw StepError(where_("DQ has " + std::to_string(planes) + " planes; expected one ny x nx image"));
    const Cut cut = find_cut(where_, "DQ", ry, rx, ref_x_, ref_y_, has_substrt_, data);
    std::vector<std::uint32_t> whole;
    try {
      whole = file_->read_image_uint32();
    } catch (const InputError& e) {
      throw StepError(where_.param + ": " + e.what());
    }
    const std::size_t ny = data.shape().ny, nx = data.shape().nx;
    if (ry == ny && rx == nx) return whole;
    std::vector<std::uint32_t> out(ny * nx);
    for (std::size_t y = 0; y < ny; ++y)
      for (std::size_t x = 0; x < nx; ++x) out[y * nx + x] = whole[(cut.y0 + y) * rx + cut.x0 + x];
    return out;
  }

 private:
  std::string path_;
  Where where_;
  std::optional<fits::File> file_;
  bool has_substrt_ = false;
  long long ref_x_ = 1, ref_y_ = 1;
  std::string hdu_ = "primary HDU";
};

/// The image named by "@name", checked to have the data's frame shape.
const Image& dataset_image(const std::string& spec, const std::string& param, const Dataset& data) {
  const std::string name = trim(spec).substr(1);
  if (name.empty()) throw StepError(param + ": \"" + spec + "\" names no image (write \"@name\")");
  auto it = data.images().find(name);
  if (it == data.images().end())
    throw StepError(param + ": \"" + spec + "\": the dataset has no image '" + name +
                    "' (an upstream step must write it)");
  const Image& image = it->second;
  if (image.ny != data.shape().ny || image.nx != data.shape().nx)
    throw StepError(param + ": \"" + spec + "\": image '" + name + "' is " + shape_text(image.ny, image.nx) +
                    " but the data are " + shape_text(data.shape().ny, data.shape().nx) + " (ny x nx)");
  return image;
}

bool is_dataset_image(const std::string& spec) {
  const std::string s = trim(spec);
  return !s.empty() && s.front() == '@';
}

std::uint32_t to_bits(double value, const std::string& param, const std::string& spec) {
  if (!(value >= 0) || value > static_cast<double>(std::numeric_limits<std::uint32_t>::max()) ||
      std::nearbyint(value) != value)
    throw StepError(param + ": \"" + spec + "\": " + std::to_string(value) +
                    " is not a set of DQ bits (a whole number in [0, 2^32))");
  return static_cast<std::uint32_t>(value);
}

}  // namespace

bool is_scalar_spec(const std::string& spec) {
  const std::string s = trim(spec);
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

std::optional<DataRef> reference_read(const std::string& spec, const std::string& param) {
  if (!is_dataset_image(spec)) return std::nullopt;
  const std::string name = trim(spec).substr(1);
  if (name.empty()) return std::nullopt;  // load_reference_* reports it
  return DataRef{DataKind::Image, name,
                 "parameter " + param + " = \"" + trim(spec) + "\" reads the image '" + name +
                     "', which an upstream step must write (e.g. custom_gain writes gain); or give a number or a "
                     "FITS file"};
}

ReferenceImage load_reference_image(const std::string& spec, const std::string& param, StepContext& context,
                                    const std::string& extension) {
  const Dataset& data = context.data();
  const std::size_t pixels = data.shape().ny * data.shape().nx;
  const bool bits_only = extension == "DQ";
  ReferenceImage out;
  out.source = spec;
  if (trim(spec).empty()) throw StepError(param + ": empty reference (give a number, a FITS file or \"@image\")");

  if (is_scalar_spec(spec)) {
    const double value = scalar_value(spec, param);
    if (bits_only)
      out.dq.assign(pixels, to_bits(value, param, spec));
    else
      out.values = {static_cast<float>(value)};
    return out;
  }
  if (is_dataset_image(spec)) {
    const Image& image = dataset_image(spec, param, data);
    if (bits_only) {
      out.dq.resize(pixels);
      for (std::size_t i = 0; i < pixels; ++i) out.dq[i] = to_bits(image.values[i], param, spec);
    } else {
      out.values = image.values;
    }
    return out;
  }

  RefFile ref(trim(spec), param);
  if (bits_only) {
    out.dq = ref.read_dq(data, true);
    return out;
  }
  if (!ref.go_to(extension))
    throw StepError(ref.where()("no " + extension + " extension" +
                                (extension == "SCI" ? std::string(" and no image in the primary HDU") : "")));
  std::size_t planes = 0, ry = 0, rx = 0;
  ref.plane_shape(planes, ry, rx);
  if (planes != 1)
    throw StepError(ref.where()(ref.hdu() + " has " + std::to_string(planes) + " planes; expected one ny x nx image"));
  out.values = ref.read_planes(1, ry, rx, data);
  out.dq = ref.read_dq(data, false);
  return out;
}

ReferenceCube load_reference_cube(const std::string& spec, const std::string& param, StepContext& context,
                                  const std::string& extension, std::size_t max_planes) {
  const Dataset& data = context.data();
  const std::size_t pixels = data.shape().ny * data.shape().nx;
  ReferenceCube out;
  out.source = spec;
  if (trim(spec).empty()) throw StepError(param + ": empty reference (give a number, a FITS file or \"@image\")");

  if (is_scalar_spec(spec)) {
    out.planes = 1;
    out.values.assign(pixels, static_cast<float>(scalar_value(spec, param)));
    return out;
  }
  if (is_dataset_image(spec)) {
    out.planes = 1;
    out.values = dataset_image(spec, param, data).values;
    return out;
  }

  RefFile ref(trim(spec), param);
  if (!ref.go_to(extension))
    throw StepError(ref.where()("no " + extension + " extension" +
                                (extension == "SCI" ? std::string(" and no image in the primary HDU") : "")));
  std::size_t planes = 0, ry = 0, rx = 0;
  ref.plane_shape(planes, ry, rx);
  out.planes = max_planes ? std::min(planes, max_planes) : planes;
  out.values = ref.read_planes(out.planes, ry, rx, data);
  out.dq = ref.read_dq(data, false);
  return out;
}

}  // namespace tessera::jwst
