#pragma once
/// quicklook: the white-light curve of the chosen traces, and two animated GIFs like
/// ExoTiC-UVIS / HUSTLE-tools stage 1's quicklook: quicklookup.gif (each frame, downsampled,
/// on a grey scale common to all frames, above the white-light curve up to that frame) and
/// quicklookupDQ.gif (where Tessera's steps, and with include_hst_dq HST's calwf3, flagged
/// pixels in each frame).
///
/// White light: the sum of the data over an aperture along each trace in traces_included.
/// The 0th order is at `location` if set, else at the attributes target_x/target_y (set by
/// `locate`), else at the brightest 5 × 5 patch of the visit. The +1 order lies at larger x
/// than the 0th order and the −1 order at smaller x (the G280 layout, as in
/// steps/simulate/uvis_simulator.cpp). Columns closer than zeroth_order_radius to the 0th
/// order are skipped. In each other column the trace is the brightest 3-row band of the sum
/// of all frames; its centroids, where significant, are fitted by a polynomial in x with
/// outliers rejected, and the aperture is the rows within aperture_half_width of the fit.
///
/// Phases (all frames): 0 — sum of all frames (for the traces), downsampled frames and dq
/// categories into temporary images; 1 — apertures (the same on every rank) and the white
/// light of this rank's frames; 2 — the GIFs, written by one rank; the temporary images
/// are then dropped.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct QuicklookParams {
  std::vector<std::string> traces_included = {"+1"};
  bool include_hst_dq = true;
  std::optional<std::vector<double>> location;
  double aperture_half_width = 12;
  double zeroth_order_radius = 40;
  std::int64_t trace_degree = 2;
  std::int64_t display_width = 540;
  double frame_delay = 0.1;

  static Schema<QuicklookParams> schema() {
    return tessera::schema<QuicklookParams>(
        field(&QuicklookParams::traces_included, "traces_included",
              "Traces summed into the white-light curve: '+1' (at larger x than the 0th order) and/or '-1'",
              Choices{{"+1", "-1"}}),
        field(&QuicklookParams::include_hst_dq, "include_hst_dq",
              "Show HST's own DQ flags (low 16 bits) in quicklookupDQ.gif, not only Tessera's"),
        field(&QuicklookParams::location, "location",
              "[x, y] of the 0th order in pixels; unset: the attributes target_x/target_y from locate, else the "
              "brightest spot"),
        field(&QuicklookParams::aperture_half_width, "aperture_half_width",
              "Rows summed on each side of the trace centre for the white light (px)", Range::at_least(0)),
        field(&QuicklookParams::zeroth_order_radius, "zeroth_order_radius",
              "Columns within this distance of the 0th order are left out of the traces (px)", Range::at_least(0)),
        field(&QuicklookParams::trace_degree, "trace_degree", "Degree of the polynomial fitted to the trace centre",
              Range::closed(0, 5)),
        field(&QuicklookParams::display_width, "display_width",
              "Frames are block-averaged to at most this many cells across for the GIF", Range::closed(16, 4000)),
        field(&QuicklookParams::frame_delay, "frame_delay", "Seconds each GIF frame is shown",
              Range::closed(0.02, 10)));
  }
};

/// The aperture along one trace: in columns [x_begin, x_end), rows [y_begin[i], y_end[i])
/// of column x_begin + i.
struct TraceAperture {
  std::string order;  ///< "+1" or "-1"
  std::size_t x_begin = 0, x_end = 0;
  std::vector<std::size_t> y_begin, y_end;
  std::vector<double> centre;        ///< fitted trace centre (row) in each column
  std::size_t columns_detected = 0;  ///< columns whose trace centroid entered the final fit
  std::size_t pixels() const;
};

struct ApertureOptions {
  double half_width = 12;
  double zeroth_radius = 40;
  int degree = 2;
  double min_snr = 5;  ///< a column's peak must stand this many noise sigmas above its median
};

/// Finds the trace of order `order` ("+1": x > x0, "-1": x < x0) in `reference` (ny × nx,
/// e.g. the sum of all frames) and returns the aperture around it. Where no column shows a
/// significant trace, the aperture follows the 0th order's row y0.
TraceAperture find_trace_aperture(std::span<const float> reference, std::size_t ny, std::size_t nx, double x0,
                                  double y0, const std::string& order, const ApertureOptions& options);

/// Sum of the finite values of one frame (row-major, nx wide) inside the aperture.
double aperture_sum(std::span<const float> frame, std::size_t nx, const TraceAperture& aperture);

/// Centre (x, y) of the brightest 5 × 5 patch of the finite values of an ny × nx image.
std::pair<double, double> brightest_patch(std::span<const float> image, std::size_t ny, std::size_t nx);

/// Category of a dq value shown in quicklookupDQ.gif, by priority: 6 temporal outlier,
/// 5 led, 4 spatial smoothing, 3 non-finite input, 2 chosen HST flag (hst_dq), 1 any other
/// HST flag (only with include_hst), 0 none.
int dq_category(std::uint32_t dq, bool include_hst);

struct Quicklook {
  static constexpr std::string_view name = "quicklook";
  static constexpr std::string_view summary =
      "White-light curve of the chosen traces; animated GIFs of the frames and of the dq flags";
  using Params = QuicklookParams;
  static std::vector<Access> access(const Params&) { return {Access::Frames, Access::Frames, Access::Frames}; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
