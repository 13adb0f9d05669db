"""The area of interest of a search: a bbox in degrees, a GeoJSON file or a parcels file, as one lon/lat geometry.

:func:`read_aoi` is the boundary where the three kinds of ``aoi`` become one :class:`Aoi` (a shapely geometry in
EPSG:4326 and its bbox):

- ``"minx,miny,maxx,maxy"`` (three commas, not the name of an existing file): a bbox in longitude/latitude
  degrees. Four finite numbers, −180..180 and −90..90, min < max. Values beyond those ranges are taken for
  projected coordinates (metres) and refused with a message saying so; a bbox across the antimeridian must be
  split into two searches.
- ``*.geojson`` / ``*.json``: a GeoJSON geometry, Feature or FeatureCollection (the union of its geometries),
  longitude/latitude as RFC 7946 says. A file with a legacy ``crs`` member is read as a parcels file instead, so
  that its CRS is honoured (GDAL reads the member).
- any other file: parcels (:func:`plotsm.parcels.read_parcels`: shapefile, GeoPackage, GeoJSON, GeoParquet); the
  AOI is their extent, reprojected to EPSG:4326 (the box around all parcels, not their outlines).
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
import shapely.errors
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from plotsm.errors import InputError, ParcelsWarning, UsageError, option

#: An AOI with more vertices than this is sent to the search services as its convex hull (still a superset of the
#: area: the services answer "intersects", and the results are checked against the true AOI afterwards) [D: keeps
#: a request body of a GeoJSON of many parcels small; 1,000 vertices are about 40 kB of JSON].
MAX_SEARCH_VERTICES = 1000

_GEOJSON_SUFFIXES = (".geojson", ".json")
_BBOX_SHAPE = re.compile(r"^[^,]*,[^,]*,[^,]*,[^,]*$")
_BBOX_FIX = "Give west,south,east,north in degrees (EPSG:4326), e.g. 1.40,43.50,1.52,43.61"


@dataclass(frozen=True)
class Aoi:
    """An area of interest in EPSG:4326: ``geometry`` (shapely, lon/lat), where it came from (``kind``: bbox,
    geojson or parcels; ``source``: the bbox text or the file) and a ``note`` on how it was read, if any."""

    geometry: BaseGeometry
    kind: str
    source: str
    note: str | None = None

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        x0, y0, x1, y1 = self.geometry.bounds
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def search_geometry(self) -> BaseGeometry:
        """The geometry sent to the services: the AOI, or its convex hull past :data:`MAX_SEARCH_VERTICES`."""
        if shapely.get_num_coordinates(self.geometry) <= MAX_SEARCH_VERTICES:
            return self.geometry
        hull = self.geometry.convex_hull
        return hull if shapely.get_num_coordinates(hull) <= MAX_SEARCH_VERTICES else shapely.box(*self.bbox)

    def to_geojson(self) -> dict[str, Any]:
        """The search geometry as a GeoJSON geometry dict."""
        return dict(shapely.geometry.mapping(self.search_geometry))


def read_aoi(aoi: str | os.PathLike[str], *, parcels_crs: str | None = None, layer: str | None = None) -> Aoi:
    """The area of interest of ``aoi``: a bbox ``"minx,miny,maxx,maxy"`` in degrees, a GeoJSON file, or a parcels
    file (its extent); see the module docstring. ``parcels_crs`` and ``layer`` are passed to
    :func:`plotsm.parcels.read_parcels` for a parcels file.

    Raises :class:`UsageError` for a malformed or projected-looking bbox or a value that is neither a file nor a
    bbox, :class:`InputError` for a file that cannot be read or has no usable geometry.
    """
    text = os.fspath(aoi)
    path = Path(text)
    if not path.exists():
        if _BBOX_SHAPE.match(text.strip()):
            return Aoi(parse_bbox(text), "bbox", text.strip())
        raise UsageError(f"{option('aoi', text)}: no such file, and not a bbox minx,miny,maxx,maxy. Pass a parcels "
                         f"file, a GeoJSON file or a bbox in degrees ({_BBOX_FIX}).")
    if path.is_dir():
        raise UsageError(f"{option('aoi', text)}: is a folder. Pass a parcels file, a GeoJSON file or a bbox.")
    if path.suffix.lower() in _GEOJSON_SUFFIXES:
        doc = _read_json(path)
        if not (isinstance(doc, dict) and "crs" in doc):
            return Aoi(_geojson_geometry(doc, path), "geojson", str(path))
    return _parcels_extent(path, parcels_crs, layer)


def parse_bbox(text: str) -> BaseGeometry:
    """The box of ``"minx,miny,maxx,maxy"`` in lon/lat degrees, checked (see the module docstring)."""
    shown = option("aoi", text.strip())
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise UsageError(f"{shown}: expected 4 numbers minx,miny,maxx,maxy, got {len(parts)}. {_BBOX_FIX}.")
    values: list[float] = []
    for name, part in zip(("minx", "miny", "maxx", "maxy"), parts):
        try:
            value = float(part)
        except ValueError:
            raise UsageError(f"{shown}: {name} {part!r} is not a number. {_BBOX_FIX}.") from None
        if not math.isfinite(value):
            raise UsageError(f"{shown}: {name} {part!r} is not a finite number. {_BBOX_FIX}.")
        values.append(value)
    x0, y0, x1, y1 = values
    if any(abs(x) > 180 for x in (x0, x1)) or any(abs(y) > 90 for y in (y0, y1)):
        raise UsageError(f"{shown}: these look like projected coordinates (metres?), not longitude/latitude: "
                         f"longitudes must lie in -180..180 and latitudes in -90..90. {_BBOX_FIX}, or pass the "
                         "parcels file itself (its CRS is read from the file).")
    if not x0 < x1:
        raise UsageError(f"{shown}: minx {x0:g} is not less than maxx {x1:g}. The order is minx,miny,maxx,maxy "
                         "(west,south,east,north); an area across the antimeridian needs two searches.")
    if not y0 < y1:
        raise UsageError(f"{shown}: miny {y0:g} is not less than maxy {y1:g}. The order is minx,miny,maxx,maxy "
                         "(west,south,east,north).")
    return shapely.box(x0, y0, x1, y1)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}). Pass a GeoJSON geometry, "
                         "Feature or FeatureCollection, a parcels file or a bbox.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc}).") from None


def _geojson_geometry(doc: Any, path: Path) -> BaseGeometry:
    """The (valid, non-empty) lon/lat geometry of a GeoJSON geometry, Feature or FeatureCollection."""
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "FeatureCollection" and isinstance(doc.get("features"), list):
        geometries = [f.get("geometry") for f in doc["features"] if isinstance(f, dict)]
    elif kind == "Feature":
        geometries = [doc.get("geometry")]
    elif (isinstance(kind, str) and "coordinates" in doc) or kind == "GeometryCollection":
        geometries = [doc]
    else:
        raise InputError(f"{path}: not a GeoJSON geometry, Feature or FeatureCollection (type {kind!r}). "
                         "Pass one of those, a parcels file or a bbox.")
    shapes = []
    for i, geometry in enumerate(geometries):
        if geometry is None:
            continue
        try:
            shapes.append(shapely.make_valid(shapely.geometry.shape(geometry)))
        except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
            raise InputError(f"{path}: geometry {i} is not valid GeoJSON ({exc}).") from None
    merged = shapely.make_valid(shapely.union_all(shapes)) if shapes else shapely.GeometryCollection()
    if merged.is_empty:
        raise InputError(f"{path}: no geometry (null or empty). Pass a GeoJSON with the area, a parcels file "
                         "or a bbox.")
    x0, y0, x1, y1 = merged.bounds
    if min(x0, x1) < -180 or max(x0, x1) > 180 or min(y0, y1) < -90 or max(y0, y1) > 90:
        raise InputError(f"{path}: coordinates {x0:g},{y0:g},{x1:g},{y1:g} are not longitude/latitude (they look "
                         "projected). GeoJSON is EPSG:4326 (RFC 7946): reproject it, or pass the area as a parcels "
                         "file with its CRS (e.g. a GeoPackage).")
    return merged


def _parcels_extent(path: Path, parcels_crs: str | None, layer: str | None) -> Aoi:
    from plotsm.parcels import read_parcels

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParcelsWarning)  # which field is the parcel id does not matter to a search
        parcels = read_parcels(path, parcels_crs=parcels_crs, layer=layer)
    x0, y0, x1, y1 = (float(v) for v in parcels.gdf.to_crs("EPSG:4326").total_bounds)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise InputError(f"{path}: the parcels' extent cannot be reprojected to longitude/latitude "
                         f"({parcels.crs.to_string()}). Check the file's CRS.")
    box = shapely.box(x0, y0, x1, y1) if x0 < x1 and y0 < y1 else shapely.Point(x0, y0).buffer(1e-6).envelope
    return Aoi(box, "parcels", str(path), note=f"extent of {len(parcels)} parcels ({parcels.crs.to_string()})")


__all__ = ["MAX_SEARCH_VERTICES", "Aoi", "parse_bbox", "read_aoi"]
