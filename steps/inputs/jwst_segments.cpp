#include "steps/inputs/jwst_segments.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "tessera/errors.hpp"

namespace tessera::jwst_segments {
namespace {

namespace fs = std::filesystem;

const VarInfo kTime{"time", "d", "mid-integration time, int_mid_MJD_UTC of INT_TIMES (MJD UTC)"};
const VarInfo kIntStart{"int_start", "d", "integration start time, int_start_MJD_UTC of INT_TIMES (MJD UTC)"};
const VarInfo kIntEnd{"int_end", "d", "integration end time, int_end_MJD_UTC of INT_TIMES (MJD UTC)"};
const VarInfo kIntMidBjd{"int_mid_bjd", "d", "mid-integration time, int_mid_BJD_TDB of INT_TIMES (BJD TDB)"};
const VarInfo kIntegration{"integration", "1", "integration number in the exposure (1-based, as INTSTART/INTEND)"};
const VarInfo kSegment{"segment", "1", "exposure segment holding the integration (EXSEGNUM, 1-based)"};

/// Keywords that must agree between the segments of one exposure.
const char* const kStringKeys[] = {"INSTRUME", "DETECTOR", "EXP_TYPE", "READPATT", "SUBARRAY"};
const char* const kNumberKeys[] = {"NGROUPS",  "TGROUP",   "NFRAMES",  "GROUPGAP", "TFRAME",
                                   "NRESETS",  "NINTS",    "EXSEGTOT", "SUBSTRT1", "SUBSTRT2", "FRMDIVSR"};

/// Paths of the *<suffix> files in `dir`, sorted by name.
std::vector<std::string> list_suffix(const fs::path& dir, std::string_view suffix) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > suffix.size() && name.ends_with(suffix) && it->is_regular_file(ec))
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

std::string base_name(const std::string& path) { return fs::path(path).filename().string(); }

/// A whole, positive-or-zero number from a header value; throws naming the file and key.
long long whole(double value, const std::string& file, const char* key) {
  if (!std::isfinite(value) || std::nearbyint(value) != value || value < 0)
    throw InputError(file + ": " + key + " = " + number_text(value) + " is not a whole number >= 0");
  return static_cast<long long>(value);
}

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

/// Integration times without INT_TIMES (missing_int_times = "estimate"): integration n starts
/// at EXPSTART + (n - 1)·(NGROUPS·TGROUP + NRESETS·TFRAME) and lasts NGROUPS·TGROUP, with
/// NRESETS = 1 and TFRAME = TGROUP when absent. Good to about a frame time per integration.
void estimate_times(const SegmentKeys& k0, std::optional<std::size_t> ngroups, const std::vector<double>& numbers,
                    FrameVector& time, FrameVector& int_start, FrameVector& int_end, const std::string& file,
                    std::map<std::string, AttrValue>& attributes) {
  const auto& tgroup = k0.numbers.at("TGROUP");
  if (!ngroups && k0.numbers.at("NGROUPS")) ngroups = static_cast<std::size_t>(whole(*k0.numbers.at("NGROUPS"), file, "NGROUPS"));
  if (!k0.expstart || !tgroup || !ngroups)
    throw InputError(file + ": no INT_TIMES rows, and no " +
                     std::string(!k0.expstart ? "EXPSTART" : !tgroup ? "TGROUP" : "NGROUPS") +
                     " keyword to estimate the integration times from");
  const double tframe = k0.numbers.at("TFRAME").value_or(*tgroup);
  const double nresets = k0.numbers.at("NRESETS").value_or(1.0);
  const double duration = static_cast<double>(*ngroups) * *tgroup / 86400.0;
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
  attributes["int_times_source"] =
      std::string("estimated from EXPSTART, NGROUPS, TGROUP, TFRAME and NRESETS (no INT_TIMES rows)");
}

}  // namespace

