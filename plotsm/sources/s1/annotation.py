"""What the main annotation XML of a GRD product (``annotation/s1?-iw-grd-vv-*.xml``) says besides the LUTs.

- :func:`read_image_information`: the image timing and size of ``imageAnnotation/imageInformation``
  (first-line time, line interval, range pixel spacing, number of lines and samples), read with the stdlib
  parser because xarray-sentinel only gives those with the measurement open, and the geocoder needs them before;
- :func:`geolocation_gcps`: the ``geolocationGrid`` (as the ``gcp`` group xarray-sentinel builds from it) as
  ground control points (line, pixel, lon, lat, ellipsoidal height) for GCP geocoding.

The σ⁰ calibration and thermal-noise annotation (``annotation/calibration/*.xml``) are read by :mod:`.lut`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np

from plotsm.errors import InputError


def read_image_information(annotation: Path, src: Path) -> dict[str, Any]:
    """``first_line_time``, ``azimuth_time_interval_s``, ``range_pixel_spacing_m``, ``n_lines``, ``n_samples`` of
    the annotation's ``imageAnnotation/imageInformation`` (the keyword arguments of :class:`.GrdProduct` they
    fill); an :class:`InputError` naming the file when it is not XML or lacks one of them."""
    try:
        root = ElementTree.parse(annotation).getroot()
    except ElementTree.ParseError as exc:
        raise InputError(f"{annotation}: not readable XML ({exc}). Re-download the product.") from None
    info = root.find("imageAnnotation/imageInformation")
    fields = ("productFirstLineUtcTime", "azimuthTimeInterval", "rangePixelSpacing", "numberOfLines",
              "numberOfSamples")
    values = {f: info.findtext(f) if info is not None else None for f in fields}
    missing = [f for f, v in values.items() if not v]
    if missing:
        raise InputError(f"{annotation}: imageAnnotation/imageInformation lacks {', '.join(missing)}. "
                         f"Re-download the product.")
    try:
        return {
            "first_line_time": np.datetime64(str(values["productFirstLineUtcTime"]).strip(), "ns"),
            "azimuth_time_interval_s": float(str(values["azimuthTimeInterval"])),
            "range_pixel_spacing_m": float(str(values["rangePixelSpacing"])),
            "n_lines": int(str(values["numberOfLines"])), "n_samples": int(str(values["numberOfSamples"])),
        }
    except ValueError as exc:
        raise InputError(f"{annotation}: invalid imageInformation value ({exc}). Re-download the product.") from None


def geolocation_gcps(gcp: Any) -> list[Any]:
    """GCPs (rasterio ``GroundControlPoint``: row = line, col = pixel, x = longitude, y = latitude, z = ellipsoidal
    height) of every point of the geolocation grid, from the ``gcp`` group of :meth:`.GrdProduct.open_group`."""
    from rasterio.control import GroundControlPoint

    lines, pixels = np.meshgrid(gcp["line"].values, gcp["pixel"].values, indexing="ij")
    return [GroundControlPoint(row=float(r), col=float(c), x=float(x), y=float(y), z=float(z))
            for r, c, x, y, z in zip(lines.ravel(), pixels.ravel(), gcp["longitude"].values.ravel(),
                                     gcp["latitude"].values.ravel(), gcp["height"].values.ravel())]
