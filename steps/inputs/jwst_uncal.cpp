#include "steps/inputs/jwst_uncal.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <optional>
#include <utility>

#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"

namespace tessera {
namespace {

namespace fs = std::filesystem;

const VarInfo kTime{"time", "d", "mid-integration time, int_mid_MJD_UTC of INT_TIMES (MJD UTC)"};
const VarInfo kIntStart{"int_start", "d", "integration start time, int_start_MJD_UTC of INT_TIMES (MJD UTC)"};
const VarInfo kIntEnd{"int_end", "d", "integration end time, int_end_MJD_UTC of INT_TIMES (MJD UTC)"};
const VarInfo kIntMidBjd{"int_mid_bjd", "d", "mid-integration time, int_mid_BJD_TDB of INT_TIMES (BJD TDB)"};
const VarInfo kIntegration{"integration", "1", "integration number in the exposure (1-based, as INTSTART/INTEND)"};
const VarInfo kSegment{"segment", "1", "exposure segment holding the integration (EXSEGNUM, 1-based)"};

constexpr const char* kSuffix = "_uncal.fits";

/// Keywords that must agree between the segments of one exposure.
const char* const kStringKeys[] = {"INSTRUME", "DETECTOR", "EXP_TYPE", "READPATT", "SUBARRAY"};
const char* const kNumberKeys[] = {"NGROUPS",  "TGROUP",   "NFRAMES",  "GROUPGAP", "TFRAME",
                                   "NRESETS",  "NINTS",    "EXSEGTOT", "SUBSTRT1", "SUBSTRT2", "FRMDIVSR"};

/// Paths of the *_uncal.fits files in `dir`, sorted by name.
std::vector<std::string> list_uncal(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > std::string_view(kSuffix).size() && name.ends_with(kSuffix) && it->is_regular_file(ec))
      out.push_back(it->path().string());
  }
  if (ec) throw InputError(dir.string() + ": cannot list the directory: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::string trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  std::size_t first = 0;
  while (first < text.size() && std::isspace(static_cast<unsigned char>(text[first]))) ++first;
  return text.substr(first);
}

std::string number_text(double v) {
  if (std::nearbyint(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.10g", v);
  return buffer;
}

std::string range_text(long long a, long long b) { return std::to_string(a) + ".." + std::to_string(b); }

std::string base_name(const std::string& path) { return fs::path(path).filename().string(); }

/// A whole, positive-or-zero number from a header value; throws naming the file and key.
long long whole(double value, const std::string& file, const char* key) {
  if (!std::isfinite(value) || std::nearbyint(value) != value || value < 0)
    throw InputError(file + ": " + key + " = " + number_text(value) + " is not a whole number >= 0");
  return static_cast<long long>(value);
}

/// What arrange() learns about one segment.
struct Segment {
  std::string path;
  long long intstart = 1, intend = 1, exsegnum = 1;
  std::size_t first_frame = 0;  ///< global frame index of its first integration
  std::size_t count() const { return static_cast<std::size_t>(intend - intstart + 1); }
};

/// One INT_TIMES row.
struct IntTimes {
  double start = 0, mid = 0, end = 0, mid_bjd = 0;
  bool has_bjd = false;
};

/// Rows of `file`'s INT_TIMES table added to `rows` by integration number (the first table
/// holding a number wins). Nothing when the file has no such table.
void read_int_times(fits::File& file, std::map<long long, IntTimes>& rows) {
  if (!file.goto_table("INT_TIMES") || file.table_rows() == 0) return;
  const std::vector<double> number = file.read_column_double("integration_number");
  const std::vector<double> start = file.read_column_double("int_start_MJD_UTC");
  const std::vector<double> mid = file.read_column_double("int_mid_MJD_UTC");
  const std::vector<double> end = file.read_column_double("int_end_MJD_UTC");
  std::vector<double> mid_bjd;
  try {
    mid_bjd = file.read_column_double("int_mid_BJD_TDB");
  } catch (const InputError&) {
    // Optional column: without it there is no int_mid_bjd vector.
  }
  for (std::size_t r = 0; r < number.size(); ++r) {
    const long long n = whole(number[r], file.path() + ": INT_TIMES row " + std::to_string(r + 1), "integration_number");
    IntTimes row{start[r], mid[r], end[r], mid_bjd.empty() ? 0.0 : mid_bjd[r], !mid_bjd.empty()};
    rows.emplace(n, row);
  }
}

/// Header keywords of a segment that must agree with the other segments.
struct SegmentKeys {
  std::map<std::string, std::optional<std::string>> strings;
  std::map<std::string, std::optional<double>> numbers;
  std::optional<double> expstart;
};

SegmentKeys read_keys(fits::File& file) {
  file.goto_primary();
  SegmentKeys keys;
  for (const char* key : kStringKeys) {
    auto value = file.read_string(key);
    keys.strings[key] = value ? std::optional<std::string>(trim(*value)) : std::nullopt;
  }
  for (const char* key : kNumberKeys) keys.numbers[key] = file.read_double(key);
  keys.expstart = file.read_double("EXPSTART");
  return keys;
}

bool same_number(double a, double b) { return a == b || std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b)); }

class JwstUncalSource final : public FrameSource {
 public:
  explicit JwstUncalSource(JwstUncalParams params) : params_(std::move(params)) {}

