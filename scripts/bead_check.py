#!/usr/bin/env python
"""Image a bead of known RI through the ``beam`` style's simulated instrument and print what comes back.

    python scripts/bead_check.py [--out docs/beam_bead.png] [--ri 1.46] [--diameter 5.0]

Rows: the requested bead (default: a 5 um silica bead, 1.46, in medium 1.337) and a cell-like bead
(1.38, the contrast of nucleoli). Columns: x-y and x-z sections of the truth and of the reconstruction
through the bead centre, and line profiles along x and z. Prints the dict of ``bead_check``.
"""

from __future__ import annotations

import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from osnet_monai.phantoms.styles.beam import bead_check  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/beam_bead.png")
    ap.add_argument("--ri", type=float, default=1.46)
    ap.add_argument("--diameter", type=float, default=5.0)
    args = ap.parse_args()
    rows = [(args.ri, args.diameter), (1.38, args.diameter)]
    fig, axes = plt.subplots(len(rows), 5, figsize=(21, 4.3 * len(rows)), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.4]})
    for row, (ri, diameter) in zip(axes, rows):
        r = bead_check(ri_bead=ri, diameter_um=diameter, return_volumes=True)
        numbers = {k: v for k, v in r.items() if k not in ("truth", "recon", "spacing", "centre_index")}
        print(f"bead n={ri} d={diameter} um:", {k: round(v, 5) if isinstance(v, float) else v for k, v in numbers.items()})
        truth, recon = r["truth"], r["recon"]
        dx, _, dz = r["spacing"]
        ic, _, zc = r["centre_index"]
        nm = r["ri_medium"]
        lo, hi = nm - 0.25 * (ri - nm), ri + 0.15 * (ri - nm)
        X, Z = truth.shape[0] * dx, truth.shape[2] * dz
        xy = dict(cmap="gray", vmin=lo, vmax=hi, extent=(-X / 2, X / 2, X / 2, -X / 2))
        xz = dict(cmap="gray", vmin=lo, vmax=hi, extent=(-X / 2, X / 2, Z - zc * dz, -zc * dz))
        row[0].imshow(truth[:, :, zc].T, **xy)
        row[0].set_title(f"truth x-y (n = {ri})")
        row[1].imshow(recon[:, :, zc].T, **xy)
        row[1].set_title(f"reconstruction x-y (centre {r['ri_center']:.4f})")
        row[2].imshow(truth[:, ic, :].T, **xz)
        row[2].set_title("truth x-z")
        row[3].imshow(recon[:, ic, :].T, **xz)
        row[3].set_title(f"reconstruction x-z (elongation {r['elongation']:.2f})")
        for a in row[:4]:
            a.set_xlabel("x (um)")
        row[0].set_ylabel("y (um)")
        row[2].set_ylabel("z (um)")
        x = (np.arange(truth.shape[0]) - ic) * dx
        z = (np.arange(truth.shape[2]) - zc) * dz
        p = row[4]
        p.plot(x, truth[:, ic, zc], "k-", lw=1, label="truth (x and z)")
        p.plot(x, recon[:, ic, zc], "C0-", label=f"recon along x (FWHM {r['fwhm_x_um']:.2f} um)")
        p.plot(z, recon[ic, ic, :], "C3-", label=f"recon along z (FWHM {r['fwhm_z_um']:.2f} um)")
        p.axhline(nm, color="0.6", lw=0.8, ls=":")
        p.set_xlim(-1.3 * diameter, 1.3 * diameter)
        p.set_xlabel("distance from the centre (um)")
        p.set_ylabel("RI")
        p.set_title(f"contrast error {100 * r['contrast_error']:+.1f} %  (absolute {100 * r['absolute_error']:+.2f} %)")
        p.legend(fontsize=8, loc="lower center")
    fig.suptitle("beam style: bead through multi-slice forward model + Rytov/FDT reconstruction "
                 "(NA 1.2/1.2, 532 nm, 48-angle spiral, 0.1 x 0.2 um, 2 non-negativity iterations, no noise)")
    fig.tight_layout()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=70)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
