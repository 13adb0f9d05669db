"""Quality of ``plotsm segment`` on real data: the Slovenian eo-learn patch and the Benin inland valley.

    python bench/segment_quality.py [--figure docs/segment-quality.png]

**Slovenia** (``../shared/data/eolearn-testeopatch-slovenia``: 68 real Sentinel-2 NDVI dates with their cloud
mask, 2015-07 … 2017-12, 101 × 100 px of 10 m, and 88 RABA land-use polygons of the same square kilometre):
the dates are written as NDVI GeoTIFFs with clouds as no data, composited per month by
:func:`plotsm.sources.composite.write_monthly_composites` (``plotsm s2 composite``), segmented, and compared with
the polygons (over-/under-segmentation of Clinton et al. 2010, plain and area-weighted, and the share of segment
area inside one polygon; :mod:`plotsm.segment.quality`). A regular grid with as many cells is the baseline: the
RABA polygons are land-use units, not NDVI-homogeneous fields (their own within-plot share of NDVI variance is
printed too), so agreement with them has a ceiling well below 1.

**Benin** (``../shared/data/benin-itchedjiro``: 39 monthly NDVI medians, 2019-01 … 2022-03, and the site's own
segmentation of an NDVI composite, whose 90 segments of ≥ 2 pixels cover the valley): ``merge_ndvi`` is bisected
until plotsm gives as many plots as the site's segmentation, and the within-plot share of the NDVI variance over
the 39 months is compared (lower = more homogeneous plots), with plotsm's defaults alongside.

Prints one table per site; ``--figure`` draws both partitions over the NDVI (matplotlib).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plotsm.segment import NoMaskWarning, SegmentSettings, segment_ndvi  # noqa: E402
from plotsm.segment.quality import agreement, grid_like, homogeneity  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SLOVENIA = SHARED / "eolearn-testeopatch-slovenia"
BENIN = SHARED / "benin-itchedjiro"


def _burn(plots, shape, transform) -> np.ndarray:  # type: ignore[no-untyped-def]
    from rasterio.features import rasterize

    if not len(plots):
        return np.zeros(shape, dtype=np.int32)
    return rasterize(zip(plots.geometry, range(1, len(plots) + 1)), out_shape=shape, transform=transform,
                     dtype="int32")


def _segment(inputs, **kw):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoMaskWarning)
        return segment_ndvi(inputs, SegmentSettings(workers=1, **kw))


def slovenia_composites(tmp: Path) -> tuple[Path, object, np.ndarray]:
    import rasterio
    from rasterio.transform import from_bounds

    from plotsm.sources.composite import write_monthly_composites

    ndvi = np.load(SLOVENIA / "data" / "NDVI.npy")[..., 0]
    cloud = np.load(SLOVENIA / "mask" / "CLM.npy")[..., 0] > 0
    stamps = json.loads((SLOVENIA / "timestamps.json").read_text())
    ring = json.loads((SLOVENIA / "bbox.geojson").read_text())["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    height, width = ndvi.shape[1:]
    transform = from_bounds(min(xs), min(ys), max(xs), max(ys), width, height)
    (tmp / "dates").mkdir(parents=True)
    paths = []
    for k, stamp in enumerate(stamps):
        path = tmp / "dates" / f"NDVI_{stamp[:10].replace('-', '')}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32",
                           crs="EPSG:32633", transform=transform, nodata=np.nan) as dst:
            dst.write(np.where(cloud[k], np.nan, ndvi[k]).astype(np.float32), 1)
        paths.append(path)
    months = write_monthly_composites(paths, [s[:10] for s in stamps], tmp / "monthly")
    cube = np.stack([rasterio.open(p).read(1) for p in months.values()])
    return tmp / "monthly", transform, cube


def slovenia(tmp: Path) -> dict:
    import geopandas as gpd

    folder, transform, cube = slovenia_composites(tmp)
    shape = cube.shape[1:]
    ref = gpd.read_file(SLOVENIA / "vector_timeless" / "LULC.gpkg")
    reference = _burn(ref, shape, transform)
    rows = []
    print(f"\nSlovenia: {cube.shape[0]} monthly composites of 68 dates, {shape[1]}×{shape[0]} px, "
          f"{len(ref)} RABA polygons (within-plot share of NDVI variance of the polygons themselves: "
          f"{homogeneity(reference, cube).within_share:.3f})")
    print(f"{'partition':<26}{'plots':>6}{'OS':>7}{'US':>7}{'OS(w)':>7}{'US(w)':>7}{'in one':>8}{'within':>8}")
    best = None
    for merge in (0.03, 0.04, 0.05):
        plots = _segment(folder, merge_ndvi=merge, min_area_ha=0.05)
        labels = _burn(plots, shape, transform)
        grid = grid_like(shape, len(plots))
        for name, lab in ((f"plotsm merge_ndvi {merge}", labels), ("  grid, as many cells", grid)):
            a, h = agreement(lab, reference), homogeneity(lab, cube)
            print(f"{name:<26}{a.n_segments:>6}{a.over:>7.3f}{a.under:>7.3f}{a.over_weighted:>7.3f}"
                  f"{a.under_weighted:>7.3f}{a.share_in_one:>8.3f}{h.within_share:>8.3f}")
            rows.append({"site": "slovenia", "partition": name.strip(), "merge_ndvi": merge, **a.__dict__,
                         "within_share": h.within_share})
        if merge == 0.05:
            best = (plots, ref, cube, transform)
    return {"rows": rows, "figure": best}


def benin() -> dict:
    import geopandas as gpd
    import rasterio

    files = sorted((BENIN / "NDVI").glob("NDVI_monthly_median_*.tif"))
    with rasterio.open(files[0]) as src:
        transform, shape = src.transform, src.shape
    cube = np.stack([rasterio.open(p).read(1) for p in files])
    site = gpd.read_file(BENIN / "segments" / "NDVI_2019_2021_SEGMENTED.shp")
    site = site[site["nbPixels"] >= 2]
    site_lab = _burn(site, shape, transform)
    target = len(site)
    h_site = homogeneity(site_lab, cube)
    lo, hi = 0.02, 0.12
    found = None
    for _ in range(14):  # bisection of merge_ndvi on the plot count
        mid = (lo + hi) / 2
        plots = _segment(files, merge_ndvi=mid)
        if found is None or abs(len(plots) - target) < abs(len(found[1]) - target):
            found = (mid, plots)
        if len(plots) == target:
            break
        lo, hi = (mid, hi) if len(plots) > target else (lo, mid)
    assert found is not None
    merge, plots = found
    default = _segment(files)
    print(f"\nBenin: {len(files)} monthly NDVI medians, {shape[1]}×{shape[0]} px, "
          f"{int(np.count_nonzero(site_lab))} px in the valley")
    print(f"{'partition':<40}{'plots':>6}{'within':>8}{'W/B':>7}")
    rows = []
    for name, lab in (("site's segmentation (segments ≥ 2 px)", site_lab),
                      (f"plotsm, merge_ndvi {merge:.4f} (same count)", _burn(plots, shape, transform)),
                      ("plotsm, defaults", _burn(default, shape, transform)),
                      ("grid, as many cells in the valley", grid_like(shape, target, site_lab > 0))):
        h = homogeneity(lab, cube)
        print(f"{name:<40}{h.n_plots:>6}{h.within_share:>8.3f}{h.within / h.between:>7.3f}")
        rows.append({"site": "benin", "partition": name, "n_plots": h.n_plots, "within_share": h.within_share,
                     "within_over_between": h.within / h.between})
    return {"rows": rows, "figure": (plots, site, cube, transform), "site_within": h_site.within_share}


def figure(path: Path, slo: dict, ben: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    plots, ref, cube, transform = slo["figure"]
    h, w = cube.shape[1:]
    ext = [transform.c, transform.c + w * transform.a, transform.f + h * transform.e, transform.f]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanstd(cube, axis=0)
    for ax, title, shapes, colour in ((axes[0], f"Slovenia: {len(ref)} RABA land-use polygons", ref, "cyan"),
                                      (axes[1], f"Slovenia: {len(plots)} plotsm plots (defaults)", plots, "yellow")):
        ax.imshow(spread, extent=ext, cmap="magma")
        shapes.boundary.plot(ax=ax, color=colour, lw=0.8)
        ax.set_xlim(ext[:2]), ax.set_ylim(ext[2:])
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    plots_b, site, cube_b, tb = ben["figure"]
    hb, wb = cube_b.shape[1:]
    ext_b = [tb.c, tb.c + wb * tb.a, tb.f + hb * tb.e, tb.f]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        axes[2].imshow(np.nanmean(cube_b, axis=0), extent=ext_b, cmap="YlGn", vmin=0.1, vmax=0.5)
    site.boundary.plot(ax=axes[2], color="tab:red", lw=0.6)
    plots_b.boundary.plot(ax=axes[2], color="k", lw=0.8)
    axes[2].set_xlim(ext_b[:2]), axes[2].set_ylim(ext_b[2:])
    axes[2].set_title(f"Benin: plotsm's {len(plots_b)} plots (black), the site's {len(site)} segments (red)",
                      fontsize=10)
    axes[2].set_axis_off()
    fig.text(0.01, 0.01, "Background: Slovenia, standard deviation of monthly NDVI over 27 months; Benin, mean NDVI "
             "over 39 months. Copernicus Sentinel data (eo-learn test patch, MIT; rkahnGitHub/memoire, CC0).",
             fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=80)
    print(f"\nwrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", type=Path, default=None, help="write the picture (PNG) here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plotsm-segment-quality-") as tmp:
        slo = slovenia(Path(tmp))
    ben = benin()
    if args.figure:
        figure(args.figure, slo, ben)


if __name__ == "__main__":
    main()
