#pragma once
/// What the JWST inputs (jwst_uncal, jwst_rateints) share: an exposure delivered as segment
/// files `<root>-seg001_<detector>_<suffix>.fits`, `...-seg002_...`, whose primary headers say
/// which integrations each holds (EXSEGNUM, INTSTART, INTEND, NINTS) and whose INT_TIMES
/// tables time them. These functions list the files, check that the segments form one
/// contiguous run of integrations of one exposure, and build the per-integration vectors
/// (time, int_start, int_end, int_mid_bjd, integration, segment) and the dataset attributes
/// (instrument, detector, exp_type, readpatt, subarray, nframes, groupgap, ngroups, nints,
/// tframe, tgroup, substrt1/2, ...). See docs/jwst-data-model.md.
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/dataset.hpp"
#include "tessera/io/fits.hpp"
#include "tessera/step.hpp"

namespace tessera::jwst_segments {

/// One segment file and the integrations it holds (1-based, inclusive).
struct Segment {
  std::string path;
  long long intstart = 1, intend = 1, exsegnum = 1;
  std::size_t first_frame = 0;  ///< frame index of its first integration, once arranged
  std::size_t count() const { return static_cast<std::size_t>(intend - intstart + 1); }
};

/// The segment files to read: `path` is a directory (every `*<suffix>` in it, sorted by
/// name, or the `segments` listed by name) or one file. `kind` names the input in messages.
/// Throws InputError naming the path or file.
std::vector<std::string> list_segments(const std::string& path, const std::vector<std::string>& segments,
                                       std::string_view suffix, std::string_view kind);

/// INTSTART, INTEND, EXSEGNUM and NINTS of a segment, read from the primary header and
/// checked against `nint`, the integrations its data hold (`axis` names that axis in
/// messages, e.g. "NAXIS4"). Moves to the primary HDU.
struct Numbers {
  long long intstart = 1, intend = 1, exsegnum = 1;
  std::optional<double> nints;
};
Numbers read_numbers(fits::File& file, std::size_t nint, const std::string& axis);

/// Throws InputError when the data of the current image extension (`extname`, holding `nint`
/// integrations of `per_integration` values from integration `intstart` on) end early (a
/// truncated download), naming the first integration that cannot be read.
void check_complete(fits::File& file, const std::string& extname, long long intstart, std::size_t nint,
                    std::size_t per_integration);

/// Indices of `segments` in exposure order (EXSEGNUM, then INTSTART).
std::vector<std::size_t> exposure_order(const std::vector<Segment>& segments);

/// What arrange() of a JWST input needs: the unit of every frame, the per-integration vectors
/// and the dataset attributes.
struct Timeline {
  std::vector<std::size_t> units;
  std::vector<FrameVector> vectors;
  std::map<std::string, AttrValue> attributes;
};

/// Checks that `segments` (in `order`) are consecutive segments of one exposure with no
/// missing or overlapping integrations and the same readout keywords, reads their INT_TIMES
/// rows, and returns the frames in order; sets every segment's first_frame. `ngroups` is the
/// groups per integration when the data hold them (uncal SCI); otherwise the NGROUPS keyword
/// gives the `ngroups` attribute. `missing_int_times` is "error" or "estimate"; `input_path`
/// is the input's path parameter (for messages and the `input_path` attribute).
Timeline arrange_exposure(std::vector<Segment>& segments, const std::vector<std::size_t>& order,
                          const std::string& input_path, const std::string& missing_int_times,
                          std::optional<std::size_t> ngroups);

/// The per-integration vectors a JWST input provides (int_mid_bjd only when `bjd`).
std::vector<DataOut> timeline_provides(bool bjd);

/// Whether the exposure's INT_TIMES has BJD times, judged from its first segment file: true
/// also when that cannot be known yet (no files), so that validation does not refuse a
/// workflow that will find them; false only when the table or its column is missing.
bool may_have_bjd(const std::string& path, const std::vector<std::string>& segments, std::string_view suffix);

/// Text helpers shared by the inputs' messages.
std::string number_text(double v);
std::string range_text(long long a, long long b);

/// The `missing_int_times` parameter's documentation (the same in every JWST input).
inline constexpr const char* missing_int_times_doc =
    "Integrations without an INT_TIMES row: \"error\", or \"estimate\" every integration's times from "
    "EXPSTART, NGROUPS, TGROUP, TFRAME and NRESETS (no int_mid_bjd then)";

}  // namespace tessera::jwst_segments
