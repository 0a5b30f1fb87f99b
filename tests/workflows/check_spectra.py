"""Checks a spectral workflow's outputs against the simulator's truth.

Usage: check_spectra.py [options] TRUTH.h5 OUTPUT.h5 [MORE_OUTPUTS.h5 ...]

Every further output must be identical to the first (the same workflow on other rank counts).
Checks on the first output, for each spectrum suffix given with --spectrum SUFFIX[:TRACE]:
- xarray opens it, flux{s} is (time, wavelength{s}) with wavelength values in micron;
- the white-light and per-bin transit depths (lc_diagnostics) agree with the injected depth
  within their errors (|pull| < --max-pull; per-bin pulls have a spread near 1);
- the sensitivity (out-of-event scatter / predicted error) is near 1;
- with TRACE, the traced centre follows the truth's centre plus the pointing drift;
- with --compare-optimal BOX:OPT, optimal extraction's measured scatter is lower than box
  extraction's by the ratio its predicted errors give.
Prints the figures it checks, so the test log is the accuracy report.
"""
import argparse
import sys

import h5py
import numpy as np
import xarray as xr


def fail(message):
    sys.exit(f"FAIL: {message}")


def identical(first, others):
    with h5py.File(first, "r") as a:
        names = []
        a.visit(lambda k: names.append(k) if isinstance(a[k], h5py.Dataset) else None)
        for other in others:
            with h5py.File(other, "r") as b:
                for k in names:
                    if k not in b:
                        fail(f"{other}: {k} missing")
                    if not np.array_equal(a[k][...], b[k][...], equal_nan=True):
                        fail(f"{other}: {k} differs from {first}")
    print(f"identical outputs on {1 + len(others)} rank counts ({len(names)} variables)")


def event_ranges(flux, depth):
    """Out-of-event (flux = 1) and full-depth in-event integrations from the truth's curve."""
    out = np.isclose(flux, 1.0, atol=1e-9)
    full = np.isclose(flux, 1.0 - depth, atol=1e-9)
    return out, full


def robust_std(x):
    x = x[np.isfinite(x)]
    return 1.4826 * np.median(np.abs(x - np.median(x)))


