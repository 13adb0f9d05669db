"""Tiles of the stack, cut in parallel and stitched into one label raster without seams.

Each tile's core is read with its halo, over-segmented (:mod:`plotsm.segment.oversegment`) and merged within
the tile (:func:`plotsm.segment.merge.merge_similar`), so what comes back is a few labels per field. The labels
are offset into one int32 raster (4 bytes a pixel: 482 MB for a full Sentinel-2 tile) and the pairs of labels
facing each other across tile edges are added to the adjacency, so the global merge joins the pieces of a plot
that a tile edge cut exactly as it joins any other similar neighbours: the tiling leaves no seam.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
from skimage.measure import label

from plotsm.progress import Steps
from plotsm.segment.merge import merge_similar
from plotsm.segment.oversegment import TileCut, cut_tile, refine
from plotsm.segment.regions import Regions, adjacency, region_sums, unique_pairs
from plotsm.segment.settings import SegmentSettings
from plotsm.segment.stack import NdviStack


@dataclass
class Stitched:
    """The stack's label raster (1…R, 0 = no data), the sums of its R regions and their adjacency (0-based)."""

    labels: np.ndarray
    regions: Regions
    edges: np.ndarray


def tile_cores(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(row0, row1, col0, col1) of the tile cores, row-major."""
    return [(r, min(r + tile, height), c, min(c + tile, width))
            for r in range(0, height, tile) for c in range(0, width, tile)]


def cut_one(stack: NdviStack, settings: SegmentSettings, core: tuple[int, int, int, int]) -> TileCut:
    """Read, over-segment, merge within the tile and refine the boundaries of one tile (a worker's job)."""
    r0, r1, c0, c1 = core
    h = settings.halo_px
    cube = stack.read(r0 - h, r1 + h, c0 - h, c1 + h)
    cut = cut_tile(cube, (h, h, h, h), settings, r0, c0)
    if len(cut.regions) == 0:
        return cut
    owner, _ = merge_similar(cut.regions, cut.edges - 1, settings.merge_ndvi,
                             settings.scale_pixels(stack.grid.pixel_area_m2))
    lut = np.zeros(owner.size + 1, dtype=np.int64)
    lut[1:] = owner + 1
    merged = lut[cut.labels]
    core_cube = cube[:, h:cube.shape[1] - h, h:cube.shape[2] - h]
    refined = refine(merged, core_cube, cut.regions.mean())
    labels = label(refined, background=0, connectivity=1).astype(np.int32)  # pieces a move cut off
    return TileCut(r0, c0, labels, region_sums(labels, core_cube), adjacency(labels))


def _cuts(stack: NdviStack, settings: SegmentSettings, cores: list[tuple[int, int, int, int]]) -> Iterator[TileCut]:
    if settings.workers == 1 or len(cores) == 1:
        for core in cores:
            yield cut_one(stack, settings, core)
        return
    with ProcessPoolExecutor(max_workers=min(settings.workers, len(cores))) as pool:
        pending: set[Future[TileCut]] = set()
        todo = iter(cores)
        for core in todo:  # at most two tiles queued per worker: results are pulled as they come
            pending.add(pool.submit(cut_one, stack, settings, core))
            if len(pending) >= 2 * settings.workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.add(pool.submit(cut_one, stack, settings, nxt))


def cut_and_stitch(stack: NdviStack, settings: SegmentSettings, steps: Steps | None = None) -> Stitched:
    """Label raster, region sums and adjacency of the whole stack, tile by tile in ``settings.workers``
    processes."""
    height, width = stack.grid.height, stack.grid.width
    cores = tile_cores(height, width, settings.tile_px)
    labels = np.zeros((height, width), dtype=np.int32)
    parts: list[tuple[int, TileCut]] = []
    offset = 0
    for k, cut in enumerate(_cuts(stack, settings, cores), start=1):
        rows, cols = cut.labels.shape
        view = labels[cut.row0:cut.row0 + rows, cut.col0:cut.col0 + cols]
        np.add(cut.labels, offset, out=view, where=cut.labels > 0)
        parts.append((offset, cut))
        offset += len(cut.regions)
        if offset >= 2**31 - 1:
            raise OverflowError("more than 2³¹ segments: raise merge_ndvi or min_area_ha")
        if steps:
            steps(k, len(cores))
    edges = [cut.edges - 1 + off for off, cut in parts if cut.edges.size]
    edges.append(_seam_edges(labels, settings.tile_px) - 1)
    regions = Regions.concat([cut.regions for _, cut in parts]) if parts else Regions(
        np.zeros(0, np.int64), np.zeros((0, len(stack.layers)), np.int64),
        np.zeros((0, len(stack.layers))), np.zeros((0, len(stack.layers))))
    both = np.concatenate(edges)
    all_edges = unique_pairs(both[:, 0], both[:, 1]) if both.size else np.empty((0, 2), dtype=np.int64)
    return Stitched(labels, regions, all_edges)


def _seam_edges(labels: np.ndarray, tile: int) -> np.ndarray:
    """Pairs of labels facing each other across the tile edges (1-based)."""
    found = [np.empty((0, 2), dtype=np.int64)]
    for r in range(tile, labels.shape[0], tile):
        found.append(adjacency(labels[r - 1:r + 1, :]))
    for c in range(tile, labels.shape[1], tile):
        found.append(adjacency(labels[:, c - 1:c + 1]))
    both = np.concatenate(found)
    return unique_pairs(both[:, 0], both[:, 1]) if both.size else both
