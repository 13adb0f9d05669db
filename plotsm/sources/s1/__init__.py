"""Sentinel-1 GRD products → analysis-ready σ⁰ VV (linear) and incidence-angle rasters (science.md §8).

- :mod:`.radiometry`: σ⁰ calibration LUT and thermal-noise LUT from the annotation XML, calibration at sample
  points and on image windows;
- :mod:`.product`: a GRD product (``.SAFE`` folder or ``.zip``): its files and acquisition metadata;
- :mod:`.geocode`: target grids, terrain geocoding with a DEM (sarsen) and GCP geocoding;
- :mod:`.grd`: the composition, product → float32 COG-like GeoTIFFs on a target grid.
"""

from plotsm.sources.s1.radiometry import (LUT, AzimuthNoiseBlock, NoiseLUT, VectorGrid, calibrate, calibrate_window,
                                          noise_lut, read_calibration, read_noise, sigma_nought_lut)

__all__ = ["LUT", "AzimuthNoiseBlock", "NoiseLUT", "VectorGrid", "calibrate", "calibrate_window", "noise_lut",
           "read_calibration", "read_noise", "sigma_nought_lut"]