  std::vector<std::string> units() override {
    const fs::path root(params_.path);
    std::error_code ec;
    if (!fs::exists(root, ec)) throw InputError(params_.path + ": input path does not exist");
    if (fs::is_directory(root, ec)) {
      if (params_.segments.empty()) {
        units_ = list_uncal(root);
        if (units_.empty())
          throw InputError(params_.path + ": no *" + std::string(kSuffix) +
                           " files (jwst_uncal reads the segments of one exposure from this directory)");
      } else {
        units_.clear();
        for (const std::string& name : params_.segments) {
          const fs::path file = fs::path(name).is_absolute() ? fs::path(name) : root / name;
          if (!fs::is_regular_file(file, ec))
            throw InputError(file.string() + ": no such file (listed in segments)");
          units_.push_back(file.string());
        }
        std::vector<std::string> sorted = units_;
        std::sort(sorted.begin(), sorted.end());
        if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
          throw InputError(*std::adjacent_find(sorted.begin(), sorted.end()) + ": listed twice in segments");
      }
    } else {
      if (!params_.segments.empty())
        throw InputError(params_.path + ": segments lists files, but path is a file rather than a directory");
      units_ = {params_.path};
    }
    return units_;
  }

  UnitHeader read_header(std::size_t unit) override {
    fits::File file = fits::File::open_read(unit_path(unit));
    const std::string& path = file.path();
    const std::optional<double> intstart_kw = file.read_double("INTSTART");
    const std::optional<double> intend_kw = file.read_double("INTEND");
    const std::optional<double> exsegnum_kw = file.read_double("EXSEGNUM");
    const std::optional<double> nints_kw = file.read_double("NINTS");
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

    const long long intstart = intstart_kw ? whole(*intstart_kw, path, "INTSTART") : 1;
    const long long intend =
        intend_kw ? whole(*intend_kw, path, "INTEND") : intstart + static_cast<long long>(nint) - 1;
    if (intstart < 1) throw InputError(path + ": INTSTART = 0; integrations are numbered from 1");
    if (intend < intstart)
      throw InputError(path + ": INTEND = " + std::to_string(intend) + " is before INTSTART = " +
                       std::to_string(intstart));
    if (static_cast<std::size_t>(intend - intstart + 1) != nint)
      throw InputError(path + ": INTSTART..INTEND = " + range_text(intstart, intend) + " is " +
                       std::to_string(intend - intstart + 1) + " integrations but SCI holds " + std::to_string(nint) +
                       " (NAXIS4)");
    if (ngroups_kw && *ngroups_kw != static_cast<double>(ng))
      throw InputError(path + ": NGROUPS = " + number_text(*ngroups_kw) + " but SCI holds " + std::to_string(ng) +
                       " groups per integration (NAXIS3)");
    if (nints_kw && static_cast<double>(intend) > *nints_kw)
      throw InputError(path + ": INTEND = " + std::to_string(intend) + " is beyond NINTS = " + number_text(*nints_kw));
    check_complete(file, intstart, nint, ng * ny * nx);

    UnitHeader h;
    h.ny = static_cast<double>(ny);
    h.nx = static_cast<double>(nx);
    h.values[JwstUncal::intstart_index] = static_cast<double>(intstart);
    h.values[JwstUncal::intend_index] = static_cast<double>(intend);
    h.values[JwstUncal::ngroups_index] = static_cast<double>(ng);
    h.values[JwstUncal::exsegnum_index] = exsegnum_kw ? static_cast<double>(whole(*exsegnum_kw, path, "EXSEGNUM")) : 1.0;
    h.values[JwstUncal::nints_index] = nints_kw.value_or(0.0);
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
    std::vector<std::size_t> order(units_.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const Segment &sa = segments_[a], &sb = segments_[b];
      return sa.exsegnum != sb.exsegnum ? sa.exsegnum < sb.exsegnum : sa.intstart < sb.intstart;
    });