def check_spectrum(ds, truth, suffix, trace, args):
    s = suffix
    flux = ds[f"flux{s}"]
    if flux.dims != ("time", f"wavelength{s}"):
        fail(f"flux{s} dims {flux.dims}")
    wl = ds[f"wavelength{s}"].values
    if ds[f"wavelength{s}"].attrs.get("units") not in ("micron", "um"):
        fail(f"wavelength{s} units {ds[f'wavelength{s}'].attrs.get('units')}")
    good = np.isfinite(wl)
    print(f"[{s or 'spectrum'}] {flux.shape[0]} integrations x {good.sum()} wavelengths "
          f"({np.nanmin(wl):.3f}-{np.nanmax(wl):.3f} micron)")

    depth = float(truth.attrs["transit_depth"])
    d = float(ds.attrs[f"white_light_depth{s}"])
    e = float(ds.attrs[f"white_light_depth_error{s}"])
    pull = (d - depth) / e
    print(f"  white-light depth {d * 1e6:.1f} +- {e * 1e6:.1f} ppm (truth {depth * 1e6:.1f}): pull {pull:+.2f}")
    if abs(pull) > args.max_pull:
        fail(f"white-light depth{s} pull {pull:.2f}")

    bd = ds[f"binned_depth{s}"].values
    be = ds[f"binned_depth_error{s}"].values
    ok = np.isfinite(bd) & np.isfinite(be) & (be > 0)
    pulls = (bd[ok] - depth) / be[ok]
    print(f"  {ok.sum()} bins: depth pulls mean {pulls.mean():+.2f}, std {pulls.std():.2f}, "
          f"max |pull| {np.abs(pulls).max():.2f}; median error {np.median(be[ok]) * 1e6:.0f} ppm")
    if ok.sum() < 3:
        fail(f"binned_depth{s}: only {ok.sum()} finite bins")
    if np.abs(pulls).max() > args.max_pull + 1 or not (0.4 < pulls.std() < 1.8):
        fail(f"binned depth{s} pulls out of range")

    sens = ds[f"sensitivity{s}"].values
    med = float(np.nanmedian(sens))
    print(f"  sensitivity (scatter / predicted error): median {med:.3f}")
    if not (args.sensitivity[0] < med < args.sensitivity[1]):
        fail(f"sensitivity{s} median {med:.3f} outside {args.sensitivity}")

    if trace:
        traced = ds[f"trace_{trace}"].values  # (time, dispersion index)
        true_centre = truth[f"trace_center_{trace}"].values if f"trace_center_{trace}" in truth else \
            truth["trace_center"].values
        shift = truth["shift_y"].values if args.dispersion == "x" else truth["shift_x"].values
        expected = true_centre[None, :] + shift[:, None]
        diff = traced - expected
        both = np.isfinite(diff)
        # The B-spline's ends are least constrained; judge the inner 90 %.
        cols = np.where(both.any(axis=0))[0]
        lo, hi = cols.min(), cols.max()
        inner = slice(lo + (hi - lo) // 20, hi - (hi - lo) // 20)
        rms = float(np.sqrt(np.nanmean(diff[:, inner] ** 2)))
        bias = float(np.nanmean(diff[:, inner]))
        print(f"  trace_{trace}: rms {rms:.4f} px from truth (mean {bias:+.4f}) over columns {lo}-{hi}")
        if rms > args.max_trace_rms:
            fail(f"trace_{trace} rms {rms:.4f} px")
        if f"trace_shift_{trace}" in ds:
            ts = ds[f"trace_shift_{trace}"].values
            truth_shift = shift - np.median(shift)
            srms = float(np.sqrt(np.mean((ts - truth_shift) ** 2)))
            print(f"  trace_shift_{trace}: rms {srms:.4f} px from the truth's drift (drift rms {truth_shift.std():.4f})")
            if srms > args.max_trace_rms:
                fail(f"trace_shift_{trace} rms {srms:.4f}")


def compare_optimal(ds, truth, box, opt, args):
    flux = truth["flux"].values
    out, _ = event_ranges(flux, float(truth.attrs["transit_depth"]))
    ratios_measured, ratios_predicted = [], []
    fb, eb = ds[f"flux{box}"].values[out], ds[f"flux_error{box}"].values[out]
    fo, eo = ds[f"flux{opt}"].values[out], ds[f"flux_error{opt}"].values[out]
    cols = np.isfinite(fb).all(axis=0) & np.isfinite(fo).all(axis=0) & (np.nanmedian(fb, axis=0) > 0)
    sb = np.std(fb[:, cols] / np.median(fb[:, cols], axis=0), axis=0)
    so = np.std(fo[:, cols] / np.median(fo[:, cols], axis=0), axis=0)
    pb = np.median(eb[:, cols], axis=0) / np.median(fb[:, cols], axis=0)
    po = np.median(eo[:, cols], axis=0) / np.median(fo[:, cols], axis=0)
    measured = float(np.median(so / sb))
    predicted = float(np.median(po / pb))
    print(f"optimal vs box (out of event, {cols.sum()} columns): relative scatter box {np.median(sb) * 1e6:.0f} ppm, "
          f"optimal {np.median(so) * 1e6:.0f} ppm; ratio measured {measured:.3f}, predicted from errors {predicted:.3f}")
    if not measured < 1.0:
        fail("optimal extraction is not less noisy than box extraction")
    if abs(measured / predicted - 1) > args.optimal_tolerance:
        fail(f"optimal/box scatter ratio {measured:.3f} differs from the predicted {predicted:.3f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("truth")
    p.add_argument("outputs", nargs="+")
    p.add_argument("--spectrum", action="append", default=[], help="SUFFIX[:TRACE]")
    p.add_argument("--dispersion", default="x")
    p.add_argument("--compare-optimal", default=None, help="BOX_SUFFIX:OPTIMAL_SUFFIX")
    p.add_argument("--max-pull", type=float, default=3.5)
    p.add_argument("--max-trace-rms", type=float, default=0.05)
    p.add_argument("--sensitivity", type=float, nargs=2, default=(0.85, 1.25))
    p.add_argument("--optimal-tolerance", type=float, default=0.15)
    args = p.parse_args()

    identical(args.outputs[0], args.outputs[1:])
    ds = xr.open_dataset(args.outputs[0])
    truth = xr.open_dataset(args.truth)
    for spec in args.spectrum:
        suffix, _, trace = spec.partition(":")
        check_spectrum(ds, truth, suffix, trace, args)
    if args.compare_optimal:
        box, opt = args.compare_optimal.split(":")
        compare_optimal(ds, truth, box, opt, args)
    print("spectra checks: OK")


if __name__ == "__main__":
    main()
