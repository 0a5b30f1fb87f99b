#include "steps/inputs/jwst_rateints.hpp"

#include <cctype>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>

#include "steps/inputs/jwst_segments.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using jwst_segments::number_text;
using jwst_segments::Segment;

constexpr const char* kSuffix = "_rateints.fits";

/// The image extensions read, in the order of the cubes.
struct Extension {
  const char* extname;
  const char* cube;
  bool floating;   // float32 cube (else uint32 bits)
  bool optional;   // VAR_POISSON / VAR_RNOISE
  unsigned flag;   // bit in UnitHeader::values[extensions_index] when optional
};
constexpr Extension kExtensions[] = {
    {"SCI", "data", true, false, 0},
    {"ERR", "err", true, false, 0},
    {"DQ", "dq", false, false, 0},
    {"VAR_POISSON", "var_poisson", true, true, 1},
    {"VAR_RNOISE", "var_rnoise", true, true, 2},
};

std::string trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  std::size_t first = 0;
  while (first < text.size() && std::isspace(static_cast<unsigned char>(text[first]))) ++first;
  return text.substr(first);
}

/// Units of a variance cube when its extension has no BUNIT: the square of the rate's.
std::string squared(const std::string& units) {
  if (units == "DN/s") return "DN2/s2";
  if (units == "electron/s") return "electron2/s2";
  return "(" + units + ")2";
}

/// "nx x ny x n" of FITS axes (NAXIS1 first), for messages.
std::string axes_text(const std::vector<long>& axes) {
  std::string out;
  for (std::size_t i = 0; i < axes.size(); ++i) out += (i ? " x " : "") + std::to_string(axes[i]);
  return out;
}

class JwstRateintsSource final : public FrameSource {
 public:
  explicit JwstRateintsSource(JwstRateintsParams params) : params_(std::move(params)) {}

  std::vector<std::string> units() override {
    units_ = jwst_segments::list_segments(params_.path, params_.segments, kSuffix, JwstRateints::name);
    return units_;
  }

  UnitHeader read_header(std::size_t unit) override {
    fits::File file = fits::File::open_read(unit_path(unit));
    const std::string& path = file.path();

    if (!file.goto_extension("SCI")) throw InputError(path + ": no SCI extension");
    const std::vector<long> axes = file.axes();
    if (axes.size() != 3)
      throw InputError(path + ": SCI has " + std::to_string(axes.size()) +
                       " axes; expected 3 (NAXIS1 = x, NAXIS2 = y, NAXIS3 = integrations)" +
                       (axes.size() == 2 ? ": is this a *_rate.fits (one image for the exposure) rather than a "
                                           "*_rateints.fits?"
                                         : ""));
    for (long n : axes)
      if (n <= 0) throw InputError(path + ": SCI is empty (an axis of length " + std::to_string(n) + ")");
    if (file.bitpix() > 0)
      throw InputError(path + ": SCI holds integers (BITPIX " + std::to_string(file.bitpix()) +
                       "); expected floating-point rates");
    const auto nx = static_cast<std::size_t>(axes[0]), ny = static_cast<std::size_t>(axes[1]);
    const auto nint = static_cast<std::size_t>(axes[2]);

    const jwst_segments::Numbers numbers = jwst_segments::read_numbers(file, nint, "NAXIS3");
    unsigned present = 0;
    double dq_depth = 3;
    for (const Extension& e : kExtensions) {
      if (!file.goto_extension(e.extname)) {
        if (e.optional) continue;
        throw InputError(path + ": no " + std::string(e.extname) + " extension");
      }
      present |= e.flag;
      const std::vector<long> here = file.axes();
      const bool flat_dq = !e.floating && here.size() == 2 && here[0] == axes[0] && here[1] == axes[1];
      if (here != axes && !flat_dq)
        throw InputError(path + ": " + e.extname + " is " + axes_text(here) + " but SCI is " + axes_text(axes) +
                         " (NAXIS1 x NAXIS2 x NAXIS3 = x, y, integrations)");
      if (e.floating && file.bitpix() > 0)
        throw InputError(path + ": " + e.extname + " holds integers (BITPIX " + std::to_string(file.bitpix()) +
                         "); expected floating point");
      if (!e.floating && file.bitpix() < 0)
        throw InputError(path + ": DQ holds floating-point values (BITPIX " + std::to_string(file.bitpix()) +
                         "); expected integer bit flags");
      if (flat_dq) {
        dq_depth = 2;
        jwst_segments::check_complete(file, e.extname, numbers.intstart, 1, ny * nx);
      } else {
        jwst_segments::check_complete(file, e.extname, numbers.intstart, nint, ny * nx);
      }
    }

    UnitHeader h;
    h.ny = static_cast<double>(ny);
    h.nx = static_cast<double>(nx);
    h.values[JwstRateints::intstart_index] = static_cast<double>(numbers.intstart);
    h.values[JwstRateints::intend_index] = static_cast<double>(numbers.intend);
    h.values[JwstRateints::exsegnum_index] = static_cast<double>(numbers.exsegnum);
    h.values[JwstRateints::nints_index] = numbers.nints.value_or(0.0);
    h.values[JwstRateints::extensions_index] = static_cast<double>(present);
    h.values[JwstRateints::dq_depth_index] = dq_depth;
    return h;
  }

