#!/usr/bin/env python3
"""Checks detector-level (ramps -> rates) outputs against the simulator's truth.

usage: check_jwst.py [--background-removed] [--detectable-sigma=S] TRUTH.h5 REFS_DIR OUT_1RANK.h5 [OUT_OTHER_RANKS.h5 ...]

--background-removed: the workflow subtracts the sky too (one_over_f at group level takes each
column's median of unilluminated pixels, sky included), so the truth is the star plus what is
left of the sky after that.

- every output opens with xarray and holds data/err/dq/var_poisson/var_rnoise over
  (time, y, x) and the int_times;
- every variable is identical in all outputs (1, 2, 3 ranks, other tile shapes);
- pulls (rate - truth) / err over science pixels have mean ~0 and width ~1;
- with the ramps kept (groupdq present), jump recall for hits well above the noise and the
  rate of flagged jumps where none was injected.
Prints the figures it measures; exits non-zero on the first failed check.
"""
import sys
import warnings

import h5py
import numpy as np
import xarray as xr
from astropy.io import fits


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def main():
    args = sys.argv[1:]
    background_removed = "--background-removed" in args
    args = [a for a in args if a != "--background-removed"]
    detectable = 10.0  # hits this many sigma above a group difference's noise must be found
    if args and args[0].startswith("--detectable-sigma="):
        detectable = float(args.pop(0).split("=", 1)[1])
    truth_path, refs, first, *others = args
    ds = xr.open_dataset(first)
    for name in ("data", "err", "dq", "var_poisson", "var_rnoise"):
        if name not in ds:
            fail(f"{first}: no variable {name}")
        if ds[name].dims != ("time", "y", "x"):
            fail(f"{first}: {name} has dims {ds[name].dims}")
    for name in ("int_start", "int_end"):
        if name not in ds:
            fail(f"{first}: no per-integration vector {name}")

    # Partition invariance: bit-identical variables whatever the rank count and tile shape.
    with h5py.File(first, "r") as a:
        for other in others:
            with h5py.File(other, "r") as b:
                names = sorted(k for k in a.keys() if isinstance(a[k], h5py.Dataset))
                if names != sorted(k for k in b.keys() if isinstance(b[k], h5py.Dataset)):
                    fail(f"{other}: variables differ from {first}")
                for k in names:
                    x, y = a[k][...], b[k][...]
                    if x.shape != y.shape or not np.array_equal(x, y, equal_nan=True):
                        fail(f"{other}: variable {k} differs from {first}")
    print(f"identical on {1 + len(others)} runs: every variable of {first}")

    with h5py.File(truth_path, "r") as t:
        star = t["star_rate"][...].astype(np.float64)
        background = t["background_rate"][...].astype(np.float64)
        flux = t["flux"][...].astype(np.float64)
        jumps = {k: t[k][...] for k in ("jump_int", "jump_group", "jump_y", "jump_x", "jump_dn")}
        read_noise = float(t.attrs["read_noise"])
        tgroup = float(t.attrs["tgroup"])
    gain = fits.getdata(f"{refs}/gain.fits", "SCI").astype(np.float64)
    mask = fits.getdata(f"{refs}/mask.fits", "DQ").astype(np.uint32)

    rate = ds["data"].values.astype(np.float64)
    err = ds["err"].values.astype(np.float64)
    dq = ds["dq"].values.astype(np.uint32)
    per_dn = ds["data"].attrs.get("units", "") != "electron/s"
    scale = 1.0 if per_dn else gain
    science = (mask & (1 << 31)) == 0
    if background_removed:
        # What is left of the sky after each column's median over unilluminated science pixels.
        dark_sky = np.where(science & (star < 0.01 * star.max()), background, np.nan)
        with warnings.catch_warnings():  # reference columns have no science pixel: NaN there
            warnings.simplefilter("ignore", RuntimeWarning)
            sky = (background - np.nanmedian(dark_sky, axis=0)[None, :])[None]
    else:
        sky = background[None]
    truth = (star[None] * flux[:, None, None] + sky) * scale
    good = science[None] & ((dq & 1) == 0) & np.isfinite(rate) & (err > 0)
    pulls = ((rate - truth) / err)[good]
    mean, width = float(np.mean(pulls)), float(np.std(pulls))
    robust = float(1.4826 * np.median(np.abs(pulls - np.median(pulls))))
    print(f"pulls over {pulls.size} pixel-integrations: mean {mean:+.3f}, std {width:.3f}, robust width {robust:.3f}")
    if abs(mean) > 0.1:
        fail(f"pull mean {mean:.3f} (want |mean| <= 0.1)")
    if not 0.9 <= robust <= 1.1:
        fail(f"pull width {robust:.3f} (want 0.9 to 1.1)")
    # Bright pixels alone (the trace), where Poisson noise dominates.
    bright = good & (truth > np.percentile(truth[good], 95))
    bp = ((rate - truth) / err)[bright]
    print(f"  brightest 5%: mean {np.mean(bp):+.3f}, robust width {1.4826 * np.median(np.abs(bp - np.median(bp))):.3f}")

    if "groupdq" in ds:
        gdq = ds["groupdq"].values
        flagged = (gdq & 4) != 0
        # Detectable hits: after the first read (a hit before it leaves no step), before the pixel
        # saturates, and ten times the noise of a group difference (read noise and Poisson noise).
        ji, jg, jy, jx = jumps["jump_int"], jumps["jump_group"], jumps["jump_y"], jumps["jump_x"]
        rate_dn = star[jy, jx] * flux[ji] + background[jy, jx]
        sigma = np.sqrt(2 * read_noise ** 2 + rate_dn * tgroup / gain[jy, jx])
        # Groups flagged saturated or do_not_use (e.g. dropped) are never searched.
        searched = (gdq[ji, jg, jy, jx] & 3) == 0
        if "jump_group" in jumps:
            searched &= (gdq[ji, np.maximum(jg - 1, 0), jy, jx] & 3) == 0
        strong = (jg > 0) & searched & (jumps["jump_dn"] > detectable * sigma)
        found = flagged[ji, jg, jy, jx]
        recall = float(np.mean(found[strong])) if strong.any() else 1.0
        injected = np.zeros_like(flagged)
        injected[jumps["jump_int"], jumps["jump_group"], jumps["jump_y"], jumps["jump_x"]] = True
        # Neighbours of hits are flagged on purpose (flag_4_neighbors); count only far-away flags.
        near = injected.copy()
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            near |= np.roll(np.roll(injected, dy, axis=2), dx, axis=3)
        sci4 = np.broadcast_to(science[None, None], flagged.shape)
        false_rate = float(np.sum(flagged & ~near & sci4)) / float(np.sum(~near & sci4))
        print(f"jumps: recall {recall:.3f} of {int(strong.sum())} detectable hits (> {detectable:g} sigma of a group difference); "
              f"flags where none was injected: {false_rate:.2e} of group samples")
        if recall < 0.9:
            fail(f"jump recall {recall:.3f} (want >= 0.9)")
        if false_rate > 2e-3:
            fail(f"jump false-positive rate {false_rate:.2e} (want <= 2e-3)")
    print("OK")


if __name__ == "__main__":
    main()
