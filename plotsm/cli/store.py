"""``plotsm sql``, ``plotsm export`` and ``plotsm delete``: reading, exporting and deleting what a run stored."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from plotsm.cli.console import out


def _format_table(table: Any, fmt: str) -> None:
    """Print a query result on stdout: ``csv``, ``json`` (a list of objects) or ``table`` (aligned columns).

    Each is written as pre-formatted text: rich's JSON highlighting and a rich Table took milliseconds a row
    (13-16 s for 15,549 rows, CSV 1.8 s); ``bench/sql_format.py`` compares the three.
    """
    if fmt == "json":
        # the text rich's print_json wrote (indent 2, non-ASCII kept, dates and other objects as str), unhighlighted
        sys.stdout.write(json.dumps(table.to_pylist(), default=str, indent=2, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        import io

        import pyarrow.csv as pacsv

        buf = io.BytesIO()
        pacsv.write_csv(table, buf)
        sys.stdout.write(buf.getvalue().decode())
    else:
        # Plain aligned columns as wide as the content (cells over TABLE_CELL_MAX characters are abbreviated;
        # --format csv/json give them whole), so results are readable in a terminal and in a log alike. The
        # layout is the rich Table (box.SIMPLE_HEAD) this replaces, header bold on a terminal; widths are counted
        # in terminal cells so wide characters stay aligned, and control characters (newline, tab) are shown
        # escaped so that a row stays one line.
        from rich.cells import cell_len
        from rich.text import Text

        escapes = {c: repr(chr(c))[1:-1] for c in (*range(32), 127)}

        def cell(v: Any) -> str:
            text = "" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
            if not text.isprintable():
                text = text.translate(escapes)
            return text if len(text) <= TABLE_CELL_MAX else text[: TABLE_CELL_MAX - 1] + "…"

        def width(text: str) -> int:
            return len(text) if text.isascii() else cell_len(text)

        def pad(texts: list[str]) -> list[str]:
            w = max(map(width, texts))
            return [t + " " * (w - width(t)) for t in texts]

        columns = [pad([cell(name), *map(cell, column.to_pylist())])
                   for name, column in zip(table.column_names, table.columns)]
        if not columns:
            sys.stdout.write("\n")  # what the rich Table printed for a result without columns
        else:
            header, *rows = ["  " + "   ".join(cells) + "  " for cells in zip(*columns)]
            blank = " " * width(header)
            sys.stdout.write(blank + "\n")
            out.print(Text(header, style="table.header"), soft_wrap=True)
            rule = " " + "─" * (width(header) - 2) + " "
            sys.stdout.write("\n".join([rule, *rows, blank]) + "\n")
        out.print(f"{table.num_rows} row(s)", style="dim")


TABLE_CELL_MAX = 40


def sql_command(
    name: Annotated[Optional[str], typer.Argument(help="Named query (a file of sql/); omit with --query or --list.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of a run.")] = Path("demo-output"),
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="Query parameter key=value (repeatable).")] = None,
    query: Annotated[Optional[str], typer.Option("--query", help="Ad-hoc SQL instead of a named query.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    list_: Annotated[bool, typer.Option("--list", help="List the named queries and their parameters.")] = False,
) -> None:
    """Query the moisture store with a named query (sql/NAME.sql, $parameters) or ad-hoc SQL."""
    from plotsm.errors import UsageError
    from plotsm.store import Store, list_queries

    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"--format {fmt!r}: expected table, csv or json")
    if list_:
        t = Table()
        for col in ("name", "parameters", "description"):
            t.add_column(col)
        for q in list_queries():
            t.add_row(q.name, ", ".join("$" + p for p in q.parameters), q.description)
        out.print(t)
        return
    if (name is None) == (query is None):
        raise UsageError("give a query NAME or --query \"SELECT …\" (not both); `plotsm sql --list` shows the names")
    params: dict[str, str] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {item!r}: expected key=value")
        params[key] = value
    with Store(out_dir, read_only=True) as store:
        table = store.query(name, params) if name is not None else store.sql(query or "", params or None)
    _format_table(table, fmt)


def export(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of a run.")] = Path("demo-output"),
    fmt: Annotated[str, typer.Option("--format", help="geoparquet, gpkg or cog (one Cloud-Optimised GeoTIFF per acquisition).")] = "geoparquet",
    date: Annotated[Optional[str], typer.Option("--date", help="Only acquisitions of this UTC date (YYYY-MM-DD).")] = None,
    to: Annotated[Optional[Path], typer.Option("--to", help="Target file (default: <out>/moisture.parquet or .gpkg); for cog a folder (default: <out>/maps).")] = None,
    layout: Annotated[str, typer.Option("--layout", help="long: a row per parcel and acquisition; wide: a row per parcel, a mv_<acquisition> column per date.")] = "long",
    grid: Annotated[Optional[Path], typer.Option("--grid", help="cog: a raster whose CRS, transform and shape the COGs take (e.g. the run's NDVI).")] = None,
    res: Annotated[Optional[float], typer.Option("--res", help="cog: pixel size in metres over the parcels' extent (default 10; about res/111320 degrees for s2mp).")] = None,
    encoding: Annotated[Optional[str], typer.Option("--encoding", help="cog: float (float32 vol.%, NaN no data) or s2mp (uint8 round(5·mv), 0 no data, EPSG:4326, as Theia).")] = None,
) -> None:
    """Moisture of the whole series (or one date) joined to the parcel geometries, in the parcels' CRS, for a GIS;
    or burnt into one COG per acquisition (--format cog)."""
    from plotsm.errors import UsageError
    from plotsm.export import default_target, export_moisture

    if fmt not in ("geoparquet", "gpkg", "cog"):
        raise UsageError(f"--format {fmt!r}: expected geoparquet, gpkg or cog")
    if layout not in ("long", "wide"):
        raise UsageError(f"--layout {layout!r}: expected long or wide")
    if fmt == "cog":
        _export_cogs(out_dir, to, date=date, grid=grid, res=res, encoding=encoding or "float", layout=layout)
        return
    given = [name for name, value in (("--grid", grid), ("--res", res), ("--encoding", encoding)) if value is not None]
    if given:
        raise UsageError(f"{', '.join(given)}: only for --format cog (rasters). Drop it, or pass --format cog.")
    target = to if to is not None else default_target(out_dir, fmt)  # type: ignore[arg-type]
    from plotsm.atomic import writable_file

    writable_file(target, "--to")
    path = export_moisture(out_dir, target, format=fmt, date=date, layout=layout)  # type: ignore[arg-type]
    out.print(f"wrote {path}")


def _export_cogs(out_dir: Path, to: Optional[Path], *, date: Optional[str], grid: Optional[Path],
                 res: Optional[float], encoding: str, layout: str) -> None:
    """``plotsm export --format cog``: one COG per acquisition, a line per file written."""
    from rich.markup import escape

    from plotsm.errors import UsageError
    from plotsm.report.rasters import check_options, export_cogs

    if layout != "long":
        raise UsageError("--layout: only for geoparquet and gpkg; a COG holds one acquisition. Drop --layout.")
    if to is not None and to.suffix.lower() in (".tif", ".tiff"):
        raise UsageError(f"--to {to}: for --format cog, a folder (one moisture_<acquisition>.tif per acquisition).")
    check_options(encoding, grid, res)  # before the store is opened: a bad option costs nothing

    def show(item: Any) -> None:
        out.print(f"wrote {escape(str(item.path))} ({item.acquisition_id}, {item.n_ok} parcels ok, "
                  f"{item.n_not_ok} no data)", highlight=False, soft_wrap=True)

    export_cogs(out_dir, to, date=date, grid=grid, res=res, encoding=encoding, progress=show)  # type: ignore[arg-type]


def delete(
    acquisitions: Annotated[list[str], typer.Argument(help="Acquisition ids to delete (plotsm sql summary lists them), e.g. 20240406T174912_S1A.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of a run.")] = Path("demo-output"),
) -> None:
    """Delete stored acquisitions: their rows (acquisitions, observations, moisture) in one transaction, then their
    Parquet files. An unknown id deletes nothing."""
    from plotsm.series import delete_acquisitions

    deleted = delete_acquisitions(out_dir, acquisitions, command=" ".join(sys.argv))
    for acq_id, n_rows in deleted.items():
        out.print(f"deleted {acq_id} ({n_rows} parcel rows and its Parquet file)")
