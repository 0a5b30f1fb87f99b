#include "steps/inputs/jwst_uncal.hpp"

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
using jwst_segments::range_text;
using jwst_segments::Segment;

constexpr const char* kSuffix = "_uncal.fits";

class JwstUncalSource final : public FrameSource {
 public:
  explicit JwstUncalSource(JwstUncalParams params) : params_(std::move(params)) {}

  std::vector<std::string> units() override {
    units_ = jwst_segments::list_segments(params_.path, params_.segments, kSuffix, JwstUncal::name);
    return units_;
  }

  UnitHeader read_header(std::size_t unit) override {
    fits::File file = fits::File::open_read(unit_path(unit));
    const std::string& path = file.path();
    const std::optional<double> ngroups_kw = file.read_double("NGROUPS");
    const std::optional<double> tgroup_kw = file.read_double("TGROUP");

    if (!file.goto_extension("SCI")) throw InputError(path + ": no SCI extension");
    const std::vector<long> axes = file.axes();
    if (axes.size() != 4)
      throw InputError(path + ": SCI has " + std::to_string(axes.size()) +
                       " axes; expected 4 (NAXIS1 = x, NAXIS2 = y, NAXIS3 = groups, NAXIS4 = integrations)");
    for (long n : axes)
      if (n <= 0) throw InputError(path + ": SCI is empty (an axis of length " + std::to_string(n) + ")");
    const auto nx = static_cast<std::size_t>(axes[0]), ny = static_cast<std::size_t>(axes[1]);
    const auto ng = static_cast<std::size_t>(axes[2]), nint = static_cast<std::size_t>(axes[3]);
    if (ngroups_kw && *ngroups_kw != static_cast<double>(ng))
      throw InputError(path + ": NGROUPS = " + number_text(*ngroups_kw) + " but SCI holds " + std::to_string(ng) +
                       " groups per integration (NAXIS3)");
    const jwst_segments::Numbers numbers = jwst_segments::read_numbers(file, nint, "NAXIS4");
    if (!file.goto_extension("SCI")) throw InputError(path + ": no SCI extension");
    jwst_segments::check_complete(file, "SCI", numbers.intstart, nint, ng * ny * nx);

    UnitHeader h;
    h.ny = static_cast<double>(ny);
    h.nx = static_cast<double>(nx);
    h.values[JwstUncal::intstart_index] = static_cast<double>(numbers.intstart);
    h.values[JwstUncal::intend_index] = static_cast<double>(numbers.intend);
    h.values[JwstUncal::ngroups_index] = static_cast<double>(ng);
    h.values[JwstUncal::exsegnum_index] = static_cast<double>(numbers.exsegnum);
    h.values[JwstUncal::nints_index] = numbers.nints.value_or(0.0);
    h.values[JwstUncal::tgroup_index] = tgroup_kw.value_or(0.0);
    return h;
  }

  FrameOrder arrange(const std::vector<UnitHeader>& headers) override {
    if (units_.empty()) units();
    if (headers.size() != units_.size())
      throw InternalError("jwst_uncal: " + std::to_string(headers.size()) + " headers for " +
                          std::to_string(units_.size()) + " files");
    segments_.assign(units_.size(), Segment{});
    for (std::size_t u = 0; u < units_.size(); ++u) {
      const UnitHeader& h = headers[u];
      segments_[u].path = units_[u];
      segments_[u].intstart = static_cast<long long>(h.values[JwstUncal::intstart_index]);
      segments_[u].intend = static_cast<long long>(h.values[JwstUncal::intend_index]);
      segments_[u].exsegnum = static_cast<long long>(h.values[JwstUncal::exsegnum_index]);
    }
    const std::vector<std::size_t> order = jwst_segments::exposure_order(segments_);

    // Shapes first; then the shared checks of the run of segments, keywords and times.
    const std::size_t first = order.front();
    const UnitHeader& h0 = headers[first];
    for (std::size_t u : order) {
      const UnitHeader& h = headers[u];
      if (h.ny != h0.ny || h.nx != h0.nx)
        throw InputError(units_[u] + ": SCI is " + number_text(h.ny) + " x " + number_text(h.nx) + " pixels but " +
                         units_[first] + " is " + number_text(h0.ny) + " x " + number_text(h0.nx) +
                         " (ny x nx); the segments are not one exposure");
      if (h.values[JwstUncal::ngroups_index] != h0.values[JwstUncal::ngroups_index])
        throw InputError(units_[u] + ": NGROUPS = " + number_text(h.values[JwstUncal::ngroups_index]) + " but " +
                         units_[first] + " has NGROUPS = " + number_text(h0.values[JwstUncal::ngroups_index]) +
                         "; the segments are not one exposure");
    }
    const std::size_t ng = static_cast<std::size_t>(h0.values[JwstUncal::ngroups_index]);
    jwst_segments::Timeline timeline =
        jwst_segments::arrange_exposure(segments_, order, params_.path, params_.missing_int_times, ng);
    attributes_ = std::move(timeline.attributes);

    FrameOrder out;
    out.units = std::move(timeline.units);
    out.shape = {out.units.size(), static_cast<std::size_t>(h0.ny), static_cast<std::size_t>(h0.nx), ng};
    out.vectors = std::move(timeline.vectors);
    return out;
  }

