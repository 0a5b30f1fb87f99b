"""Checks Tessera outputs against each other and against the simulator's truth.

usage: check_output.py TRUTH.h5 OUT_1RANK.h5 OUT_2RANKS.h5 [OUT_3RANKS.h5 ...]
"""
import sys

import h5py
import numpy as np
import xarray

TEMPORAL_OUTLIER = 1 << 16


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def main():
    truth_path, reference, *others = sys.argv[1:]

    # xarray opens the file with no options and sees the dimensions and units.
    ds = xarray.open_dataset(reference)
    if ds["data"].dims != ("time", "y", "x"):
        fail(f"data dims {ds['data'].dims}")
    if ds["data"].dtype != np.float32 or ds["dq"].dtype != np.uint32:
        fail(f"dtypes {ds['data'].dtype} {ds['dq'].dtype}")
    if ds["data"].attrs.get("units") != "electron":
        fail(f"data units {ds['data'].attrs}")
    if not np.all(np.diff(ds["time"].values) > 0):
        fail("time coordinate is not increasing")
    for name in ("exptime", "orbit", "frame_in_orbit", "fixed_iter_outliers"):
        if ds[name].dims != ("time",):
            fail(f"{name} dims {ds[name].dims}")
    for key in ("workflow_toml", "resolved_workflow", "tessera_version", "tessera_git_commit", "hosts", "start_utc"):
        if key not in ds.attrs:
            fail(f"provenance attribute {key} missing")

    # Every rank count writes the same numbers.
    with h5py.File(reference, "r") as ref:
        for path in others:
            with h5py.File(path, "r") as other:
                for name in ("data", "err", "dq", "fixed_iter_outliers", "time"):
                    if not np.array_equal(ref[name][...], other[name][...], equal_nan=True):
                        fail(f"{name} differs between {reference} and {path}")

    # Cosmic rays: recall on clear hits and the false-positive rate elsewhere.
    with h5py.File(truth_path, "r") as truth:
        t, y, x = (truth[k][...].astype(int) for k in ("cr_frame", "cr_y", "cr_x"))
        charge = truth["cr_charge"][...]
    err = ds["err"].values
    flagged = (ds["dq"].values & TEMPORAL_OUTLIER) != 0
    significance = charge / err[t, y, x]
    strong = significance >= 10
    recall = flagged[t[strong], y[strong], x[strong]].mean()
    hit = np.zeros_like(flagged)
    hit[t, y, x] = True
    false_positive_rate = (flagged & ~hit).sum() / (~hit).sum()
    print(f"fixed_iter: {strong.sum()} cosmic-ray pixels >= 10 sigma, recall {recall:.4f}; "
          f"false-positive rate {false_positive_rate:.2e}; counted {int(ds['fixed_iter_outliers'].sum())} replacements")
    if recall < 0.98:
        fail(f"recall {recall:.4f} < 0.98")
    if false_positive_rate > 2e-3:
        fail(f"false-positive rate {false_positive_rate:.2e} > 2e-3")
    if int(ds["fixed_iter_outliers"].sum()) != int(flagged.sum()):
        fail("per-frame outlier counts do not add up to the flagged pixels")
    print("outputs agree and match the truth")


if __name__ == "__main__":
    main()