    // Shapes, then the run of segments and integrations.
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
    for (std::size_t k = 1; k < order.size(); ++k) {
      const Segment& a = segments_[order[k - 1]];
      const Segment& b = segments_[order[k]];
      const std::string both = a.path + " (EXSEGNUM " + std::to_string(a.exsegnum) + ", integrations " +
                               range_text(a.intstart, a.intend) + ") and " + b.path + " (EXSEGNUM " +
                               std::to_string(b.exsegnum) + ", integrations " + range_text(b.intstart, b.intend) + ")";
      if (b.exsegnum == a.exsegnum)
        throw InputError(both + " are the same segment: more than one exposure in " + params_.path +
                         "? Choose one exposure's files with `segments`");
      if (b.exsegnum > a.exsegnum + 1)
        throw InputError("segment " + (b.exsegnum == a.exsegnum + 2
                                           ? std::to_string(a.exsegnum + 1)
                                           : range_text(a.exsegnum + 1, b.exsegnum - 1)) +
                         " of the exposure is missing between " + both);
      if (b.intstart <= a.intend)
        throw InputError("integrations overlap: " + both + " (INTSTART/INTEND)");
      if (b.intstart > a.intend + 1)
        throw InputError("integrations " + range_text(a.intend + 1, b.intstart - 1) + " are missing between " + both +
                         " (INTEND/INTSTART)");
    }

    // Keywords that must agree, and the INT_TIMES rows of every segment.
    std::vector<SegmentKeys> keys(units_.size());
    std::map<long long, IntTimes> rows;
    for (std::size_t u : order) {
      fits::File file = fits::File::open_read(units_[u]);
      keys[u] = read_keys(file);
      read_int_times(file, rows);
    }
    for (std::size_t u : order) {
      for (const char* key : kStringKeys) {
        const auto& mine = keys[u].strings.at(key);
        const auto& theirs = keys[first].strings.at(key);
        if (mine != theirs)
          throw InputError(units_[u] + ": " + key + " = " + (mine ? "'" + *mine + "'" : "(absent)") + " but " +
                           units_[first] + " has " + (theirs ? "'" + *theirs + "'" : "(absent)") +
                           "; the segments are not one exposure");
      }
      for (const char* key : kNumberKeys) {
        const auto& mine = keys[u].numbers.at(key);
        const auto& theirs = keys[first].numbers.at(key);
        if (mine.has_value() != theirs.has_value() || (mine && !same_number(*mine, *theirs)))
          throw InputError(units_[u] + ": " + key + " = " + (mine ? number_text(*mine) : "(absent)") + " but " +
                           units_[first] + " has " + (theirs ? number_text(*theirs) : "(absent)") +
                           "; the segments are not one exposure");
      }
    }

