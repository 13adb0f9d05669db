"""The settings of ``plotsm segment``, with their meaning in NDVI units, metres and hectares."""

from __future__ import annotations

from dataclasses import dataclass, fields

from plotsm.errors import UsageError, option

#: Default core size of a processing tile, pixels [D]: 2048² px × 12 months of float32 is 200 MB per worker, and a
#: full Sentinel-2 tile (10980² px) is 36 tiles, enough to keep two workers busy to the end.
TILE_PX = 2048


@dataclass(frozen=True)
class SegmentSettings:
    """How an NDVI stack is cut into plots (README, "Plots without parcel boundaries").

    - ``merge_ndvi`` (NDVI units): two neighbouring segments are merged while the root-mean-square difference of
      their mean NDVI over the months they both observe is at most this. 0.05 NDVI is a little under the range
      of OTB's Large-Scale Mean-Shift default (``ranger`` 15 on a 0–255 NDVI scale, 0.06), since it applies to
      means of whole segments, not to single pixels; lower keeps more, smaller plots.
    - ``merge_scale_ha`` (hectares): segments smaller than this merge more readily — their tolerance widens as
      √(scale / size), since the mean of a small segment is itself uncertain (two segments of 0.1 ha each merge
      up to 0.06 · √(0.5 / 0.05) ≈ 0.19 NDVI apart with the defaults); plots of twice this area or more merge
      within ``merge_ndvi`` exactly. 0.5 ha = 50 pixels, OTB's small-region ``minsize`` default.
    - ``min_area_ha`` (hectares): a segment smaller than this is merged into its most similar neighbour (or
      dropped when it has none). 0.1 ha = 10 pixels of 10 m: the smallest plot whose S1 mean is not dominated
      by speckle (about 10 looks of the 10 m GRD pixels).
    - ``marker_ndvi`` (NDVI per pixel): the NDVI gradient is rounded to steps of this before its local minima
      seed the watershed; a smaller step seeds more segments (slower merging, same plots), a larger step can
      join fields whose boundary is fainter than the step.
    - ``tile_px`` / ``halo_px`` (pixels): the stack is processed in tiles of ``tile_px``² with a halo of
      ``halo_px`` read around each, so that gradients and watershed lines at a tile's edge are those of the
      whole image; segments cut by a tile edge are joined by the merge like any other similar neighbours.
    - ``workers``: processes that segment tiles in parallel.
    """

    merge_ndvi: float = 0.05
    merge_scale_ha: float = 0.5
    min_area_ha: float = 0.1
    marker_ndvi: float = 0.02
    tile_px: int = TILE_PX
    halo_px: int = 16
    workers: int = 2

    def __post_init__(self) -> None:
        checks = {"merge_ndvi": (0.0, 2.0), "merge_scale_ha": (0.0, 1e6), "min_area_ha": (0.0, 1e6), "marker_ndvi": (1e-6, 1.0)}
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise UsageError(f"{option(name, value)}: expected a number in [{lo:g}, {hi:g}].")
        if self.tile_px < 64:
            raise UsageError(f"{option('tile_px', self.tile_px)}: tiles must be at least 64 pixels wide.")
        if not 2 <= self.halo_px <= self.tile_px // 2:
            raise UsageError(f"{option('halo_px', self.halo_px)}: expected 2 to {self.tile_px // 2} pixels.")
        if self.workers < 1:
            raise UsageError(f"{option('workers', self.workers)}: expected at least 1.")

    def min_pixels(self, pixel_area_m2: float) -> int:
        """``min_area_ha`` in pixels of ``pixel_area_m2`` (at least 1)."""
        return max(1, int(round(self.min_area_ha * 10_000.0 / pixel_area_m2)))

    def scale_pixels(self, pixel_area_m2: float) -> float:
        """``merge_scale_ha`` as a harmonic half-size in pixels of ``pixel_area_m2`` (two segments of that
        area have n₁n₂/(n₁+n₂) = half of it); at least 1."""
        return max(1.0, self.merge_scale_ha * 10_000.0 / pixel_area_m2 / 2.0)

    def as_dict(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
