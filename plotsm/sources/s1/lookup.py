"""Terrain geocoding at the cost of a lookup: exact solves on a coarse lattice at a few heights, interpolated.

The map → radar mapping of a GRD is smooth in the map coordinates x, y and in the height h: the zero-Doppler
azimuth time changes with x and y along a gently curved orbit, the slant range too, and a height Δh moves a point
by about Δh / tan θ in range, nearly linearly. So :class:`PositionLookup` solves the mapping exactly
(:meth:`.TerrainGeocoder.solve_range`, sarsen's zero-Doppler Newton iterations, to convergence) only at the nodes
of a lattice of the map grid, every :data:`LATTICE_STEP` pixels, at :func:`a few heights <_levels_for>` spanning
the DEM under the grid (Chebyshev points of its range), and for every map pixel

    q(x, y, h) = Σ_k c_k(x, y) · u^k,   u = (h − h_mid) / h_half ∈ [−1, 1],

where q is the azimuth line, the one-way slant range or the ellipsoid incidence angle, the c_k are the
coefficients of the polynomial through the K levels at each node (Chebyshev terms below :data:`TRUNCATION`
dropped: a flat area needs one map per quantity), and c_k(x, y) between nodes is a bicubic interpolating spline of
the node values. A spline on a regular lattice evaluated on a block of the grid is two matrix products (B-spline
design matrices of the block's rows and columns around the block's coefficients). The GRD pixel then comes from
the product's slant-to-ground-range (srgr) polynomials, tabulated per record along slant range
(:meth:`.TerrainGeocoder.srgr_table`) and interpolated bilinearly in (line, range): the polynomials are
interpolated linearly in azimuth time, so the table is exact along lines, and their kinks at each record (which a
spline of the pixel across the map would round off by up to 0.02 px) are kept.

**Accuracy is checked, not assumed.** After building, :class:`PositionLookup` solves exactly at points it did
not fit, at random heights of the range: every fourth lattice node (where only the polynomial in h can err) and
the centres of every fourth lattice cell (where the spline is least constrained); if the largest difference
exceeds :data:`TOLERANCE_PX` it adds heights (when the nodes err) or halves the step (down to :data:`MIN_STEP`)
and rebuilds. The largest difference is recorded (:attr:`PositionLookup.max_error_px`, and the output tags).
Tests compare the lookup with the exact solve at every pixel on flat, steep synthetic and the real Rome DEMs
(3e-4 px). Why not a library: sarsen and xarray-sentinel solve per pixel only; SNAP and ISCE tabulate similar
lookups internally, not as Python APIs.

Outside the image the lattice still needs finite values (a spline of NaN spreads NaN), so the srgr table extends
to the nearest record there; positions are masked afterwards exactly as the per-pixel solve masks them: outside
the image, outside the srgr records' times, or without a height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from scipy.interpolate import BSpline, make_interp_spline
from scipy.ndimage import map_coordinates
from threadpoolctl import threadpool_limits

from plotsm.raster import Grid
from plotsm.sources.s1.geocode import EllipsoidIncidence, RadarPositions, TerrainGeocoder, _inside_image

#: Map pixels between lattice nodes of the exact solves [D]: with 32 (320 m at 10 m) the bicubic spline is
#: within 1e-3 px of the exact solve on the real S1B orbit (tests/test_s1_lookup.py).
LATTICE_STEP = 32
#: Smallest lattice step the self-check may fall back to.
MIN_STEP = 8
#: Most heights at which the lattice is solved (polynomial degree + 1 in h); see :func:`_levels_for`.
MAX_LEVELS = 6
#: Largest difference to the exact solve (line or pixel) accepted by the self-check, pixels [D], half the bound
#: plotsm promises (0.05 px); measured: 3e-4 px. The pixel is not interpolated across the map: the srgr
#: polynomials are interpolated linearly in azimuth time (as xarray-sentinel does), so ground range has a kink at
#: each srgr record, which a spline of the pixel rounded off by up to 0.02 px; the lattice holds the slant range
#: (smooth) and the srgr table (exact along lines) converts it.
TOLERANCE_PX = 0.025
#: Height range below which one level suffices (the height term is then below 1e-3 px), metres.
FLAT_RANGE_M = 0.05
SPLINE_DEGREE = 3
#: Largest sum of the Chebyshev terms in h dropped from line (pixels), slant range (m: 1e-3 px of 10 m) and θ
#: (degrees) [D].
TRUNCATION = (1e-3, 1e-2, 1e-3)
#: Slant-range spacing of the srgr table, metres [D]: bilinear along range errs by c₂·step²/8 ≈ 1e-3 px.
SRGR_STEP_M = 100.0
#: Rows per matrix product of a block's evaluation (:func:`_evaluate_block`).
ROW_CHUNK = 128


@dataclass(frozen=True)
class _Lattice:
    """Tensor-product B-spline coefficients of one quantity's K height coefficients over the lattice."""

    coef: NDArray[np.float64]  # (K, n_rows, n_cols)
    row_knots: NDArray[np.float64]
    col_knots: NDArray[np.float64]