std::string number_text(double v) {
  if (std::nearbyint(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.10g", v);
  return buffer;
}

std::string range_text(long long a, long long b) { return std::to_string(a) + ".." + std::to_string(b); }

std::vector<std::string> list_segments(const std::string& path, const std::vector<std::string>& segments,
                                       std::string_view suffix, std::string_view kind) {
  const fs::path root(path);
  std::error_code ec;
  if (!fs::exists(root, ec)) throw InputError(path + ": input path does not exist");
  std::vector<std::string> units;
  if (fs::is_directory(root, ec)) {
    if (segments.empty()) {
      units = list_suffix(root, suffix);
      if (units.empty())
        throw InputError(path + ": no *" + std::string(suffix) + " files (" + std::string(kind) +
                         " reads the segments of one exposure from this directory)");
    } else {
      for (const std::string& name : segments) {
        const fs::path file = fs::path(name).is_absolute() ? fs::path(name) : root / name;
        if (!fs::is_regular_file(file, ec)) throw InputError(file.string() + ": no such file (listed in segments)");
        units.push_back(file.string());
      }
      std::vector<std::string> sorted = units;
      std::sort(sorted.begin(), sorted.end());
      if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
        throw InputError(*std::adjacent_find(sorted.begin(), sorted.end()) + ": listed twice in segments");
    }
  } else {
    if (!segments.empty())
      throw InputError(path + ": segments lists files, but path is a file rather than a directory");
    units = {path};
  }
  return units;
}

Numbers read_numbers(fits::File& file, std::size_t nint, const std::string& axis) {
  file.goto_primary();
  const std::string& path = file.path();
  const std::optional<double> intstart_kw = file.read_double("INTSTART");
  const std::optional<double> intend_kw = file.read_double("INTEND");
  const std::optional<double> exsegnum_kw = file.read_double("EXSEGNUM");
  Numbers out;
  out.nints = file.read_double("NINTS");
  out.intstart = intstart_kw ? whole(*intstart_kw, path, "INTSTART") : 1;
  out.intend = intend_kw ? whole(*intend_kw, path, "INTEND") : out.intstart + static_cast<long long>(nint) - 1;
  out.exsegnum = exsegnum_kw ? whole(*exsegnum_kw, path, "EXSEGNUM") : 1;
  if (out.intstart < 1) throw InputError(path + ": INTSTART = 0; integrations are numbered from 1");
  if (out.intend < out.intstart)
    throw InputError(path + ": INTEND = " + std::to_string(out.intend) + " is before INTSTART = " +
                     std::to_string(out.intstart));
  if (static_cast<std::size_t>(out.intend - out.intstart + 1) != nint)
    throw InputError(path + ": INTSTART..INTEND = " + range_text(out.intstart, out.intend) + " is " +
                     std::to_string(out.intend - out.intstart + 1) + " integrations but SCI holds " +
                     std::to_string(nint) + " (" + axis + ")");
  if (out.nints && static_cast<double>(out.intend) > *out.nints)
    throw InputError(path + ": INTEND = " + std::to_string(out.intend) + " is beyond NINTS = " + number_text(*out.nints));
  return out;
}

/// Reads one value per probe: the last one, then a bisection over integrations. (CFITSIO
/// reads whole 2880-byte blocks, so an integration whose last value lies in the incomplete
/// final block counts as unreadable, as it is for any FITS reader.)
void check_complete(fits::File& file, const std::string& extname, long long intstart, std::size_t nint,
                    std::size_t per_integration) {
  auto readable = [&](std::size_t integration) {
    float value = 0;
    try {
      file.read_pixels_float(std::span<float>(&value, 1), (integration + 1) * per_integration - 1);
      return true;
    } catch (const InputError&) {
      return false;
    }
  };
  if (nint == 0 || readable(nint - 1)) return;
  std::size_t lo = 0, hi = nint - 1;  // integration hi is incomplete; those before lo are complete
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    if (readable(mid))
      lo = mid + 1;
    else
      hi = mid;
  }
  throw InputError(file.path() + ": the file is truncated: its " + extname + " should hold integrations " +
                   range_text(intstart, intstart + static_cast<long long>(nint) - 1) + " but integration " +
                   std::to_string(intstart + static_cast<long long>(lo)) + " (number " + std::to_string(lo + 1) +
                   " of " + std::to_string(nint) + " in this file) and those after it cannot be read");
}

std::vector<std::size_t> exposure_order(const std::vector<Segment>& segments) {
  std::vector<std::size_t> order(segments.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const Segment &sa = segments[a], &sb = segments[b];
    return sa.exsegnum != sb.exsegnum ? sa.exsegnum < sb.exsegnum : sa.intstart < sb.intstart;
  });
  return order;
}