  FrameOrder arrange(const std::vector<UnitHeader>& headers) override {
    if (units_.empty()) units();
    if (headers.size() != units_.size())
      throw InternalError("jwst_rateints: " + std::to_string(headers.size()) + " headers for " +
                          std::to_string(units_.size()) + " files");
    segments_.assign(units_.size(), Segment{});
    flat_dq_.assign(units_.size(), false);
    unsigned common = 3;  // optional extensions every segment has
    for (std::size_t u = 0; u < units_.size(); ++u) {
      const UnitHeader& h = headers[u];
      segments_[u].path = units_[u];
      segments_[u].intstart = static_cast<long long>(h.values[JwstRateints::intstart_index]);
      segments_[u].intend = static_cast<long long>(h.values[JwstRateints::intend_index]);
      segments_[u].exsegnum = static_cast<long long>(h.values[JwstRateints::exsegnum_index]);
      common &= static_cast<unsigned>(h.values[JwstRateints::extensions_index]);
      flat_dq_[u] = h.values[JwstRateints::dq_depth_index] == 2;
    }
    const std::vector<std::size_t> order = jwst_segments::exposure_order(segments_);
    const std::size_t first = order.front();
    const UnitHeader& h0 = headers[first];
    for (std::size_t u : order) {
      const UnitHeader& h = headers[u];
      if (h.ny != h0.ny || h.nx != h0.nx)
        throw InputError(units_[u] + ": SCI is " + number_text(h.ny) + " x " + number_text(h.nx) + " pixels but " +
                         units_[first] + " is " + number_text(h0.ny) + " x " + number_text(h0.nx) +
                         " (ny x nx); the segments are not one exposure");
    }
    jwst_segments::Timeline timeline =
        jwst_segments::arrange_exposure(segments_, order, params_.path, params_.missing_int_times, std::nullopt);
    attributes_ = std::move(timeline.attributes);

    // Units from BUNIT, which must agree between segments.
    units_of_.clear();
    for (std::size_t u : order) {
      fits::File file = fits::File::open_read(units_[u]);
      for (const Extension& e : kExtensions) {
        if (!e.floating || (e.optional && !(common & e.flag))) continue;
        if (!file.goto_extension(e.extname)) throw InputError(units_[u] + ": no " + std::string(e.extname) + " extension");
        const std::optional<std::string> bunit = file.read_string("BUNIT");
        const std::string value = bunit ? trim(*bunit) : std::string();
        auto [it, inserted] = units_of_.emplace(e.extname, value);
        if (!inserted && it->second != value)
          throw InputError(units_[u] + ": " + e.extname + " BUNIT = '" + value + "' but " + units_[first] + " has '" +
                           it->second + "'; the segments are not one exposure");
      }
    }
    std::string& rate = units_of_["SCI"];
    if (rate.empty()) rate = "DN/s";  // ramp_fit's units, before any photometric calibration
    if (units_of_["ERR"].empty()) units_of_["ERR"] = rate;
    for (const char* v : {"VAR_POISSON", "VAR_RNOISE"})
      if (auto it = units_of_.find(v); it != units_of_.end() && it->second.empty()) it->second = squared(rate);
    common_ = common;
    arranged_ = true;

    FrameOrder out;
    out.units = std::move(timeline.units);
    out.shape = {out.units.size(), static_cast<std::size_t>(h0.ny), static_cast<std::size_t>(h0.nx), 1};
    out.vectors = std::move(timeline.vectors);
    return out;
  }

