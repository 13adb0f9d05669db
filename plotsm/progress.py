"""The progress callbacks of long work, one type each: library code reports, the caller (the CLI's progress bars,
a notebook, a test) decides what to show. Library code never prints.
"""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(what, done, total)``: a stage named ``what`` has done ``done`` of ``total`` steps.
Progress = Callable[[str, int, int], None]

#: ``steps(done, total)``: the one stage of a function has done ``done`` of ``total`` steps (blocks, chunks).
Steps = Callable[[int, int], None]

#: ``epochs(done, total, loss)``: training has run ``done`` of ``total`` epochs; ``loss`` is the last validation loss.
Epochs = Callable[[int, int, float], None]

#: ``network_epochs(name, done, total, loss)``: :data:`Epochs` of the network called ``name``.
NetworkEpochs = Callable[[str, int, int, float], None]
