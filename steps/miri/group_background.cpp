#include "steps/miri/group_background.hpp"

#include <algorithm>
#include <cmath>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/running_median.hpp"
#include "steps/common/select.hpp"
#include "tessera/errors.hpp"

namespace tessera::steps {

namespace {

/// Median of the usable pixels of rows [y0, y1) and columns [x0, x1) (NaN when none).
float region_median(std::span<const float> image, std::span<const std::uint32_t> dqimg, std::size_t nx,
                    std::size_t y0, std::size_t y1, std::size_t x0, std::size_t x1, std::vector<float>& values,
                    bool append = false) {
  if (!append) values.clear();
  for (std::size_t y = y0; y < y1; ++y)
    for (std::size_t x = x0; x < x1; ++x) {
      const std::size_t i = y * nx + x;
      if (!(dqimg[i] & jwst::dq::do_not_use) && std::isfinite(image[i])) values.push_back(image[i]);
    }
  return median_of(values);
}

/// Running median of the per-row estimates `in` (NaN = no estimate, skipped) into `out`.
void smooth_rows(const std::vector<float>& in, std::vector<float>& out, std::size_t radius,
                 std::vector<float>& window) {
  out.resize(in.size());
  if (in.empty()) return;
  running_median(
      in.size(), [&](std::size_t k) { return in[k]; }, [&](std::size_t k, float m) { out[k] = m; }, radius, window);
}

}  // namespace

void group_background_image(std::span<float> image, std::span<const std::uint32_t> dqimg, std::size_t ny,
                            std::size_t nx, const GroupBackgroundParams& p, GroupBackgroundScratch& s) {
  const auto ls = static_cast<std::size_t>(p.bkg_col_left_start), le = static_cast<std::size_t>(p.bkg_col_left_end);
  const auto rs = static_cast<std::size_t>(p.bkg_col_right_start),
             re = static_cast<std::size_t>(p.bkg_col_right_end);
  if (p.method == "constant") {
    region_median(image, dqimg, nx, 0, ny, ls, le, s.values);
    float b = region_median(image, dqimg, nx, 0, ny, rs, re, s.values, true);
    if (std::isnan(b)) b = 0.0f;  // no usable background pixel: nothing to subtract
    for (float& v : image) v -= b;
    return;
  }
  const bool col_wise = p.method == "col_wise";
  s.left.resize(ny);
  s.right.resize(ny);
  for (std::size_t y = 0; y < ny; ++y) {
    if (col_wise) {
      s.left[y] = region_median(image, dqimg, nx, y, y + 1, ls, le, s.values);
      s.right[y] = region_median(image, dqimg, nx, y, y + 1, rs, re, s.values);
    } else {
      region_median(image, dqimg, nx, y, y + 1, ls, le, s.values);
      s.left[y] = region_median(image, dqimg, nx, y, y + 1, rs, re, s.values, true);
    }
  }
  const std::vector<float>* left = &s.left;
  const std::vector<float>* right = &s.right;
  if (p.smoothing_length) {
    const auto radius = static_cast<std::size_t>((*p.smoothing_length - 1) / 2);
    smooth_rows(s.left, s.smoothed_left, radius, s.values);
    left = &s.smoothed_left;
    if (col_wise) {
      smooth_rows(s.right, s.smoothed_right, radius, s.values);
      right = &s.smoothed_right;
    }
  }
  if (!col_wise) {
    for (std::size_t y = 0; y < ny; ++y) {
      const float b = std::isnan((*left)[y]) ? 0.0f : (*left)[y];
      float* row = image.data() + y * nx;
      for (std::size_t x = 0; x < nx; ++x) row[x] -= b;
    }
    return;
  }
  // The line passes through the medians at the centres of the ranges actually used,
  // (start + end - 1) / 2 for the exclusive end: the median of a linear row over a range is
  // its value at the range's centre, so a linear background is removed exactly.
  const double cl = 0.5 * static_cast<double>(ls + le - 1), cr = 0.5 * static_cast<double>(rs + re - 1);
  for (std::size_t y = 0; y < ny; ++y) {
    double l = (*left)[y], r = (*right)[y];
    if (std::isnan(l)) l = std::isnan(r) ? 0.0 : r;  // one side missing in this row: constant
    if (std::isnan(r)) r = l;
    const double slope = (r - l) / (cr - cl);
    const double intercept = l - slope * cl;
    float* row = image.data() + y * nx;
    for (std::size_t x = 0; x < nx; ++x)
      row[x] -= static_cast<float>(intercept + slope * static_cast<double>(x));
  }
}

StepIO GroupBackground::io(const Params&) {
  StepIO io;
  io.reads = {{DataKind::Cube, "ramp", "group_background works on the ramps (input jwst_uncal)"},
              {DataKind::Cube, "dq", "pixel dq of the jwst_uncal input"}};
  DataOut ramp{DataKind::Cube, {"ramp", "", ""}, ElementType::Float32};
  ramp.grouped = true;
  io.writes = {ramp};
  return io;
}

void GroupBackground::run(const Params& p, StepContext& context) {
  auto ramp = context.frames<float>("ramp");
  auto dqc = context.frames<std::uint32_t>("dq");
  const std::size_t ny = ramp.ny, nx = ramp.nx;
  auto check = [&](std::int64_t start, std::int64_t end, const char* start_name, const char* end_name) {
    if (start > end)
      throw StepError(std::string("group_background: ") + start_name + " = " + std::to_string(start) +
                      " is after " + end_name + " = " + std::to_string(end));
    if (end > static_cast<std::int64_t>(nx))
      throw StepError(std::string("group_background: ") + end_name + " = " + std::to_string(end) +
                      " is beyond the " + std::to_string(nx) + " columns of the data (the end is exclusive)");
    if (p.method == "col_wise" && start == end)
      throw StepError(std::string("group_background: method col_wise needs both background regions; ") +
                      start_name + " = " + end_name + " leaves one empty");
  };
  check(p.bkg_col_left_start, p.bkg_col_left_end, "bkg_col_left_start", "bkg_col_left_end");
  check(p.bkg_col_right_start, p.bkg_col_right_end, "bkg_col_right_start", "bkg_col_right_end");
  if (p.bkg_col_left_start == p.bkg_col_left_end && p.bkg_col_right_start == p.bkg_col_right_end)
    throw StepError("group_background: both background regions are empty (bkg_col_left_start = bkg_col_left_end "
                    "and bkg_col_right_start = bkg_col_right_end)");
  if (p.method == "col_wise" && p.bkg_col_left_start + p.bkg_col_left_end == p.bkg_col_right_start + p.bkg_col_right_end)
    throw StepError("group_background: method col_wise needs the left and right regions to have different centres");
  GroupBackgroundScratch scratch;
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
    for (std::size_t g = 0; g < ramp.groups; ++g)
      group_background_image(ramp.group(t, g), dqc.frame(t), ny, nx, p, scratch);
    context.advance(1);
  }
}

}  // namespace tessera::steps
