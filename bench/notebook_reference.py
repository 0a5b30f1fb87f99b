#!/usr/bin/python3
"""Timing reference for the spectral stage: the JWST TSO notebook's per-integration Python loops.

This is our own re-implementation of the algorithms of the notebook "JWST TSO: detector1 and
extraction" (shared/seeds/jwst-tso-detector1-and-extraction-notebook.txt, sections 5.1 to 5.6),
kept in the notebook's shape on purpose: one Python loop over integrations, inside it Python
loops over columns calling scipy/numpy on single columns. The point is to time that approach on
the same synthetic rate cubes Tessera's bench/spectra_bench.cpp runs on, so that the two can be
compared per integration (every loop here is linear in the number of integrations).

Stages timed (each wall-clock, perf_counter):
  trace          column-by-column centroids of order 1 (full image) and order 2 (image cut
                 above a row), median-filter outlier rejection, Gaussian pre-filter
  bspline        smoothing B-spline through each order's centroids (scipy splrep/splev with
                 interior knots; de Boor's B-splines as FITPACK implements them, Dierckx 1975)
  one_over_f     mask of pixels within mask_aperture of both traces, then per-column nanmedian
                 of the unmasked pixels subtracted
  extract_o1     fractional-pixel aperture sum along order 1, with errors, and the wavelength
                 map averaged over the same aperture
  extract_o2     the same for order 2 (the notebook's exercise 5.4.2; Tessera extracts it)
  lc_matrix      light-curve matrix (wavelength x integration) normalised by the median, ppm
  sensitivity    scatter / median error over the out-of-event integrations, median-filtered
  white_light    median-filtered out-of-event spectrum, 10-sigma replacement per integration,
                 summed white light, normalised
  periodogram    Lomb-Scargle (Lomb 1976, Scargle 1982) PSD of the out-of-event white light
                 on 1000 frequencies (astropy)
  rms_vs_bin     RMS of the binned out-of-event white light for bin sizes 2..29

Input: the HDF5 file `spectra_bench --dump FILE` writes (data and err as (nt*ny, nx) images,
the wavelength maps, time, and the bench's tracing/extraction parameters as attributes).

Usage: /usr/bin/python3 bench/notebook_reference.py FILE.h5 [--json OUT.json]
"""
import argparse
import json
import sys
import time

import h5py
import numpy as np
from astropy.timeseries import LombScargle
from scipy.interpolate import splev, splrep
from scipy.ndimage import gaussian_filter1d, median_filter


def mad_sigma(values):
    """1.4826 x the median absolute deviation from the median (NaNs ignored)."""
    centre = np.nanmedian(values)
    return 1.4826 * np.nanmedian(np.abs(values - centre))


def trace_columns(image, dq, xstart, ystart, xend, profile_radius=20, nsigma=100, gauss_filter_width=10,
                  y_tolerance=5):
    """Centroids of one order, column by column from xstart down to xend (the notebook's tracer).

    Each column: median filter (5 px) to find outliers beyond nsigma MADs; pixels with dq != 0
    replaced by the filtered value; median removed; Gaussian filter of width gauss_filter_width;
    flux-weighted centroid of the rows within profile_radius of the running guess. A jump larger
    than y_tolerance from the previous column keeps the previous centroid.
    """
    columns = np.arange(xend, xstart + 1)
    rows = np.arange(image.shape[0])
    centroids = np.zeros(len(columns))
    guess = ystart
    previous = None
    for k in range(len(columns) - 1, -1, -1):
        c = columns[k]
        column = image[:, c]
        filtered = median_filter(column, size=5)
        residual = filtered - column
        significance = np.abs(residual) / mad_sigma(residual)
        finite = ~np.isnan(column)
        good = np.where((dq[:, c] == 0) & finite & (significance < nsigma))[0]
        bad = np.where((dq[:, c] != 0) & finite & (significance < nsigma))[0]
        if len(good) > 0:
            work = np.copy(column)
            work[bad] = filtered[bad]
            smooth = gaussian_filter1d(work - np.median(work), gauss_filter_width)
            window = np.where(np.abs(rows - guess) < profile_radius)[0]
            centroids[k] = np.sum(rows[window] * smooth[window]) / np.sum(smooth[window])
            if previous is not None and abs(previous - centroids[k]) > y_tolerance:
                centroids[k] = previous
            guess = centroids[k]
        else:
            centroids[k] = previous
        previous = centroids[k]
    return columns, centroids