    // Frames: the integrations in order.
    FrameOrder out;
    FrameVector time{kTime, {}, false}, int_start{kIntStart, {}, false}, int_end{kIntEnd, {}, false};
    FrameVector mid_bjd{kIntMidBjd, {}, false};
    FrameVector integration{kIntegration, {}, true}, segment{kSegment, {}, true};
    bool table_complete = true, all_bjd = true;
    long long missing_row = 0;
    std::string missing_file;
    for (std::size_t u : order) {
      Segment& s = segments_[u];
      s.first_frame = out.units.size();
      for (long long n = s.intstart; n <= s.intend; ++n) {
        out.units.push_back(u);
        integration.values.push_back(static_cast<double>(n));
        segment.values.push_back(static_cast<double>(s.exsegnum));
        auto row = rows.find(n);
        if (row == rows.end()) {
          if (table_complete) {
            missing_row = n;
            missing_file = s.path;
          }
          table_complete = false;
          continue;
        }
        time.values.push_back(row->second.mid);
        int_start.values.push_back(row->second.start);
        int_end.values.push_back(row->second.end);
        mid_bjd.values.push_back(row->second.mid_bjd);
        all_bjd = all_bjd && row->second.has_bjd;
      }
    }
    const SegmentKeys& k0 = keys[first];
    const std::size_t ng = static_cast<std::size_t>(h0.values[JwstUncal::ngroups_index]);
    attributes_.clear();
    if (table_complete) {
      attributes_["int_times_source"] = std::string("INT_TIMES");
    } else {
      if (params_.missing_int_times != "estimate")
        throw InputError(missing_file + ": no INT_TIMES row for integration " + std::to_string(missing_row) +
                         " (in no segment's INT_TIMES table); set missing_int_times = \"estimate\" to time the "
                         "integrations from EXPSTART, TGROUP, TFRAME and NRESETS instead");
      estimate_times(k0, ng, integration.values, time, int_start, int_end, missing_file);
      all_bjd = false;
    }

    out.shape = {out.units.size(), static_cast<std::size_t>(h0.ny), static_cast<std::size_t>(h0.nx), ng};
    out.vectors = {std::move(time), std::move(int_start), std::move(int_end)};
    if (all_bjd) out.vectors.push_back(std::move(mid_bjd));
    out.vectors.push_back(std::move(integration));
    out.vectors.push_back(std::move(segment));

    // Attributes, identical on every rank (every rank read the same headers here).
    for (const char* key : {"INSTRUME", "DETECTOR", "EXP_TYPE", "READPATT", "SUBARRAY"}) {
      const auto& value = k0.strings.at(key);
      if (value) attributes_[key == std::string("INSTRUME") ? "instrument" : lower(key)] = *value;
    }
    for (const char* key : {"NFRAMES", "GROUPGAP", "EXSEGTOT", "NRESETS", "FRMDIVSR"}) {
      const auto& value = k0.numbers.at(key);
      if (value) attributes_[lower(key)] = static_cast<std::int64_t>(whole(*value, units_[first], key));
    }
    for (const char* key : {"TFRAME", "TGROUP"}) {
      const auto& value = k0.numbers.at(key);
      if (value) attributes_[lower(key)] = *value;
    }
    if (k0.expstart) attributes_["expstart"] = *k0.expstart;
    attributes_["ngroups"] = static_cast<std::int64_t>(ng);
    const auto& nints = k0.numbers.at("NINTS");
    attributes_["nints"] = static_cast<std::int64_t>(nints ? whole(*nints, units_[first], "NINTS")
                                                           : segments_[order.back()].intend);
    // A full-frame exposure has no SUBSTRT keywords: its subarray starts at pixel (1, 1).
    for (const char* key : {"SUBSTRT1", "SUBSTRT2"}) {
      const auto& value = k0.numbers.at(key);
      attributes_[lower(key)] = static_cast<std::int64_t>(value ? whole(*value, units_[first], key) : 1);
    }
    attributes_["input_path"] = params_.path;
    std::string files;
    for (std::size_t u : order) files += (files.empty() ? "" : ",") + base_name(units_[u]);
    attributes_["segment_files"] = files;
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
    out.push_back({DataKind::FrameVector, kTime});
    out.push_back({DataKind::FrameVector, kIntStart});
    out.push_back({DataKind::FrameVector, kIntEnd});
    if (may_have_bjd()) out.push_back({DataKind::FrameVector, kIntMidBjd});
    for (const VarInfo& info : {kIntegration, kSegment}) {
      DataOut counter{DataKind::FrameVector, info};
      counter.integer = true;
      out.push_back(counter);
    }
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

