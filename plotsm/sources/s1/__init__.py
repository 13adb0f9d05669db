"""Sentinel-1 GRD products → analysis-ready σ⁰ VV (linear) and incidence-angle rasters (science.md §8).

- :mod:`.annotation`: what the main annotation XML says (image timing and size, geolocation grid as GCPs);
- :mod:`.lut`: the σ⁰ calibration LUT and thermal-noise LUT of the annotation XML, and their values at sample
  points;
- :mod:`.calibrate`: σ⁰ = max(DN² − N, 0) / A², on image windows and at fractional positions inside one;
- :mod:`.product`: a GRD product (``.SAFE`` folder or ``.zip``): its files and acquisition metadata;
- :mod:`.geocode`: target grids, terrain geocoding with a DEM (sarsen) and GCP geocoding;
- :mod:`.grd`: the composition, product → float32 COG-like GeoTIFFs on a target grid.

Imports flow one way: lut → calibrate; annotation → product → geocode; calibrate, lut, product, geocode → grd.
"""

from plotsm.sources.s1.calibrate import calibrate_positions, calibrate_window
from plotsm.sources.s1.lut import (LUT, AzimuthNoiseBlock, NoiseLUT, VectorGrid, noise_lut, read_calibration,
                                   read_noise, sigma_nought_lut)

__all__ = ["LUT", "AzimuthNoiseBlock", "NoiseLUT", "VectorGrid", "calibrate_positions", "calibrate_window",
           "noise_lut", "read_calibration", "read_noise", "sigma_nought_lut"]