def aperture_sum(image, columns, centres, radius, error_image=None, average=False):
    """Fractional-pixel aperture along a trace (the notebook's aperture_extraction, no background).

    Pixel j covers [j - 0.5, j + 0.5); the aperture [c - radius, c + radius] takes the edge pixels
    by the fraction inside it. `average` returns the mean of the whole pixels instead (used for the
    wavelength map). Errors: square root of the sum of the variances with the same weights squared.
    """
    top = image.shape[0] - 1
    flux = np.zeros(len(columns))
    flux_error = np.zeros(len(columns)) if error_image is not None else None
    for i in range(len(columns)):
        column = image[:, int(columns[i])]
        if error_image is not None:
            variance = error_image[:, int(columns[i])] ** 2
        lo = max(centres[i] - radius, 0)
        hi = min(top, centres[i] + radius)
        lo_frac, lo_int = np.modf(lo)
        lo_int = int(lo_int)
        if lo_frac < 0.5:
            lo_weight, lo_pixel, lo_limit = 0.5 - lo_frac, min(lo_int, top), lo_int + 1
        else:
            lo_weight, lo_pixel, lo_limit = 1.0 - (lo_frac - 0.5), min(lo_int + 1, top), lo_int + 2
        hi_frac, hi_int = np.modf(hi)
        hi_int = int(hi_int)
        if hi_frac < 0.5:
            hi_weight, hi_pixel, hi_limit = 1.0 - (0.5 - hi_frac), min(top, hi_int), hi_int
        else:
            hi_weight, hi_pixel, hi_limit = hi_frac - 0.5, min(top, hi_int + 1), hi_int + 1
        if average:
            flux[i] = np.mean(column[lo_limit:hi_limit])
        else:
            flux[i] = lo_weight * column[lo_pixel] + hi_weight * column[hi_pixel] + np.sum(column[lo_limit:hi_limit])
        if error_image is not None:
            flux_error[i] = np.sqrt(np.sum(variance[lo_limit:hi_limit]) + lo_weight ** 2 * variance[lo_pixel] +
                                    hi_weight ** 2 * variance[hi_pixel])
    if error_image is not None:
        return flux, flux_error
    return flux


def subtract_masked_column_medians(image, mask):
    """Per column, subtract the nanmedian of the pixels whose mask is 1."""
    out = np.copy(image)
    for c in range(image.shape[1]):
        rows = np.where(mask[:, c] == 1)
        out[:, c] -= np.nanmedian(out[rows, c])
    return out


def bin_series(x, y, n):
    """Bins of n consecutive points: medians and standard errors (the notebook's bin_data)."""
    xb, yb, eb = [], [], []
    for i in range(0, len(x), n):
        xb.append(np.median(x[i:i + n - 1]))
        yb.append(np.median(y[i:i + n - 1]))
        eb.append(np.sqrt(np.var(y[i:i + n - 1])) / np.sqrt(len(y[i:i + n - 1])))
    return np.array(xb), np.array(yb), np.array(eb)