  /// Throws InputError when the data of SCI end before the last of its `nint` integrations of
  /// `per_integration` values (a truncated download), naming the first integration that cannot
  /// be read. Reads one value per probe: the last one, then a bisection over integrations.
  /// (CFITSIO reads whole 2880-byte blocks, so an integration whose last value lies in the
  /// incomplete final block counts as unreadable, as it is for any FITS reader.)
  static void check_complete(fits::File& file, long long intstart, std::size_t nint, std::size_t per_integration) {
    auto readable = [&](std::size_t integration) {
      float value = 0;
      try {
        file.read_pixels_float(std::span<float>(&value, 1), (integration + 1) * per_integration - 1);
        return true;
      } catch (const InputError&) {
        return false;
      }
    };
    if (readable(nint - 1)) return;
    std::size_t lo = 0, hi = nint - 1;  // integration hi is incomplete; those before lo are complete
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      if (readable(mid))
        lo = mid + 1;
      else
        hi = mid;
    }
    throw InputError(file.path() + ": the file is truncated: its SCI should hold integrations " +
                     range_text(intstart, intstart + static_cast<long long>(nint) - 1) + " but integration " +
                     std::to_string(intstart + static_cast<long long>(lo)) + " (number " + std::to_string(lo + 1) +
                     " of " + std::to_string(nint) + " in this file) and those after it cannot be read");
  }

  /// Integration times without INT_TIMES (missing_int_times = "estimate"): integration n starts
  /// at EXPSTART + (n - 1)·(NGROUPS·TGROUP + NRESETS·TFRAME) and lasts NGROUPS·TGROUP, with
  /// NRESETS = 1 and TFRAME = TGROUP when absent. Good to about a frame time per integration.
  void estimate_times(const SegmentKeys& k0, std::size_t ng, const std::vector<double>& numbers, FrameVector& time,
                      FrameVector& int_start, FrameVector& int_end, const std::string& file) {
    const auto& tgroup = k0.numbers.at("TGROUP");
    if (!k0.expstart || !tgroup)
      throw InputError(file + ": no INT_TIMES rows, and no " + std::string(!k0.expstart ? "EXPSTART" : "TGROUP") +
                       " keyword to estimate the integration times from");
    const double tframe = k0.numbers.at("TFRAME").value_or(*tgroup);
    const double nresets = k0.numbers.at("NRESETS").value_or(1.0);
    const double duration = static_cast<double>(ng) * *tgroup / 86400.0;
    const double cycle = duration + nresets * tframe / 86400.0;
    time.values.clear();
    int_start.values.clear();
    int_end.values.clear();
    for (double n : numbers) {
      const double start = *k0.expstart + (n - 1.0) * cycle;
      int_start.values.push_back(start);
      int_end.values.push_back(start + duration);
      time.values.push_back(start + 0.5 * duration);
    }
    attributes_["int_times_source"] =
        std::string("estimated from EXPSTART, NGROUPS, TGROUP, TFRAME and NRESETS (no INT_TIMES rows)");
  }

  /// Whether the exposure's INT_TIMES has BJD times, judged from the first segment file: true
  /// also when that cannot be known yet (no files), so that validation does not refuse a
  /// workflow that will find them; false only when the table or its column is missing.
  bool may_have_bjd() const {
    try {
      std::error_code ec;
      std::string file;
      if (fs::is_directory(params_.path, ec)) {
        if (!params_.segments.empty()) {
          file = (fs::path(params_.path) / params_.segments.front()).string();
        } else {
          const std::vector<std::string> files = list_uncal(params_.path);
          if (files.empty()) return true;
          file = files.front();
        }
      } else {
        file = params_.path;
      }
      if (!fs::is_regular_file(file, ec)) return true;
      fits::File f = fits::File::open_read(file);
      if (!f.goto_table("INT_TIMES") || f.table_rows() == 0) return false;
      f.read_column_double("int_mid_BJD_TDB");
      return true;
    } catch (const InputError&) {
      return false;
    }
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
      field(&P::missing_int_times, "missing_int_times",
            "Integrations without an INT_TIMES row: \"error\", or \"estimate\" every integration's times from "
            "EXPSTART, NGROUPS, TGROUP, TFRAME and NRESETS (no int_mid_bjd then)",
            Choices{{"error", "estimate"}}));
}

std::unique_ptr<FrameSource> JwstUncal::open(const Params& params) {
  return std::make_unique<JwstUncalSource>(params);
}

}  // namespace tessera
