"""Overlap check of a parcel map: ``plotsm.parcels.overlapping_parcels`` on 150,000 parcels.

Scene (built in memory, ~3 s): the Voronoi cells of ``--n`` uniform random seeds in a square of UTM 31N sized for
~1 ha cells (a partition: neighbours share edges exactly, as in a real parcel map), plus 300 deliberate overlaps
appended at the end of the table: 100 identical copies of cells, 100 copies shifted by 10 m (they overlap their
original and its neighbours) and 100 copies shifted by 0.5 mm (each overlaps its original by nearly all its area,
and its neighbours by slivers of ~0.05 m², under the 1 m² threshold). Seed 0 gives 603 pairs over 903 parcels.

Timed: ``overlapping_parcels`` (best of ``--repeat``, wall and CPU seconds); with ``--lonlat`` the same parcels in
EPSG:4326 (areas in the UTM zone); with ``--compare`` the textbook way once (STRtree ``predicate="intersects"``
then ``touches`` on the pairs). The machine is shared: CPU time is the steadier figure.
Run: ``python bench/parcels_overlap.py [--n 150000] [--repeat 3] [--lonlat] [--compare] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

import geopandas as gpd
import numpy as np
import shapely

from plotsm.parcels import overlapping_parcels

X0, Y0 = 500_000.0, 4_800_000.0


def parcel_map(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    side = float(np.sqrt(n * 10_000.0))
    seeds = shapely.multipoints(np.column_stack([X0 + rng.random(n) * side, Y0 + rng.random(n) * side]))
    frame = shapely.box(X0, Y0, X0 + side, Y0 + side)
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame)), frame)
    picked = cells[rng.choice(n, 300, replace=False)]
    copies = np.concatenate([
        picked[:100],
        shapely.transform(picked[100:200], lambda xy: xy + 10.0),
        shapely.transform(picked[200:], lambda xy: xy + 0.0005),
    ])
    geoms = np.concatenate([cells, copies])
    ids = [f"P{k:06d}" for k in range(len(geoms))]
    return gpd.GeoDataFrame({"parcel_id": ids}, geometry=geoms, crs="EPSG:32631")


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best wall and CPU seconds of ``repeat`` calls, and the last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), out


def textbook(gdf: gpd.GeoDataFrame) -> int:
    geoms = gdf.geometry.to_numpy()
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    interior = ~shapely.touches(geoms[i], geoms[j])
    i, j = i[interior], j[interior]
    return int((shapely.area(shapely.intersection(geoms[i], geoms[j])) > 1.0).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lonlat", action="store_true")
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    gdf = parcel_map(args.n)
    out: dict[str, Any] = {"n_parcels": len(gdf), "build_s": round(time.perf_counter() - t0, 2)}
    wall, cpu, report = timed(lambda: overlapping_parcels(gdf), args.repeat)
    out |= {"overlap_wall_s": round(wall, 2), "overlap_cpu_s": round(cpu, 2), "n_pairs": report.n_pairs,
            "n_overlapping": report.n_parcels, "area_m2": round(report.area_m2)}
    if args.lonlat:
        lonlat = gdf.to_crs("EPSG:4326")
        wall, cpu, geo = timed(lambda: overlapping_parcels(lonlat), args.repeat)
        out |= {"lonlat_wall_s": round(wall, 2), "lonlat_cpu_s": round(cpu, 2), "lonlat_n_pairs": geo.n_pairs}
    if args.compare:
        wall, cpu, n_pairs = timed(lambda: textbook(gdf), 1)
        out |= {"textbook_wall_s": round(wall, 2), "textbook_cpu_s": round(cpu, 2), "textbook_n_pairs": n_pairs}
    if args.json:
        print(json.dumps(out))
        return
    for key, value in out.items():
        print(f"{key:>20}  {value}")
    print(report.message("bench"))


if __name__ == "__main__":
    main()
