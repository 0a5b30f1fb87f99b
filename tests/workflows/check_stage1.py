"""Checks stage-1 outputs: xarray reads every variable with units, every rank count wrote the
same numbers, and the per-frame products are sane against the simulator's truth.

usage: check_stage1.py TRUTH.h5 OUT_1RANK.h5 OUT_2RANKS.h5 [OUT_3RANKS.h5 ...]
"""
import sys

import h5py
import numpy as np
import xarray


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def main():
    truth_path, reference, *others = sys.argv[1:]
    ds = xarray.open_dataset(reference)
    for name, var in ds.variables.items():
        if name in ds.dims:
            continue
        if "units" not in var.attrs or "long_name" not in var.attrs:
            fail(f"{name} lacks units or long_name: {dict(var.attrs)}")
    for name in ("data", "err", "dq", "time", "hst_dq_replaced", "free_iter_outliers", "led_outliers",
                 "bkg_uniform_value", "track_0th_x_shift", "track_0th_y_shift"):
        if name not in ds:
            fail(f"{name} missing from {reference}: {sorted(ds.variables)}")

    # The same numbers from every rank count, every variable.
    with h5py.File(reference, "r") as ref:
        names = []
        ref.visit(lambda n: names.append(n) if isinstance(ref[n], h5py.Dataset) else None)
        for path in others:
            with h5py.File(path, "r") as other:
                for name in names:
                    if not np.array_equal(ref[name][...], other[name][...], equal_nan=True):
                        fail(f"{name} differs between {reference} and {path}")

    # Sanity against truth: the background is gone and the drift is followed.
    with h5py.File(truth_path, "r") as truth:
        shift_x = truth["shift_x"][...]
        shift_y = truth["shift_y"][...]
    dx = ds["track_0th_x_shift"].values - (shift_x - shift_x[0])
    dy = ds["track_0th_y_shift"].values - (shift_y - shift_y[0])
    print(f"track_0th: rms error {np.sqrt(np.mean(dx**2)):.4f} px in x, {np.sqrt(np.mean(dy**2)):.4f} px in y")
    if np.sqrt(np.mean(dx**2)) > 0.05 or np.sqrt(np.mean(dy**2)) > 0.08:
        fail("track_0th does not follow the drift")
    residual = np.median(ds["data"].values[:, :30, :], axis=(1, 2))
    print(f"background left in rows 0-29: median {np.median(residual):.3f} e-, worst frame {np.abs(residual).max():.3f} e-")
    if np.abs(residual).max() > 1.0:
        fail("background not subtracted")
    print("stage 1 outputs: identical on", 1 + len(others), "rank counts")


if __name__ == "__main__":
    main()