  std::vector<DataOut> cubes() const override {
    std::vector<DataOut> out;
    for (const Extension& e : kExtensions) {
      if (e.optional && arranged_ && !(common_ & e.flag)) continue;
      out.push_back(cube_of(e));
    }
    return out;
  }

  void read_frame(std::size_t unit, std::size_t t, Dataset& data) override {
    if (!arranged_) throw InternalError("jwst_rateints: read_frame before arrange");
    const Segment& s = segment_of(unit);
    if (t < s.first_frame || t >= s.first_frame + s.count())
      throw InternalError("jwst_rateints: frame " + std::to_string(t) + " is not in " + s.path);
    const CubeShape& shape = data.shape();
    const std::size_t pixels = shape.ny * shape.nx;
    if (!file_ || open_unit_ != unit) {
      file_.reset();
      file_.emplace(fits::File::open_read(s.path));
      open_unit_ = unit;
    }
    const std::size_t k = t - s.first_frame;
    const std::vector<long> expected{static_cast<long>(shape.nx), static_cast<long>(shape.ny), static_cast<long>(s.count())};
    for (const Extension& e : kExtensions) {
      if (e.optional && !(common_ & e.flag)) continue;
      if (!file_->goto_extension(e.extname)) {
        file_.reset();
        throw InputError(s.path + ": no " + std::string(e.extname) + " extension (any more)");
      }
      // Re-checked here: the file may have changed since its header was read.
      const bool flat = !e.floating && flat_dq_[unit];
      const std::vector<long> axes = file_->axes();
      if (flat ? (axes.size() != 2 || axes[0] != expected[0] || axes[1] != expected[1]) : axes != expected) {
        file_.reset();
        throw InputError(s.path + ": " + e.extname + " is no longer " + axes_text(flat ? std::vector<long>{expected[0], expected[1]} : expected) +
                         " (x, y, integrations) as when its header was read");
      }
      try {
        if (e.floating) {
          file_->read_pixels_float(data.frames<float>(e.cube).frame(t), k * pixels);
        } else {
          file_->read_pixels_uint32(data.frames<std::uint32_t>(e.cube).frame(t), flat ? 0 : k * pixels);
        }
      } catch (const InputError& error) {
        file_.reset();
        throw InputError(s.path + ": cannot read integration " + std::to_string(s.intstart + static_cast<long long>(k)) +
                         " (number " + std::to_string(k + 1) + " of " + std::to_string(s.count()) + " in this file's " +
                         e.extname + "); is the file truncated? " + error.what());
      }
    }
  }

  void read_extras(Dataset& data) override {
    if (!arranged_) throw InternalError("jwst_rateints: read_extras before arrange");
    file_.reset();  // every frame of this rank has been read
    for (const auto& [key, value] : attributes_) data.attributes()[key] = value;
  }

  std::vector<DataOut> provides() const override {
    std::vector<DataOut> out;
    const unsigned present = may_have_variances();
    for (const Extension& e : kExtensions)
      if (!e.optional || (present & e.flag)) out.push_back(cube_of(e));
    for (DataOut& v :
         jwst_segments::timeline_provides(jwst_segments::may_have_bjd(params_.path, params_.segments, kSuffix)))
      out.push_back(std::move(v));
    return out;
  }

