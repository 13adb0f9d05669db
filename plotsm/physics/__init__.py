"""Physics forward model: pure, vectorised numpy, no I/O.

- :mod:`~plotsm.physics.dielectric`: soil permittivity (Hallikainen et al. 1985).
- :mod:`~plotsm.physics.iem`: bare-soil backscatter (Fung 1992 IEM) with Baghdadi's calibrated correlation length.
- :mod:`~plotsm.physics.wcm`: vegetation (Water Cloud Model).
- :mod:`~plotsm.physics.forward`: the whole chain, mv → σ⁰_VV, and dB helpers.

Every constant is named with its unit and source (``../shared/docs/science.md``).
"""

from plotsm.physics.forward import db, linear, sigma0_vv

__all__ = ["db", "linear", "sigma0_vv"]