def ranges_to_index(flat, nt):
    """[first, last) pairs, given as a string "a b c d" (how the dump stores them), to indices."""
    if isinstance(flat, bytes):
        flat = flat.decode()
    pairs = np.array(flat.split(), dtype=int).reshape(-1, 2)
    return np.concatenate([np.arange(max(a, 0), min(b, nt)) for a, b in pairs])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    with h5py.File(args.file, "r") as f:
        a = f.attrs
        nt, ny, nx = int(a["nt"]), int(a["ny"]), int(a["nx"])
        data = np.asarray(f["data"][:], dtype=np.float32).reshape(nt, ny, nx)
        errors = np.asarray(f["err"][:], dtype=np.float32).reshape(nt, ny, nx)
        wave1 = np.asarray(f["wavelength_order1"][:], dtype=np.float32)
        wave2 = np.asarray(f["wavelength_order2"][:], dtype=np.float32)
        times = np.asarray(f["time"][:], dtype=np.float64)
        xstart1, ystart1, xend1 = int(a["xstart1"]), float(a["ystart1"]), int(a["xend1"])
        xstart2, ystart2, xend2 = int(a["xstart2"]), float(a["ystart2"]), int(a["xend2"])
        cut = int(a["cut2"])
        nknots = int(a["nknots"])
        mask_aperture = int(a["mask_aperture"])
        radius = float(a["aperture_radius"])
        oot = ranges_to_index(a["out_of_event"], nt)
        in_event = ranges_to_index(a["in_event"], nt)

    seconds, cpu = {}, {}

    def timed(name):
        """Wall-clock (perf_counter) and CPU (process_time) seconds of a block."""
        class Timer:
            def __enter__(self):
                self.start, self.cpu = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - self.start
                cpu[name] = cpu.get(name, 0.0) + time.process_time() - self.cpu
        return Timer()

    # 5.1 Tracing: every integration, both orders (order 2 on the image cut above row `cut`).
    cx1, cy1, cx2, cy2 = {}, {}, {}, {}
    with timed("trace"):
        for i in range(nt):
            cx1[i], cy1[i] = trace_columns(data[i], np.zeros(data[i].shape), xstart1, ystart1, xend1)
            cut_image = data[i, cut:, :]
            cx2[i], cy2[i] = trace_columns(cut_image, np.zeros(cut_image.shape), xstart2, ystart2 - cut, xend2)

    # 5.1 B-splines: interior knots as in the notebook (nknots equal steps, first one dropped).
    x1 = np.arange(xend1, xstart1 + 1)
    x2 = np.arange(xend2, xstart2 + 1)
    knots1 = np.arange(xend1, xstart1, (xstart1 - xend1) / float(nknots))[1:]
    knots2 = np.arange(xend2, xstart2, (xstart2 - xend2) / float(nknots))[1:]
    trace1, trace2 = {}, {}
    with timed("bspline"):
        for i in range(nt):
            trace1[i] = splev(x1, splrep(np.double(cx1[i]), cy1[i], t=knots1))
            trace2[i] = splev(x2, splrep(np.double(cx2[i]), cy2[i] + cut, t=knots2))
    position1 = np.array([trace1[i][len(x1) // 2] for i in range(nt)])
    shift1 = position1 - np.median(position1)

    # 5.2 1/f with the traces masked.
    corrected = np.copy(data)
    with timed("one_over_f"):
        for i in range(nt):
            mask = np.ones(data[i].shape)
            for k in range(len(x1)):
                column, row = int(x1[k]), int(trace1[i][k])
                mask[row - mask_aperture:row + mask_aperture, column] = 0.0
            for k in range(len(x2)):
                column, row = int(x2[k]), int(trace2[i][k])
                mask[row - mask_aperture:row + mask_aperture, column] = 0.0
            corrected[i] = subtract_masked_column_medians(data[i], mask)

    # 5.3 Aperture extraction (flux, error, wavelength) along each order's B-spline.
    spectra = {}
    with timed("extract_o1"):
        for i in range(nt):
            flux, flux_error = aperture_sum(corrected[i], x1, trace1[i], radius, error_image=errors[i])
            wavelength = aperture_sum(wave1, x1, trace1[i], radius, average=True)
            spectra[i] = {"flux": flux, "flux_error": flux_error, "wavelength": wavelength}
    spectra2 = {}
    with timed("extract_o2"):
        for i in range(nt):
            flux, flux_error = aperture_sum(corrected[i], x2, trace2[i], radius, error_image=errors[i])
            wavelength = aperture_sum(wave2, x2, trace2[i], radius, average=True)
            spectra2[i] = {"flux": flux, "flux_error": flux_error, "wavelength": wavelength}

    # 5.4 Light-curve matrix (wavelength x integration), ppm relative to the median.
    nw = len(spectra[0]["wavelength"])
    with timed("lc_matrix"):
        wavelengths = spectra[nt - 1]["wavelength"]
        lightcurves = np.zeros([nw, nt])
        lc_errors = np.zeros([nw, nt])
        for w in range(nw):
            fluxes = np.zeros(nt)
            errs = np.zeros(nt)
            for i in range(nt):
                fluxes[i] = spectra[i]["flux"][w]
                errs[i] = spectra[i]["flux_error"][w]
            median = np.nanmedian(fluxes)
            lightcurves[w, :] = (fluxes / median - 1.0) * 1e6
            lc_errors[w, :] = errs / median * 1e6

    # 5.5 Sensitivity over the out-of-event integrations.
    with timed("sensitivity"):
        ratios = np.sqrt(np.nanvar(lightcurves[:, oot], axis=1)) / np.nanmedian(lc_errors[:, oot], axis=1)
        smoothed = median_filter(ratios, size=41)

    # 5.6 White light with the 10-sigma replacement against the scaled out-of-event median spectrum.
    with timed("white_light"):
        all_flux = np.zeros([nt, nw])
        all_err = np.zeros([nt, nw])
        for i in range(nt):
            all_flux[i, :] = spectra[i]["flux"]
            all_err[i, :] = spectra[i]["flux_error"]
        master = median_filter(np.median(all_flux[oot, :], axis=0), size=11)
        master_err = median_filter(np.median(all_err[oot, :], axis=0), size=11)
        clean_flux = np.zeros([nt, nw])
        clean_err = np.zeros([nt, nw])
        replaced = np.zeros(nt, dtype=int)
        for i in range(nt):
            local = median_filter(spectra[i]["flux"], size=11)
            local_err = median_filter(spectra[i]["flux_error"], size=11)
            model = master / np.median(master / local)
            model_err = master_err / np.median(master_err / local_err)
            outliers = np.where(np.abs(spectra[i]["flux"] - model) / model_err > 10)[0]
            clean_flux[i, :] = np.copy(spectra[i]["flux"])
            clean_err[i, :] = np.copy(spectra[i]["flux_error"])
            clean_flux[i, outliers] = model[outliers]
            clean_err[i, outliers] = model_err[outliers]
            replaced[i] = len(outliers)
        white = np.sum(clean_flux, axis=1)
        white_err = np.sqrt(np.sum(clean_err ** 2, axis=1))
        norm = np.median(white[oot])
        white /= norm
        white_err /= norm

    seconds_since = (times - times[0]) * 86400.0
    with timed("periodogram"):
        t_oot = seconds_since[oot]
        frequencies = np.linspace(1.0 / (t_oot[-1] - t_oot[0]), 0.5 / np.median(np.diff(seconds_since)), 1000)
        psd = LombScargle(t_oot, white[oot], normalization="psd").power(frequencies)

    with timed("rms_vs_bin"):
        bins = np.arange(2, 30, 1)
        scatter = np.zeros(len(bins))
        for k in range(len(bins)):
            _, yb, _ = bin_series(seconds_since[oot], white[oot], bins[k])
            scatter[k] = np.sqrt(np.var(yb))

    order = ["trace", "bspline", "one_over_f", "extract_o1", "extract_o2", "lc_matrix", "sensitivity",
             "white_light", "periodogram", "rms_vs_bin"]
    total = sum(seconds[k] for k in order)
    as_written = total - seconds["extract_o2"]
    cpu_total = sum(cpu[k] for k in order)
    depth = 1.0 - np.mean(white[in_event])
    print(f"notebook reference: {nt} integrations of {ny} x {nx}, order 1 x {xend1}..{xstart1}, "
          f"order 2 x {xend2}..{xstart2}")
    print(f"  {'stage':<14} {'seconds':>9} {'ms/int':>10} {'cpu ms/int':>11}")
    for k in order:
        print(f"  {k:<14} {seconds[k]:9.3f} {1e3 * seconds[k] / nt:10.2f} {1e3 * cpu[k] / nt:11.2f}")
    print(f"  {'total':<14} {total:9.3f} {1e3 * total / nt:10.2f} {1e3 * cpu_total / nt:11.2f}")
    print(f"  {'as written':<14} {as_written:9.3f} {1e3 * as_written / nt:10.2f}   (without order-2 extraction)")
    print(f"check: white-light depth {depth * 1e6:.0f} ppm, median flux order 1 {np.nanmedian(all_flux):.1f}, "
          f"trace shift rms {np.std(shift1):.4f} px, wavelengths {np.nanmin(wavelengths):.3f}-"
          f"{np.nanmax(wavelengths):.3f} um, replaced {int(replaced.sum())} bins, psd max {np.max(psd):.3g}, "
          f"rms(2) {scatter[0] * 1e6:.0f} ppm, sensitivity median {np.nanmedian(smoothed):.2f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"nt": nt, "seconds": seconds, "cpu_seconds": cpu, "total": total, "as_written": as_written,
                       "cpu_per_integration": cpu_total / nt,
                       "as_written_cpu_per_integration": (cpu_total - cpu["extract_o2"]) / nt,
                       "seconds_per_integration": total / nt,
                       "as_written_per_integration": as_written / nt,
                       "white_light_depth": float(depth)}, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