 private:
  DataOut cube_of(const Extension& e) const {
    auto units = [&](const char* extname, const std::string& fallback) {
      auto it = units_of_.find(extname);
      return it != units_of_.end() ? it->second : fallback;
    };
    const std::string rate = units("SCI", "DN/s");
    if (std::string(e.cube) == "data")
      return {DataKind::Cube, {"data", rate, "count rate per integration (rateints SCI)"}, ElementType::Float32};
    if (std::string(e.cube) == "err")
      return {DataKind::Cube, {"err", units("ERR", rate), "total 1-sigma uncertainty of the rate (rateints ERR)"},
              ElementType::Float32};
    if (std::string(e.cube) == "dq")
      return {DataKind::Cube, {"dq", "1", "JWST pixel data quality flags (bitwise, rateints DQ)"}, ElementType::UInt32};
    if (std::string(e.cube) == "var_poisson")
      return {DataKind::Cube,
              {"var_poisson", units("VAR_POISSON", squared(rate)), "Poisson variance of the rate (rateints VAR_POISSON)"},
              ElementType::Float32};
    return {DataKind::Cube,
            {"var_rnoise", units("VAR_RNOISE", squared(rate)), "read-noise variance of the rate (rateints VAR_RNOISE)"},
            ElementType::Float32};
  }

  /// Which optional extensions the exposure has, judged from its first segment file; both
  /// when that cannot be known yet (no files), so that validation does not refuse a workflow.
  unsigned may_have_variances() const {
    try {
      std::error_code ec;
      std::string file;
      if (fs::is_directory(params_.path, ec)) {
        if (!params_.segments.empty()) {
          file = (fs::path(params_.path) / params_.segments.front()).string();
        } else {
          const std::vector<std::string> files =
              jwst_segments::list_segments(params_.path, {}, kSuffix, JwstRateints::name);
          file = files.front();
        }
      } else {
        file = params_.path;
      }
      if (!fs::is_regular_file(file, ec)) return 3;
      fits::File f = fits::File::open_read(file);
      unsigned present = 0;
      for (const Extension& e : kExtensions)
        if (e.optional && f.goto_extension(e.extname)) present |= e.flag;
      return present;
    } catch (const InputError&) {
      return 3;
    }
  }

  const std::string& unit_path(std::size_t unit) {
    if (units_.empty()) units();
    if (unit >= units_.size())
      throw InternalError("jwst_rateints: unit " + std::to_string(unit) + " of " + std::to_string(units_.size()));
    return units_[unit];
  }

  const Segment& segment_of(std::size_t unit) const {
    if (unit >= segments_.size())
      throw InternalError("jwst_rateints: unit " + std::to_string(unit) + " of " + std::to_string(segments_.size()));
    return segments_[unit];
  }

  JwstRateintsParams params_;
  std::vector<std::string> units_;               // listed on first use
  std::vector<Segment> segments_;                // by unit, once arranged
  std::vector<bool> flat_dq_;                    // by unit: DQ is one 2D image
  std::map<std::string, std::string> units_of_;  // BUNIT by extension, once arranged
  std::map<std::string, AttrValue> attributes_;  // set by arrange, copied by read_extras
  unsigned common_ = 3;                          // optional extensions read
  bool arranged_ = false;
  std::optional<fits::File> file_;  // the segment being read, kept open between its frames
  std::size_t open_unit_ = 0;
};

}  // namespace

Schema<JwstRateintsParams> JwstRateintsParams::schema() {
  using P = JwstRateintsParams;
  return tessera::schema<P>(
      field(&P::path, "path",
            "Directory holding the exposure's *_rateints.fits segment files, or one *_rateints.fits file", Required{}),
      field(&P::segments, "segments",
            "Segment files to read, by name inside `path` (e.g. "
            "[\"jw01366004001_04101_00001-seg002_nis_rateints.fits\"]); empty: every *_rateints.fits in `path`. They "
            "must be consecutive segments of one exposure"),
      field(&P::missing_int_times, "missing_int_times", jwst_segments::missing_int_times_doc,
            Choices{{"error", "estimate"}}));
}

std::unique_ptr<FrameSource> JwstRateints::open(const Params& params) {
  return std::make_unique<JwstRateintsSource>(params);
}

}  // namespace tessera
