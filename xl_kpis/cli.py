"""The ``xl-kpis`` command line: a thin layer over :mod:`xl_kpis.book` and friends.

Exit codes scripts can rely on:

* 0 — done;
* 1 — a bad input file (not a workbook, not an xl-kpis workbook, unreadable export),
  or the book cannot be written (missing or read-only folder, full disk);
* 2 — wrong usage (click's own code);
* 3 — the workbook is open in Excel or LibreOffice (its lock file exists), or
  another xl-kpis kept writing it for longer than ``$XL_KPIS_LOCK_WAIT`` seconds;
* 4 — LibreOffice is missing or refused the extension (``xl-kpis libreoffice install``);
* 5 — done, but some formula cells kept their cached values, which may be stale: formulas
  of the seller's own, or template formulas the seller changed (each is listed).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# A command is one short process whose BLAS calls are tiny (the CLV model's 4 x 4
# matrices): OpenBLAS's thread pool, started when numpy loads, would spin on the other
# cores for about 0.1 s of CPU.  Set before anything imports numpy (the package's
# ``__init__`` does not); a caller's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402

EXIT_BAD_FILE, EXIT_LOCKED, EXIT_LIBREOFFICE, EXIT_KEPT = 1, 3, 4, 5


class _Progress:
    """Progress on a terminal (stderr), quiet when piped."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            click.echo(f"\r\x1b[2K… {message}", err=True, nl=message == "done")


def _fail(message: str, code: int) -> None:
    click.echo(f"xl-kpis: {message}", err=True)
    raise SystemExit(code)


def _must_exist(*paths: Path | None) -> None:
    """A missing input file (a book or an export) is a bad input file: exit 1, as for a
    book or an export that cannot be read."""
    for p in paths:
        if p is not None and not p.exists():
            _fail(f"{p}: no such file", EXIT_BAD_FILE)


@click.group()
@click.version_option(package_name="xl-kpis")
def main() -> None:
    """TikTok shop KPIs in an Excel workbook."""


@main.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--demo", is_flag=True, help="Fill the tables with a synthetic demo shop.")
@click.option("--seed", type=int, default=None, help="Seed of the demo data.")
@click.option("--from", "source", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Fill the tables and settings with those of this book "
              "(a fresh layout for an existing book's data; the source is not changed).")
@click.option("--force", is_flag=True, help="Replace OUT if it exists (never done without it).")
def build(out: Path, demo: bool, seed: int | None, source: Path | None, force: bool) -> None:
    """Write the template workbook OUT (.xlsx, or .xlsm with the xlwings VBA)."""
    from xl_kpis.book import files
    from xl_kpis.book.build import build_workbook
    from xl_kpis.xlsx.books import BookFormatError
    from xl_kpis.package import PackageError

    if out.suffix.lower() not in (".xlsx", ".xlsm"):
        raise click.BadParameter("OUT must end in .xlsx or .xlsm", param_hint="OUT")
    if seed is not None and not demo:
        raise click.BadParameter("--seed needs --demo", param_hint="--seed")
    if source is not None and (demo or (out.exists() and out.samefile(source))):
        raise click.BadParameter("--from goes without --demo, into another file",
                                 param_hint="--from")
    _must_exist(source)
    r = ev = None
    try:
        files.make_folder(out)
        with files.writing(out, reading=[source] if source is not None else []):
            if out.exists() and not force:     # looked at under the lock
                raise click.UsageError(f"{out} exists; pass --force to replace it "
                                       "(or choose another name)")
            if source is not None:
                from xl_kpis.book.rebuild import build_from

                r = build_from(source, out)
            else:
                ev = build_workbook(out, demo=demo, seed=seed)
    except files.BookLocked as e:
        _fail(str(e), EXIT_LOCKED)
    except (BookFormatError, PackageError, files.BookWriteError) as e:
        _fail(str(e), EXIT_BAD_FILE)
    if r is not None:
        rows = ", ".join(f"{n} {name}" for name, n in r.rows.items())
        click.echo(f"Wrote {out} (the data of {source.name}: {rows}; its settings and"
                   " Benchmarks limits).")
        for table, headers in r.extra_columns.items():
            click.echo(f"  your columns in {table}: {', '.join(headers)}")
        if r.copied.sheets:
            click.echo(f"  your sheets, copied as they are: {', '.join(r.copied.sheets)}")
        for what in r.copied.left_out:
            click.echo(f"  not copied: {what}")
        for where in r.not_carried:
            click.echo(f"  not carried (a cell of your own on a template sheet): {where}")
        return
    rows = ", ".join(f"{n} {name}" for name, n in ev.rows.items())
    click.echo(f"Wrote {out} ({'demo data: ' + rows if demo else 'empty template'}).")


@main.command()
@click.argument("book", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the refreshed book here instead of in place.")
@click.option("--progress/--no-progress", default=None,
              help="Show progress (default: when stderr is a terminal).")
def refresh(book: Path, out: Path | None, progress: bool | None) -> None:
    """Recompute the cached value of every template formula in BOOK, without Excel.

    Only cached values of formula cells change; every other part of the file
    stays byte-identical.  A formula the template does not contain keeps its
    value and is listed.
    """
    from xl_kpis.book import files
    from xl_kpis.xlsx.books import BookFormatError
    from xl_kpis.book.refresh import refresh as run
    from xl_kpis.package import PackageError

    try:
        r = run(book, out, progress=_Progress(progress))
    except files.BookLocked as e:
        _fail(str(e), EXIT_LOCKED)
    except (BookFormatError, PackageError, files.BookWriteError) as e:
        _fail(str(e), EXIT_BAD_FILE)
    rows = ", ".join(f"{n} {name}" for name, n in r.rows.items())
    click.echo(f"Refreshed {r.path}: {r.formulas} formulas, {r.changed} values changed "
               f"({rows}).")
    for k in r.kept:
        click.echo(f"  kept: {k}")
    if r.kept_more:
        click.echo(f"  … and {r.kept_more:,} more formula cells kept")
    if r.kept or r.kept_more:
        raise SystemExit(EXIT_KEPT)


@main.command()
@click.argument("book", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--orders", "orders_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A TikTok Shop order export (instead of a BOOK).")
@click.option("--ads", "ads_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A TikTok Ads Manager report (with --orders).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (rates as fractions).")
@click.option("--clv", "with_clv", is_flag=True,
              help="With --orders: fit the predicted CLV model too (a BOOK report always does).")
@click.option("--progress/--no-progress", default=None,
              help="Show progress (default: when stderr is a terminal).")
def report(book: Path | None, orders_file: Path | None, ads_file: Path | None,
           as_json: bool, with_clv: bool, progress: bool | None) -> None:
    """Print the shop's KPIs from BOOK, or straight from export files (--orders/--ads).

    The KPIs are the rows of the KPIs sheet, computed as the sheet computes them
    (JSON: keyed by the row's key, rates as fractions, null when blank).  The
    predicted CLV (BG/NBD + Gamma-Gamma, 12 months) and its fitted parameters come with
    a BOOK report, and with an export's when --clv is given (it reads two more columns and
    fits the models: about twice the time of the other KPIs on a large export).
    """
    from xl_kpis import report as rep
    from xl_kpis.xlsx.books import BookFormatError
    from xl_kpis.package import PackageError

    if (book is None) == (orders_file is None and ads_file is None):
        raise click.UsageError("give either BOOK or --orders/--ads export files")
    _must_exist(book, orders_file, ads_file)
    say = _Progress(progress)
    try:
        if book is not None:
            kpis = rep.book_kpis(book, progress=say)
            clv = kpis.pop("clv_model")
        else:
            from xl_kpis.imports import ExportFormatError, parse_ads, read_order_columns
            from xl_kpis.imports.orders import KPI_KEYS

            try:
                keys = KPI_KEYS + rep.CLV_ORDER_KEYS if with_clv else KPI_KEYS
                say("reading the exports")
                orders = read_order_columns(orders_file, keys, labels=False) if orders_file else None
                ads = None
                if ads_file:
                    parsed = parse_ads(ads_file)
                    rows = parsed.rows
                    ads = {k: [r.get(k) for r in rows] for k in {k for r in rows for k in r}}
            except ExportFormatError as e:
                _fail(str(e), EXIT_BAD_FILE)
            kpis, clv = rep.report_kpis(orders, ads, clv=None if with_clv else rep.clv_not_asked(),
                                        progress=say)
            not_counted = [(orders_file, orders.skipped if orders is not None else []),
                           (ads_file, parsed.skipped if ads_file else [])]
    except (BookFormatError, PackageError) as e:
        _fail(str(e), EXIT_BAD_FILE)
    say("done")
    if book is None:
        for src, skipped in not_counted:
            _note_not_counted(src, skipped)
    if as_json:
        click.echo(json.dumps({**kpis, "clv_model": clv}, indent=2))
    else:
        click.echo(rep.format_table(kpis) + "\n\n" + rep.format_clv_model(clv))


#: Skip reasons shown per export in a report's note (the rest are counted together).
_REASONS_SHOWN = 8


def _note_not_counted(src: Path | None, skipped: list[tuple[int | None, str]]) -> None:
    """Tell (stderr) which lines of an export a report did not count, and why: a KPI
    computed without them must not look like one computed from the whole file.  Rows that
    hold no line of data (:data:`~xl_kpis.imports.clean.NOT_DATA`: the description row of
    an order export, a total row) are not listed."""
    from xl_kpis.imports.clean import NOT_DATA, skip_lines

    lines = [(line, reason) for line, reason in skipped if reason not in NOT_DATA]
    if src is None or not lines:
        return
    n = len(lines)
    click.echo(f"xl-kpis: {n:,} line{'s' if n > 1 else ''} of {src.name} not counted:", err=True)
    for text in skip_lines(lines, _REASONS_SHOWN, unit="lines"):
        click.echo(text, err=True)


@main.command("import")
@click.argument("kind", type=click.Choice(["ads", "orders", "studio"]))
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--into", "book", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The xl-kpis workbook to import into (changed in place).")
@click.option("--year", type=click.IntRange(2000, 2100), default=None,
              help="Studio only: the year of the export's last row (its dates have none).")
@click.option("--period", "period_text", metavar="START..END", default=None,
              help="Ads only: the period an undated report covers (2026-07-01..2026-07-31),"
              " when neither its file name nor a title row says.")
@click.option("--json", "as_json", is_flag=True,
              help="Print what the import did as JSON (counts are integers).")
@click.option("--progress/--no-progress", default=None,
              help="Show progress (default: when stderr is a terminal).")
def import_cmd(kind: str, src: Path, book: Path, year: int | None, period_text: str | None,
               as_json: bool, progress: bool | None) -> None:
    """Import a TikTok export SRC into the tables of a workbook, then refresh it.

    KIND is ads (Ads Manager report → Campaigns), orders (Seller Center
    order export → Orders) or studio (TikTok Studio export, zip or folder →
    Videos and Brand).  A row already in the book (same order line, ad or
    campaign and day, video, month) is updated with what changed (status,
    amounts, refunds, delivered time, metrics); the columns the export does
    not have (content type, rating, notes) are never touched.  Importing the
    same export twice changes nothing.  The output lists rows added,
    updated, unchanged and skipped, and every cell read as blank and every
    inference (years, periods, delivered orders, the period length).
    """
    from xl_kpis.book import files
    from xl_kpis.book.importer import import_export, parse_period
    from xl_kpis.xlsx.books import BookFormatError
    from xl_kpis.imports import ExportFormatError
    from xl_kpis.package import PackageError

    if year is not None and kind != "studio":
        raise click.BadParameter("only Studio exports lack the year", param_hint="--year")
    period = None
    if period_text is not None:
        if kind != "ads":
            raise click.BadParameter("only Ads Manager reports can lack their dates",
                                     param_hint="--period")
        try:
            period = parse_period(period_text)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--period") from None
    _must_exist(src, book)
    try:
        report = import_export(kind, src, book, year=year, progress=_Progress(progress),
                               period=period)
    except files.BookLocked as e:
        _fail(str(e), EXIT_LOCKED)
    except (ExportFormatError, BookFormatError, PackageError, files.BookWriteError) as e:
        _fail(str(e), EXIT_BAD_FILE)
    except OSError as e:
        _fail(f"{e.filename or src}: {e.strerror or e}", EXIT_BAD_FILE)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        for line in report.summary():
            click.echo(line)
    if report.kept:
        raise SystemExit(EXIT_KEPT)


@main.group()
def libreoffice() -> None:
    """The same functions in LibreOffice Calc (an extension, .oxt)."""


@libreoffice.command("build")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace OUT if it exists (never done without it).")
def libreoffice_build(out: Path, force: bool) -> None:
    """Write the extension OUT (.oxt) for Tools > Extension Manager > Add.

    It runs xl_kpis from this Python environment (the project's .venv), which
    must be the Python version LibreOffice embeds.
    """
    from xl_kpis.libreoffice import build_oxt

    if out.suffix.lower() != ".oxt":
        raise click.BadParameter("OUT must end in .oxt", param_hint="OUT")
    if out.exists() and not force:
        raise click.UsageError(f"{out} exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    build_oxt(out)
    click.echo(f"Wrote {out}.")


@libreoffice.command("install")
@click.option("--profile", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A LibreOffice user installation folder, as passed with "
              "-env:UserInstallation=file://DIR (default: your own).")
def libreoffice_install(profile: Path | None) -> None:
    """Build the extension and add it to a LibreOffice user profile (close LibreOffice first)."""
    from xl_kpis.libreoffice import LibreOfficeError, install

    try:
        where = install(profile)
    except LibreOfficeError as e:
        _fail(str(e), EXIT_LIBREOFFICE)
    click.echo(f"Installed the xl-kpis extension into {'your LibreOffice profile' if profile is None else where}.")


if __name__ == "__main__":
    main()
