"""``plotsm s1 calibrate``, ``plotsm s2 ndvi|composite`` and ``plotsm dem slope``: real products → the
analysis-ready rasters ``plotsm run`` reads (:mod:`plotsm.sources`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from plotsm.cli.console import info, out
from plotsm.cli.progress import progress

s2_app = typer.Typer(help="Sentinel-2 L2A → NDVI rasters.", no_args_is_help=True)
dem_app = typer.Typer(help="DEM → slope raster.", no_args_is_help=True)
s1_app = typer.Typer(help="Sentinel-1 GRD → σ⁰ VV and incidence-angle rasters.", no_args_is_help=True)


@s2_app.command("ndvi")
def s2_ndvi(
    product: Annotated[Path, typer.Argument(help="Sentinel-2 product, folder or .zip: ESA L2A .SAFE, L2A COG assets with their STAC item, AWS L2A tile folder, Theia L2A or L3A.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder; the NDVI is written there as NDVI_<tile>_<YYYYMMDD>.tif.")],
    uint8: Annotated[bool, typer.Option("--uint8", help="Encode as uint8: round((NDVI+1)·100), 255 = no data.")] = False,
    overviews: Annotated[bool, typer.Option("--overviews", help="Also build internal overviews, for viewing in a GIS (a full tile then takes about 3× as long). Zonal statistics do not need them.")] = False,
) -> None:
    """NDVI of a whole Sentinel-2 product; clouds, shadows, snow, water and no data masked (SCL, CLM/MG2 or FLG).

    Written as a tiled GeoTIFF, ZSTD-compressed (readable by GDAL >= 2.3), without overviews unless --overviews.
    """
    from plotsm.atomic import check_destination
    from plotsm.sources.s2.product import resolve_s2_product, write_product_ndvi

    check_destination(out_dir)
    resolved = resolve_s2_product(product)
    info(f"{resolved.kind} ({resolved.layout}) tile {resolved.tile}, {resolved.date:%Y-%m-%d}")
    path = write_product_ndvi(resolved, out_dir, encoding="uint8" if uint8 else "float32", overviews=overviews)
    out.print(f"wrote {path}")


@s2_app.command("composite")
def s2_composite(
    ndvi: Annotated[list[Path], typer.Argument(help="NDVI rasters on one grid; dates from YYYYMMDD in the names.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the monthly medians, one ndvi_YYYY-MM.tif per month.")],
) -> None:
    """Monthly median NDVI composites of single-date NDVI rasters (dates read from the file names).

    Every input is checked (readable, one grid, NDVI in a known encoding) before anything is written, and the
    months are moved into place together: a bad input leaves no composite behind."""
    from plotsm.atomic import check_destination
    from plotsm.sources.composite import dates_from_names, write_monthly_composites

    check_destination(out_dir)
    written = write_monthly_composites(list(ndvi), dates_from_names(ndvi), out_dir)
    for month, path in written.items():
        out.print(f"{month}: {path}")


@dem_app.command("slope")
def dem_slope(
    dem: Annotated[Path, typer.Argument(help="DEM GeoTIFF (e.g. SRTM), geographic or projected CRS.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output slope GeoTIFF, degrees.")],
    grid: Annotated[Optional[Path], typer.Option("--grid", help="Raster whose grid the slope is resampled onto (bilinear).")] = None,
    dem_nodata: Annotated[Optional[str], typer.Option("--dem-nodata", metavar="VALUE|none", help="DEM height that means no data (e.g. 0 for SRTM voids filled with 0), in addition to the file's nodata tag; none: all values are real heights (no check). Default: a DEM without nodata tag is checked for suspicious values and warned about.")] = None,
) -> None:
    """Slope in degrees (Horn's method), correct in geographic and projected CRS."""
    from plotsm.sources.dem import as_dem_nodata, slope_deg

    nodata = as_dem_nodata(dem_nodata)
    from plotsm.atomic import writable_dir

    writable_dir(out_path.parent, "--out")
    path = slope_deg(dem, out_path, target_grid=grid, dem_nodata=nodata)
    out.print(f"wrote {path}")


@s1_app.command("calibrate")
def s1_calibrate(
    product: Annotated[Path, typer.Argument(help="GRD product: .SAFE folder or .zip (IW, with VV).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (created if missing) for <stem>_sigma0.tif and <stem>_theta.tif.")],
    dem: Annotated[Optional[Path], typer.Option("--dem", help="DEM GeoTIFF for terrain geocoding (e.g. SRTM). Without it: GCP geocoding, no terrain correction.")] = None,
    grid: Annotated[Optional[Path], typer.Option("--grid", help="Raster whose grid to use (e.g. an S2 band or NDVI).")] = None,
    crs: Annotated[Optional[str], typer.Option("--crs", help="Output CRS, e.g. EPSG:32631 (default: UTM zone of the area).")] = None,
    res: Annotated[float, typer.Option("--res", help="Output pixel size, metres (with --crs or the default UTM grid).")] = 10.0,
    parcels: Annotated[Optional[Path], typer.Option("--parcels", help="Parcels whose extent (+ --margin) and UTM zone set the grid.")] = None,
    margin_m: Annotated[float, typer.Option("--margin", help="Margin around --parcels, metres.")] = 200.0,
    geoid_offset: Annotated[Optional[float], typer.Option("--geoid-offset", help="Geoid undulation (m) added to DEM heights (SRTM is EGM96); default: from PROJ if it has the grid, else 0 with a warning.")] = None,
    dem_nodata: Annotated[Optional[str], typer.Option("--dem-nodata", metavar="VALUE|none", help="DEM height that means no data (e.g. 0 for SRTM voids filled with 0): those map pixels get no σ⁰. none: all values are real heights (no check). Default: a DEM without nodata tag is checked and warned about.")] = None,
    no_denoise: Annotated[bool, typer.Option("--no-denoise", help="Skip thermal-noise removal.")] = False,
    overviews: Annotated[bool, typer.Option("--overviews", help="Add overviews to both outputs, for viewing (plotsm reads them in full; building overviews costs more than compressing).")] = False,
    exact_geocoding: Annotated[bool, typer.Option("--exact-geocoding", help="Solve the radar position of every map pixel (sarsen's zero-Doppler solve) instead of looking it up in a lattice of such solves (within 0.05 px, checked on every run); the reference, about 50× slower.")] = False,
) -> None:
    """Calibrate (σ⁰ LUT), remove thermal noise and geocode a GRD product; outputs feed `plotsm run`."""
    from plotsm.atomic import check_destination
    from plotsm.errors import UsageError
    from plotsm.sources.dem import as_dem_nodata
    from plotsm.sources.s1.grd import calibrate_grd

    if grid is not None and (crs is not None or parcels is not None):
        raise UsageError("--grid sets the whole output grid; do not combine it with --crs or --parcels.")
    if dem_nodata is not None and dem is None:
        raise UsageError("--dem-nodata applies to the heights of --dem; pass --dem too, or drop --dem-nodata.")
    nodata = as_dem_nodata(dem_nodata)
    check_destination(out_dir)
    bounds = None
    if parcels is not None:
        from plotsm.parcels import read_parcels
        from plotsm.sources.s1.area import parcels_area

        area = parcels_area(read_parcels(parcels).gdf, margin_m)
        bounds = area.bounds_lonlat
        if crs is None:
            crs = area.crs

    def announce(target: Any) -> None:
        px = target.width * target.height
        bound = ("set by --grid" if grid is not None else "the parcels' extent + --margin" if parcels is not None
                 else f"the product{' ∩ the DEM' if dem is not None else ''} (pass --parcels or --grid to compute "
                      "only the area you need)")
        info(f"output grid {target.width:,} × {target.height:,} px ({px / 1e6:.1f} Mpx), {bound}")

    with progress() as bar:
        task = bar.add_task("s1 calibrate", total=None)
        result = calibrate_grd(product, out_dir, dem=dem, grid=grid, crs=crs, res=res, bounds_lonlat=bounds,  # type: ignore[arg-type]
                               geoid_offset_m=geoid_offset, denoise=not no_denoise, dem_nodata=nodata,
                               announce=announce, exact=exact_geocoding, overviews=overviews,
                               progress=lambda done, total: bar.update(task, completed=done, total=total,
                                                                       description="s1 calibrate blocks"))
    out.print(f"{result.geocoding} geocoding, {result.grid.width}×{result.grid.height} px, {result.n_valid} valid, "
              f"{result.n_clipped} clipped to 0 by noise removal")
    out.print(f"wrote {result.sigma0}")
    out.print(f"wrote {result.theta}")