Timeline arrange_exposure(std::vector<Segment>& segments, const std::vector<std::size_t>& order,
                          const std::string& input_path, const std::string& missing_int_times,
                          std::optional<std::size_t> ngroups) {
  if (order.empty()) throw InternalError("JWST input: no segments to arrange");
  // The run of segments and integrations.
  for (std::size_t k = 1; k < order.size(); ++k) {
    const Segment& a = segments[order[k - 1]];
    const Segment& b = segments[order[k]];
    const std::string both = a.path + " (EXSEGNUM " + std::to_string(a.exsegnum) + ", integrations " +
                             range_text(a.intstart, a.intend) + ") and " + b.path + " (EXSEGNUM " +
                             std::to_string(b.exsegnum) + ", integrations " + range_text(b.intstart, b.intend) + ")";
    if (b.exsegnum == a.exsegnum)
      throw InputError(both + " are the same segment: more than one exposure in " + input_path +
                       "? Choose one exposure's files with `segments`");
    if (b.exsegnum > a.exsegnum + 1)
      throw InputError("segment " + (b.exsegnum == a.exsegnum + 2
                                         ? std::to_string(a.exsegnum + 1)
                                         : range_text(a.exsegnum + 1, b.exsegnum - 1)) +
                       " of the exposure is missing between " + both);
    if (b.intstart <= a.intend) throw InputError("integrations overlap: " + both + " (INTSTART/INTEND)");
    if (b.intstart > a.intend + 1)
      throw InputError("integrations " + range_text(a.intend + 1, b.intstart - 1) + " are missing between " + both +
                       " (INTEND/INTSTART)");
  }

  // Keywords that must agree, and the INT_TIMES rows of every segment.
  const std::size_t first = order.front();
  std::vector<SegmentKeys> keys(segments.size());
  std::map<long long, IntTimes> rows;
  for (std::size_t u : order) {
    fits::File file = fits::File::open_read(segments[u].path);
    keys[u] = read_keys(file);
    read_int_times(file, rows);
  }
  const std::string& first_path = segments[first].path;
  for (std::size_t u : order) {
    for (const char* key : kStringKeys) {
      const auto& mine = keys[u].strings.at(key);
      const auto& theirs = keys[first].strings.at(key);
      if (mine != theirs)
        throw InputError(segments[u].path + ": " + key + " = " + (mine ? "'" + *mine + "'" : "(absent)") + " but " +
                         first_path + " has " + (theirs ? "'" + *theirs + "'" : "(absent)") +
                         "; the segments are not one exposure");
    }
    for (const char* key : kNumberKeys) {
      const auto& mine = keys[u].numbers.at(key);
      const auto& theirs = keys[first].numbers.at(key);
      if (mine.has_value() != theirs.has_value() || (mine && !same_number(*mine, *theirs)))
        throw InputError(segments[u].path + ": " + key + " = " + (mine ? number_text(*mine) : "(absent)") + " but " +
                         first_path + " has " + (theirs ? number_text(*theirs) : "(absent)") +
                         "; the segments are not one exposure");
    }
  }

  // Frames: the integrations in order.
  Timeline out;
  FrameVector time{kTime, {}, false}, int_start{kIntStart, {}, false}, int_end{kIntEnd, {}, false};
  FrameVector mid_bjd{kIntMidBjd, {}, false};
  FrameVector integration{kIntegration, {}, true}, segment{kSegment, {}, true};
  bool table_complete = true, all_bjd = true;
  long long missing_row = 0;
  std::string missing_file;
  for (std::size_t u : order) {
    Segment& s = segments[u];
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
  std::map<std::string, AttrValue>& attributes = out.attributes;
  if (table_complete) {
    attributes["int_times_source"] = std::string("INT_TIMES");
  } else {
    if (missing_int_times != "estimate")
      throw InputError(missing_file + ": no INT_TIMES row for integration " + std::to_string(missing_row) +
                       " (in no segment's INT_TIMES table); set missing_int_times = \"estimate\" to time the "
                       "integrations from EXPSTART, TGROUP, TFRAME and NRESETS instead");
    estimate_times(k0, ngroups, integration.values, time, int_start, int_end, missing_file, attributes);
    all_bjd = false;
  }
  out.vectors = {std::move(time), std::move(int_start), std::move(int_end)};
  if (all_bjd) out.vectors.push_back(std::move(mid_bjd));
  out.vectors.push_back(std::move(integration));
  out.vectors.push_back(std::move(segment));

  // Attributes, identical on every rank (every rank read the same headers here).
  for (const char* key : {"INSTRUME", "DETECTOR", "EXP_TYPE", "READPATT", "SUBARRAY"}) {
    const auto& value = k0.strings.at(key);
    if (value) attributes[key == std::string("INSTRUME") ? "instrument" : lower(key)] = *value;
  }
  for (const char* key : {"NFRAMES", "GROUPGAP", "EXSEGTOT", "NRESETS", "FRMDIVSR"}) {
    const auto& value = k0.numbers.at(key);
    if (value) attributes[lower(key)] = static_cast<std::int64_t>(whole(*value, first_path, key));
  }
  for (const char* key : {"TFRAME", "TGROUP"}) {
    const auto& value = k0.numbers.at(key);
    if (value) attributes[lower(key)] = *value;
  }
  if (k0.expstart) attributes["expstart"] = *k0.expstart;
  if (ngroups)
    attributes["ngroups"] = static_cast<std::int64_t>(*ngroups);
  else if (const auto& value = k0.numbers.at("NGROUPS"))
    attributes["ngroups"] = static_cast<std::int64_t>(whole(*value, first_path, "NGROUPS"));
  const auto& nints = k0.numbers.at("NINTS");
  attributes["nints"] =
      static_cast<std::int64_t>(nints ? whole(*nints, first_path, "NINTS") : segments[order.back()].intend);
  // A full-frame exposure has no SUBSTRT keywords: its subarray starts at pixel (1, 1).
  for (const char* key : {"SUBSTRT1", "SUBSTRT2"}) {
    const auto& value = k0.numbers.at(key);
    attributes[lower(key)] = static_cast<std::int64_t>(value ? whole(*value, first_path, key) : 1);
  }
  attributes["input_path"] = input_path;
  std::string files;
  for (std::size_t u : order) files += (files.empty() ? "" : ",") + base_name(segments[u].path);
  attributes["segment_files"] = files;
  return out;
}

std::vector<DataOut> timeline_provides(bool bjd) {
  std::vector<DataOut> out;
  out.push_back({DataKind::FrameVector, kTime});
  out.push_back({DataKind::FrameVector, kIntStart});
  out.push_back({DataKind::FrameVector, kIntEnd});
  if (bjd) out.push_back({DataKind::FrameVector, kIntMidBjd});
  for (const VarInfo& info : {kIntegration, kSegment}) {
    DataOut counter{DataKind::FrameVector, info};
    counter.integer = true;
    out.push_back(counter);
  }
  return out;
}

bool may_have_bjd(const std::string& path, const std::vector<std::string>& segments, std::string_view suffix) {
  try {
    std::error_code ec;
    std::string file;
    if (fs::is_directory(path, ec)) {
      if (!segments.empty()) {
        file = (fs::path(path) / segments.front()).string();
      } else {
        const std::vector<std::string> files = list_suffix(path, suffix);
        if (files.empty()) return true;
        file = files.front();
      }
    } else {
      file = path;
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

}  // namespace tessera::jwst_segments
