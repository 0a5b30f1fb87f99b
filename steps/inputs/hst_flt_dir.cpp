#include "steps/inputs/hst_flt_dir.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <numeric>
#include <utility>

#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"

namespace tessera {
namespace {

namespace fs = std::filesystem;

const VarInfo kTime{"time", "d", "mid-exposure time, (EXPSTART + EXPEND) / 2 (MJD)"};
const VarInfo kExptime{"exptime", "s", "exposure time (EXPTIME)"};
const VarInfo kOrbit{"orbit", "1", "HST orbit of the frame in the visit (0-based, counted before skipping)"};
const VarInfo kFrameInOrbit{"frame_in_orbit", "1",
                            "index of the frame within its orbit (0-based, counted before skipping)"};
const VarInfo kDirectImage{"direct_image", "electron", "direct image (SCI of the earliest directimages/ exposure)"};

/// Paths of the *_flt.fits files in `dir`, sorted by name; empty when `dir` does not exist.
std::vector<std::string> list_flt(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::string suffix = "_flt.fits";
    if (name.size() > suffix.size() && name.ends_with(suffix) && it->is_regular_file(ec))
      out.push_back(it->path().string());
  }
  if (ec) throw InputError(dir.string() + ": cannot list the directory: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

std::string shape_text(std::size_t ny, std::size_t nx) { return std::to_string(ny) + " x " + std::to_string(nx); }
std::string shape_text(const UnitHeader& h) {
  return shape_text(static_cast<std::size_t>(h.ny), static_cast<std::size_t>(h.nx));
}

struct FrameSize {
  std::size_t ny = 0, nx = 0;
  bool operator==(const FrameSize&) const = default;
};

/// Checks that SCI and ERR (floating point) and DQ (integer) exist as 2D images of one
/// shape, and returns it. Throws InputError "file: what is wrong".
FrameSize check_extensions(fits::File& file) {
  struct Expected {
    const char* name;
    bool floating;
  };
  FrameSize size;
  for (const Expected& e : {Expected{"SCI", true}, Expected{"ERR", true}, Expected{"DQ", false}}) {
    const std::string name = e.name;
    if (!file.goto_extension(name)) throw InputError(file.path() + ": no " + name + " extension");
    const int bitpix = file.bitpix();
    if (e.floating && bitpix > 0)
      throw InputError(file.path() + ": " + name + " extension holds integers (BITPIX " + std::to_string(bitpix) +
                       "); expected floating point (BITPIX -32 or -64)");
    if (!e.floating && bitpix < 0)
      throw InputError(file.path() + ": " + name + " extension holds floating-point values (BITPIX " +
                       std::to_string(bitpix) + "); expected integers");
    const std::vector<long> axes = file.axes();
    if (axes.size() != 2)
      throw InputError(file.path() + ": " + name + " extension has " + std::to_string(axes.size()) +
                       " axes; expected a 2D image");
    if (axes[0] <= 0 || axes[1] <= 0) throw InputError(file.path() + ": " + name + " extension is empty");
    const FrameSize here{static_cast<std::size_t>(axes[1]), static_cast<std::size_t>(axes[0])};
    if (name == "SCI") {
      size = here;
    } else if (here != size) {
      throw InputError(file.path() + ": " + name + " extension is " + shape_text(here.ny, here.nx) + " but SCI is " +
                       shape_text(size.ny, size.nx) + " (ny x nx)");
    }
  }
  return size;
}

struct OrbitIndex {
  std::size_t orbit = 0, frame_in_orbit = 0;
};

/// Orbit of each exposure (in time order): a new orbit starts when the gap from the end of
/// one exposure to the start of the next exceeds `gap_days` (HST's Earth occultations).
std::vector<OrbitIndex> find_orbits(const std::vector<double>& starts, const std::vector<double>& ends,
                                    double gap_days) {
  std::vector<OrbitIndex> out(starts.size());
  for (std::size_t k = 1; k < starts.size(); ++k) {
    if (starts[k] - ends[k - 1] > gap_days) {
      out[k] = {out[k - 1].orbit + 1, 0};
    } else {
      out[k] = {out[k - 1].orbit, out[k - 1].frame_in_orbit + 1};
    }
  }
  return out;
}

class HstFltSource final : public FrameSource {
 public:
  explicit HstFltSource(HstFltDirParams params) : params_(std::move(params)) {}

  std::vector<std::string> units() override {
    const fs::path root(params_.path);
    std::error_code ec;
    if (!fs::exists(root, ec)) throw InputError(params_.path + ": input directory does not exist");
    if (!fs::is_directory(root, ec)) throw InputError(params_.path + ": input path is not a directory");
    const fs::path spec = root / "specimages";
    if (!fs::is_directory(spec, ec))
      throw InputError(spec.string() + ": no such directory (hst_flt_dir reads the visit's exposures from "
                       "PATH/specimages/*_flt.fits)");
    units_ = list_flt(spec);
    if (units_.empty()) throw InputError(spec.string() + ": no *_flt.fits files");
    return units_;
  }

  UnitHeader read_header(std::size_t unit) override {
    fits::File file = fits::File::open_read(unit_path(unit));
    UnitHeader h;
    h.values[HstFltDir::expstart_index] = file.require_double("EXPSTART");
    h.values[HstFltDir::expend_index] = file.require_double("EXPEND");
    h.values[HstFltDir::exptime_index] = file.require_double("EXPTIME");
    if (h.values[HstFltDir::expend_index] < h.values[HstFltDir::expstart_index])
      throw InputError(file.path() + ": EXPEND is before EXPSTART");
    const FrameSize size = check_extensions(file);
    h.ny = static_cast<double>(size.ny);
    h.nx = static_cast<double>(size.nx);
    return h;
  }

  FrameOrder arrange(const std::vector<UnitHeader>& headers) override {
    if (units_.empty()) units();
    if (headers.size() != units_.size())
      throw InternalError("hst_flt_dir: " + std::to_string(headers.size()) + " headers for " +
                          std::to_string(units_.size()) + " files");
    std::vector<std::size_t> by_time(headers.size());
    std::iota(by_time.begin(), by_time.end(), std::size_t{0});
    std::stable_sort(by_time.begin(), by_time.end(), [&](std::size_t a, std::size_t b) {
      return headers[a].values[HstFltDir::expstart_index] < headers[b].values[HstFltDir::expstart_index];
    });

    const UnitHeader& first = headers[by_time.front()];
    std::vector<double> starts, ends;
    for (std::size_t unit : by_time) {
      const UnitHeader& h = headers[unit];
      if (h.ny != first.ny || h.nx != first.nx)
        throw InputError(units_[unit] + ": frame is " + shape_text(h) + " but " + units_[by_time.front()] + " is " +
                         shape_text(first) + " (ny x nx)");
      starts.push_back(h.values[HstFltDir::expstart_index]);
      ends.push_back(h.values[HstFltDir::expend_index]);
    }
    const std::vector<OrbitIndex> orbits = find_orbits(starts, ends, params_.orbit_gap_minutes / (24.0 * 60.0));

    FrameOrder order;
    FrameVector time{kTime, {}, false}, exptime{kExptime, {}, false};
    FrameVector orbit{kOrbit, {}, true}, frame_in_orbit{kFrameInOrbit, {}, true};
    for (std::size_t k = 0; k < by_time.size(); ++k) {
      if (params_.skip_first_or && orbits[k].orbit == 0) continue;
      if (params_.skip_first_fm && orbits[k].frame_in_orbit == 0) continue;
      const UnitHeader& h = headers[by_time[k]];
      order.units.push_back(by_time[k]);
      time.values.push_back(0.5 * (starts[k] + ends[k]));
      exptime.values.push_back(h.values[HstFltDir::exptime_index]);
      orbit.values.push_back(static_cast<double>(orbits[k].orbit));
      frame_in_orbit.values.push_back(static_cast<double>(orbits[k].frame_in_orbit));
    }
    if (order.units.empty())
      throw InputError(params_.path + ": skip_first_or/skip_first_fm leave no frames of " +
                       std::to_string(by_time.size()) + " in " + std::to_string(orbits.back().orbit + 1) + " orbit(s)");
    first_unit_ = order.units.front();
    order.shape = {order.units.size(), static_cast<std::size_t>(first.ny), static_cast<std::size_t>(first.nx)};
    order.vectors = {std::move(time), std::move(exptime), std::move(orbit), std::move(frame_in_orbit)};
    return order;
  }

  std::vector<DataOut> cubes() const override {
    return {{DataKind::Cube, {"data", "electron", "HST calibrated counts (flt SCI)"}, ElementType::Float32},
            {DataKind::Cube, {"err", "electron", "uncertainty of data (flt ERR)"}, ElementType::Float32},
            {DataKind::Cube, {"dq", "1", "HST data quality flags (bitwise)"}, ElementType::UInt32}};
  }

  void read_frame(std::size_t unit, std::size_t t, Dataset& data) override {
    fits::File file = fits::File::open_read(unit_path(unit));
    // Re-checked here: the file may have changed since its header was read.
    const FrameSize size = check_extensions(file);
    if (size.ny != data.shape().ny || size.nx != data.shape().nx)
      throw InputError(file.path() + ": frame is " + shape_text(size.ny, size.nx) + " but the visit's frames are " +
                       shape_text(data.shape().ny, data.shape().nx) + " (ny x nx)");
    file.goto_extension("SCI");
    file.read_image_float(data.frames<float>("data").frame(t));
    file.goto_extension("ERR");
    file.read_image_float(data.frames<float>("err").frame(t));
    file.goto_extension("DQ");
    file.read_image_uint32(data.frames<std::uint32_t>("dq").frame(t));
  }

  void read_extras(Dataset& data) override {
    data.attributes()["input_path"] = params_.path;
    // Observation keywords of the first frame, under their lower-cased FITS names.
    fits::File first = fits::File::open_read(unit_path(first_unit_));
    for (const char* key : {"TARGNAME", "INSTRUME", "DETECTOR", "FILTER", "APERTURE"}) {
      if (auto value = first.read_string(key)) {
        std::string name = key;
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        data.attributes()[name] = *value;
      }
    }

    const std::vector<std::string> direct = list_flt(fs::path(params_.path) / "directimages");
    if (direct.empty()) return;
    std::size_t earliest = 0;
    double earliest_start = 0;
    for (std::size_t i = 0; i < direct.size(); ++i) {
      const double start = fits::File::open_read(direct[i]).require_double("EXPSTART");
      if (i == 0 || start < earliest_start) {
        earliest = i;
        earliest_start = start;
      }
    }
    fits::File file = fits::File::open_read(direct[earliest]);
    if (!file.goto_extension("SCI")) throw InputError(file.path() + ": no SCI extension");
    Image image;
    image.info = kDirectImage;
    image.dim_y = "direct_y";
    image.dim_x = "direct_x";
    image.values = file.read_image_float();  // checks the image is 2D
    const std::vector<long> axes = file.axes();
    image.ny = static_cast<std::size_t>(axes[1]);
    image.nx = static_cast<std::size_t>(axes[0]);
    data.images()[kDirectImage.name] = std::move(image);
    data.attributes()["direct_image_file"] = fs::path(direct[earliest]).filename().string();
  }

  std::vector<DataOut> provides() const override {
    std::vector<DataOut> out = cubes();
    out.push_back({DataKind::FrameVector, kTime});
    out.push_back({DataKind::FrameVector, kExptime});
    out.push_back({DataKind::FrameVector, kOrbit, ElementType::Float32, true});
    out.push_back({DataKind::FrameVector, kFrameInOrbit, ElementType::Float32, true});
    // Listing a directory is not reading data, and validation needs to know. A visit directory
    // that does not exist (yet) is reported when the run reads it, naming the path, rather than
    // here as a missing direct image.
    std::error_code ec;
    if (!fs::is_directory(params_.path, ec) || !list_flt(fs::path(params_.path) / "directimages").empty())
      out.push_back({DataKind::Image, kDirectImage});
    return out;
  }

 private:
  const std::string& unit_path(std::size_t unit) {
    if (units_.empty()) units();
    if (unit >= units_.size())
      throw InternalError("hst_flt_dir: unit " + std::to_string(unit) + " of " + std::to_string(units_.size()));
    return units_[unit];
  }

  HstFltDirParams params_;
  std::vector<std::string> units_;  // listed on first use
  std::size_t first_unit_ = 0;      // first frame in time order, once arranged
};

}  // namespace

Schema<HstFltDirParams> HstFltDirParams::schema() {
  using P = HstFltDirParams;
  return tessera::schema<P>(
      field(&P::path, "path", "Visit directory holding specimages/*_flt.fits and optionally directimages/ "
                              "(template: toplevel_dir)",
            Required{}),
      field(&P::skip_first_fm, "skip_first_fm", "Drop the first frame of every orbit (first-frame systematics)"),
      field(&P::skip_first_or, "skip_first_or", "Drop every frame of the first orbit (first-orbit systematics)"),
      field(&P::orbit_gap_minutes, "orbit_gap_minutes",
            "A gap longer than this (minutes) from one exposure's end to the next one's start begins a new orbit",
            Range::above(0)));
}

std::unique_ptr<FrameSource> HstFltDir::open(const Params& params) { return std::make_unique<HstFltSource>(params); }

}  // namespace tessera