  std::vector<DataOut> cubes() const override {
    DataOut ramp{DataKind::Cube, {"ramp", "DN", "up-the-ramp group reads, uncal SCI with BZERO/BSCALE applied"},
                 ElementType::Float32};
    ramp.grouped = true;
    DataOut groupdq{DataKind::Cube, {"groupdq", "1", "JWST group data quality flags (bitwise, low 8 bits)"},
                    ElementType::UInt8};
    groupdq.grouped = true;
    DataOut dq{DataKind::Cube, {"dq", "1", "JWST pixel data quality flags (bitwise)"}, ElementType::UInt32};
    return {ramp, groupdq, dq};
  }

  void read_frame(std::size_t unit, std::size_t t, Dataset& data) override {
    if (segments_.empty()) throw InternalError("jwst_uncal: read_frame before arrange");
    const Segment& s = segment_of(unit);
    if (t < s.first_frame || t >= s.first_frame + s.count())
      throw InternalError("jwst_uncal: frame " + std::to_string(t) + " is not in " + s.path);
    const CubeShape& shape = data.shape();
    const std::size_t per_integration = shape.ng * shape.ny * shape.nx;
    if (!file_ || open_unit_ != unit) {
      file_.reset();
      fits::File file = fits::File::open_read(s.path);
      if (!file.goto_extension("SCI")) throw InputError(s.path + ": no SCI extension");
      // Re-checked here: the file may have changed since its header was read.
      const std::vector<long> axes = file.axes();
      const std::vector<long> expected{static_cast<long>(shape.nx), static_cast<long>(shape.ny),
                                       static_cast<long>(shape.ng), static_cast<long>(s.count())};
      if (axes != expected)
        throw InputError(s.path + ": SCI is no longer " + std::to_string(s.count()) + " x " +
                         std::to_string(shape.ng) + " x " + std::to_string(shape.ny) + " x " +
                         std::to_string(shape.nx) + " (integrations x groups x ny x nx) as when its header was read");
      file_.emplace(std::move(file));
      open_unit_ = unit;
    }
    const std::span<float> out = data.frames<float>("ramp").frame(t);
    if (out.size() != per_integration) throw InternalError("jwst_uncal: ramp frame size");
    const std::size_t k = t - s.first_frame;
    try {
      file_->read_pixels_float(out, k * per_integration);
    } catch (const InputError& e) {
      file_.reset();
      throw InputError(s.path + ": cannot read integration " + std::to_string(s.intstart + static_cast<long long>(k)) +
                       " (number " + std::to_string(k + 1) + " of " + std::to_string(s.count()) +
                       " in this file's SCI); is the file truncated? " + e.what());
    }
  }

  void read_extras(Dataset& data) override {
    if (segments_.empty()) throw InternalError("jwst_uncal: read_extras before arrange");
    file_.reset();  // every frame of this rank has been read
    for (const auto& [key, value] : attributes_) data.attributes()[key] = value;
  }

  std::vector<DataOut> provides() const override {
    std::vector<DataOut> out = cubes();
    for (DataOut& v : jwst_segments::timeline_provides(jwst_segments::may_have_bjd(params_.path, params_.segments, kSuffix)))
      out.push_back(std::move(v));
    return out;
  }

 private:
  const std::string& unit_path(std::size_t unit) {
    if (units_.empty()) units();
    if (unit >= units_.size())
      throw InternalError("jwst_uncal: unit " + std::to_string(unit) + " of " + std::to_string(units_.size()));
    return units_[unit];
  }

  const Segment& segment_of(std::size_t unit) const {
    if (unit >= segments_.size())
      throw InternalError("jwst_uncal: unit " + std::to_string(unit) + " of " + std::to_string(segments_.size()));
    return segments_[unit];
  }

  JwstUncalParams params_;
  std::vector<std::string> units_;        // listed on first use
  std::vector<Segment> segments_;         // by unit, once arranged
  std::map<std::string, AttrValue> attributes_;  // set by arrange, copied by read_extras
  std::optional<fits::File> file_;        // the segment being read, kept open between its frames
  std::size_t open_unit_ = 0;
};

}  // namespace

Schema<JwstUncalParams> JwstUncalParams::schema() {
  using P = JwstUncalParams;
  return tessera::schema<P>(
      field(&P::path, "path",
            "Directory holding the exposure's *_uncal.fits segment files, or one *_uncal.fits file", Required{}),
      field(&P::segments, "segments",
            "Segment files to read, by name inside `path` (e.g. [\"jw01366004001_04101_00001-seg002_nis_uncal.fits\"]); "
            "empty: every *_uncal.fits in `path`. They must be consecutive segments of one exposure"),
      field(&P::missing_int_times, "missing_int_times", jwst_segments::missing_int_times_doc,
            Choices{{"error", "estimate"}}));
}

std::unique_ptr<FrameSource> JwstUncal::open(const Params& params) {
  return std::make_unique<JwstUncalSource>(params);
}

}  // namespace tessera