class PositionLookup:
    """(line, pixel) and ellipsoid incidence of the pixels of one map grid, from a lattice of exact solves."""

    def __init__(self, geocoder: TerrainGeocoder, grid: Grid, height_range: tuple[float, float],
                 step: int = LATTICE_STEP, n_levels: int | None = None, tolerance_px: float = TOLERANCE_PX,
                 check: bool = True) -> None:
        """``height_range``: the smallest and largest (ellipsoidal) height the grid's pixels will be given;
        ``n_levels``: heights solved at (default from the range, :func:`_levels_for`)."""
        self.geocoder = geocoder
        self.grid = grid
        self.dem_nodata = geocoder.dem_nodata
        self._incidence = EllipsoidIncidence(geocoder.product)
        lo, hi = float(height_range[0]), float(height_range[1])
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
            raise ValueError(f"height range {height_range}: give finite heights, smallest first")
        self.h_mid, self.h_half = (lo + hi) / 2.0, (hi - lo) / 2.0
        self.n_levels = n_levels if n_levels is not None else _levels_for(hi - lo)
        self.max_error_px = float("nan")
        self.step = step
        with threadpool_limits(1, user_api="blas"):
            self._init_lattice(geocoder, tolerance_px, check)

    def _init_lattice(self, geocoder: TerrainGeocoder, tolerance_px: float, check: bool) -> None:
        self._srgr = geocoder.srgr_table(self._range_span(), SRGR_STEP_M)
        spacing = np.diff(self._srgr[0])
        self._srgr_uniform = bool(len(spacing) > 0 and np.ptp(spacing) <= 1e-9 * abs(spacing[0]))
        while True:
            self._build()
            if not check:
                break
            height_error, self.max_error_px = self._check()
            if self.max_error_px <= tolerance_px:
                break
            if height_error > tolerance_px / 2 and self.n_levels < MAX_LEVELS and self.h_half > 0:
                self.n_levels += 1  # the polynomial in h is short of the truth at the nodes themselves
            elif self.step > MIN_STEP:
                self.step //= 2
            else:
                break

    # ------------------------------------------------------------------------------------------ building
    def _range_span(self) -> tuple[float, float]:
        """Smallest and largest slant range of the grid: solved at the grid's edges (every 64th pixel) at the
        lowest and highest height, widened by 1 km (the nodes beyond the grid's last pixel)."""
        g = self.grid
        rows, cols = _nodes(g.height, 64), _nodes(g.width, 64)
        spans = []
        for h in (self.h_mid - self.h_half, self.h_mid + self.h_half):
            for r, c in ((rows[:1], cols), (rows[-1:], cols), (rows, cols[:1]), (rows, cols[-1:])):
                spans.append(self._solve(r, c, np.full((len(r), len(c)), h))[1])
        ranges = np.concatenate([a.ravel() for a in spans])
        return float(ranges.min()) - 1000.0, float(ranges.max()) + 1000.0

    def _levels(self) -> NDArray[np.float64]:
        """The heights' u coordinates: Chebyshev points of [−1, 1] (one level: 0)."""
        k = self.n_levels
        if k == 1:
            return np.zeros(1)
        return np.cos(np.pi * (np.arange(k) + 0.5) / k)[::-1]

    def _solve(self, rows: NDArray[np.float64], cols: NDArray[np.float64],
               heights: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The exact line and one-way slant range (m) at grid pixels rows × cols, full Newton iterations."""
        return self.geocoder.solve_range(_lattice_grid(self.grid, rows, cols), heights, seeded=False)

    def _build(self) -> None:
        g = self.grid
        rows, cols = _nodes(g.height, self.step), _nodes(g.width, self.step)
        self._rows, self._cols = rows, cols
        u = self._levels()
        values = np.empty((3, len(u), len(rows), len(cols)))  # line, slant range, θ per level
        for i, ui in enumerate(u):
            line, slant = self._solve(rows, cols, np.full((len(rows), len(cols)), self.h_mid + ui * self.h_half))
            values[0, i], values[1, i] = line, slant
            values[2, i] = self._incidence.unbounded(line, self._pixel(line, slant, extend=True))
        # Chebyshev coefficients of the polynomial in u through the levels, per node, truncated to the lowest
        # degree whose dropped terms add up to at most TRUNCATION of the quantity anywhere (|T_k(u)| ≤ 1 on
        # [−1, 1]), then turned into powers of u for Horner's rule: a flat area needs one map per quantity
        cheb = np.einsum("kl,qlij->qkij", np.linalg.inv(np.polynomial.chebyshev.chebvander(u, len(u) - 1)), values)
        self.degrees = tuple(_degree(cheb[q], TRUNCATION[q]) for q in range(3))
        self._quantities = tuple(_fit(rows, cols, _cheb_to_power(cheb[q, : d + 1])) for q, d in enumerate(self.degrees))

    def _pixel(self, line: NDArray[np.float64], slant: NDArray[np.float64], extend: bool = False) -> NDArray[np.float64]:
        """GRD pixel at (line, one-way slant range): the srgr table, bilinear (exact along lines; NaN outside
        the records' lines unless ``extend``, then the nearest record)."""
        rec_lines, ranges, table = self._srgr
        if self._srgr_uniform:
            fi = (line - rec_lines[0]) * (1.0 / (rec_lines[1] - rec_lines[0]))
        else:
            fi = np.interp(line, rec_lines, np.arange(len(rec_lines), dtype=np.float64))
        fx = (slant - ranges[0]) * (1.0 / (ranges[1] - ranges[0]))
        out = map_coordinates(table, [fi.ravel(), fx.ravel()], order=1, mode="nearest", prefilter=False)
        out = out.reshape(line.shape)
        if not extend:
            out[(line < rec_lines[0]) | (line > rec_lines[-1])] = np.nan
        return out

    def _check(self) -> tuple[float, float]:
        """Largest |lookup − exact| (line or pixel) at random heights of the range: at every fourth lattice node
        (where the spline is exact, so only the polynomial in h errs) and at the centres of every fourth lattice
        cell (where the spline is least constrained): (at nodes, overall)."""
        g = self.grid
        rng = np.random.default_rng(0)
        errors = []
        for rows, cols in ((self._rows[::4], self._cols[::4]),
                           (np.clip(self._rows[:-1] + self.step / 2.0, 0, g.height - 1)[1::4],
                            np.clip(self._cols[:-1] + self.step / 2.0, 0, g.width - 1)[1::4])):
            if len(rows) == 0 or len(cols) == 0:
                rows, cols = self._rows[:1], self._cols[:1]
            h = self.h_mid + self.h_half * rng.uniform(-1.0, 1.0, (len(rows), len(cols)))
            exact_line, exact_pixel = self.geocoder.solve(_lattice_grid(g, rows, cols), h, extend=True, seeded=False)
            line, pixel, _ = self._evaluate_points(rows, cols, h, extend=True)
            errors.append(float(max(np.nanmax(np.abs(line - exact_line)), np.nanmax(np.abs(pixel - exact_pixel)))))
        return errors[0], max(errors)

    # -------------------------------------------------------------------------------------------- lookups
    def positions(self, row0: int, col0: int, heights: NDArray[np.float64]) -> tuple[RadarPositions,
                                                                                      NDArray[np.float64]]:
        """Positions and ellipsoid incidence angle (degrees) of the block of the grid whose first pixel is
        (``row0``, ``col0``), given its heights (NaN = no height → NaN outputs). Its matrix products are small:
        call it under ``threadpoolctl.threadpool_limits(1, "blas")`` (OpenBLAS's own threads made them 10× slower
        on two busy cores), as :func:`.grd.calibrate_grd` does; threads of your own may call it at once."""
        n_rows, n_cols = heights.shape
        if heights.size == 0:
            empty = np.empty(heights.shape)
            return RadarPositions(empty, empty.copy()), empty.copy()
        rows = np.arange(row0, row0 + n_rows, dtype=np.float64)
        cols = np.arange(col0, col0 + n_cols, dtype=np.float64)
        return self._mask(*self._evaluate_points(rows, cols, heights))

    def _evaluate_points(self, rows: NDArray[np.float64], cols: NDArray[np.float64], heights: NDArray[np.float64],
                         extend: bool = False) -> tuple[NDArray[np.float64], ...]:
        u = self._u(heights)
        line, slant, theta = (_horner(_evaluate_block(q, rows, cols), u) for q in self._quantities)
        return line, self._pixel(line, slant, extend), theta

    def _u(self, heights: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.n_levels == 1:
            return np.where(np.isfinite(heights), 0.0, np.nan)
        return (heights - self.h_mid) / self.h_half

    def _mask(self, line: NDArray[np.float64], pixel: NDArray[np.float64],
              theta: NDArray[np.float64]) -> tuple[RadarPositions, NDArray[np.float64]]:
        p = self.geocoder.product
        pos = _inside_image(line, pixel, p.n_lines, p.n_samples)
        return pos, np.where(np.isfinite(pos.lines), theta, np.nan)


def _levels_for(height_range_m: float) -> int:
    """Heights to solve at for a height range [D]: over 30–3,970 m the polynomial needs degrees 1 (line), 2
    (pixel) and 3 (θ) to stay within :data:`TRUNCATION`, over 5–115 m degree 1; the self-check adds levels
    where these are short."""
    if height_range_m < FLAT_RANGE_M:
        return 1
    return 2 if height_range_m <= 300 else 3 if height_range_m <= 1500 else 4


def _nodes(n: int, step: int) -> NDArray[np.float64]:
    """Lattice node positions (pixel indices) covering 0 … n − 1, at least SPLINE_DEGREE + 1 of them."""
    count = max(int(np.ceil(max(n - 1, 0) / step)) + 1, SPLINE_DEGREE + 1)
    return np.arange(count, dtype=np.float64) * step


def _lattice_grid(grid: Grid, rows: NDArray[np.float64], cols: NDArray[np.float64]) -> Grid:
    """A grid whose pixel centres are the centres of ``grid``'s pixels (``rows`` × ``cols``, evenly spaced)."""
    t = grid.transform
    dr = float(rows[1] - rows[0]) if len(rows) > 1 else 1.0
    dc = float(cols[1] - cols[0]) if len(cols) > 1 else 1.0
    x0 = t.c + t.a * (cols[0] + 0.5) + t.b * (rows[0] + 0.5)
    y0 = t.f + t.d * (cols[0] + 0.5) + t.e * (rows[0] + 0.5)
    transform = Affine(t.a * dc, t.b * dr, x0 - (t.a * dc + t.b * dr) / 2.0,
                       t.d * dc, t.e * dr, y0 - (t.d * dc + t.e * dr) / 2.0)
    return Grid(crs=grid.crs, transform=transform, width=len(cols), height=len(rows))


def _fit(rows: NDArray[np.float64], cols: NDArray[np.float64], values: NDArray[np.float64]) -> _Lattice:
    """Interpolating bicubic spline coefficients of ``values`` (K, n_rows, n_cols) on the lattice."""
    # make_interp_spline keeps the interpolated axis first in its coefficients
    along_rows = make_interp_spline(rows, np.moveaxis(values, 1, 0), k=SPLINE_DEGREE)  # (n_rows, K, n_cols)
    both = make_interp_spline(cols, np.moveaxis(along_rows.c, 2, 0), k=SPLINE_DEGREE)  # (n_cols, n_rows, K)
    return _Lattice(np.ascontiguousarray(np.moveaxis(both.c, (0, 1, 2), (2, 1, 0))), along_rows.t, both.t)


def _design(points: NDArray[np.float64], knots: NDArray[np.float64]) -> tuple[NDArray[np.float64], int, int]:
    """Dense B-spline design matrix of ``points`` restricted to the basis functions they touch: (matrix, first,
    stop) with matrix[:, j] the basis function first + j."""
    lo, hi = knots[SPLINE_DEGREE], knots[-SPLINE_DEGREE - 1]
    matrix = BSpline.design_matrix(np.clip(points, lo, hi), knots, SPLINE_DEGREE).tocsc()
    used = np.flatnonzero(np.diff(matrix.indptr))
    first, stop = int(used[0]), int(used[-1]) + 1
    return matrix[:, first:stop].toarray(), first, stop


def _evaluate_block(q: _Lattice, rows: NDArray[np.float64], cols: NDArray[np.float64]) -> NDArray[np.float64]:
    """The K coefficient maps (K, len(rows), len(cols)) of one quantity: B_rows · C_k · B_colsᵀ, the row product
    taken :data:`ROW_CHUNK` rows at a time (each output pixel costs the few basis functions of its chunk rather
    than all those of the block; each product writes contiguous rows, which BLAS does at memory speed)."""
    b_cols, c0, c1 = _design(cols, q.col_knots)
    across = np.matmul(q.coef[:, :, c0:c1], b_cols.T)  # (K, n_row_basis, len(cols))
    out = np.empty((len(q.coef), len(rows), len(cols)))
    for start in range(0, len(rows), ROW_CHUNK):
        chunk = slice(start, start + ROW_CHUNK)
        b_rows, r0, r1 = _design(rows[chunk], q.row_knots)
        for k in range(len(q.coef)):
            np.matmul(b_rows, across[k, r0:r1], out=out[k, chunk])
    return out


def _degree(cheb: NDArray[np.float64], tolerance: float) -> int:
    """The lowest degree whose dropped Chebyshev terms (``cheb``: (K, rows, cols)) sum to ≤ ``tolerance``."""
    tail = np.cumsum(np.abs(cheb[::-1]).max(axis=(1, 2)))[::-1]  # tail[d] = max Σ_{k ≥ d} |c_k|
    for d in range(len(cheb)):
        if d + 1 == len(cheb) or tail[d + 1] <= tolerance:
            return d
    return len(cheb) - 1


def _cheb_to_power(cheb: NDArray[np.float64]) -> NDArray[np.float64]:
    """Chebyshev series coefficients (K, …) → power-series coefficients (K, …) of the same polynomial."""
    k = len(cheb)
    basis = np.zeros((k, k))  # basis[i] = powers of T_i
    for i in range(k):
        powers = np.polynomial.chebyshev.cheb2poly(np.eye(k)[i])
        basis[i, : len(powers)] = powers
    return np.einsum("ik,i...->k...", basis, cheb)


def _horner(coef: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.float64]:
    """Σ_k coef[k] · u^k, evaluated in place from the highest power."""
    out = coef[-1].copy()
    for k in range(len(coef) - 2, -1, -1):
        out *= u
        out += coef[k]
    return out
