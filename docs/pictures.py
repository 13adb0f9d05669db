"""The README's pictures of the report and the quick-look map, from `make demo`'s output.

    make demo && .venv/bin/python docs/pictures.py [--out demo-output]

Opens ``<out>/report.html`` in a headless Chromium (Debian's ``chromium``, through the DevTools driver of the
tests), selects a parcel, and saves the page as ``docs/report-demo.png``; copies ``<out>/map.png`` (the demo's
quick-look) as ``docs/map-demo.png``. Both are reduced to 256 colours (Pillow) to keep the repository small.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from browser import Browser  # noqa: E402


def small_png(source: Path, target: Path, scale: float = 1.0) -> Path:
    from PIL import Image

    image = Image.open(source).convert("RGB")
    if scale != 1.0:
        image = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.LANCZOS)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    args = parser.parse_args()
    report = (args.out / "report.html").resolve()
    browser = Browser(width=1400, height=1150)
    try:
        browser.open(report.as_uri(), "window.plotsmReport && window.plotsmReport.ready")
        browser.evaluate("window.plotsmReport.setDate(1)")
        parcel = browser.evaluate("document.querySelector('#map') && window.plotsmReport.nParcels > 0 && "
                                  "(() => { const r = window.plotsmReport; return 'P00042'; })()")
        point = browser.evaluate(f"window.plotsmReport.parcelPoint({parcel!r})")
        browser.click(point["x"], point["y"])
        browser.mouse("mouseMoved", point["x"], point["y"])
        if browser.errors:
            raise SystemExit(f"the page logged errors: {browser.errors}")
        shot = browser.screenshot(HERE / "report-demo.full.png")
    finally:
        browser.close()
    small_png(shot, HERE / "report-demo.png", scale=0.8)
    shot.unlink()
    small_png(args.out / "map.png", HERE / "map-demo.png", scale=0.7)
    for name in ("report-demo.png", "map-demo.png"):
        print(f"wrote {HERE / name} ({(HERE / name).stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
