"""The ``xl-kpis`` command line: a thin layer over :mod:`xl_kpis.book` and friends."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
@click.version_option(package_name="xl-kpis")
def main() -> None:
    """TikTok shop KPIs in an Excel workbook."""


@main.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--demo", is_flag=True, help="Fill the tables with a synthetic demo shop.")
@click.option("--seed", type=int, default=None, help="Seed of the demo data.")
def build(out: Path, demo: bool, seed: int | None) -> None:
    """Write the template workbook OUT (.xlsx, or .xlsm with the xlwings VBA)."""
    from xl_kpis.book.build import build_workbook

    if out.suffix.lower() not in (".xlsx", ".xlsm"):
        raise click.BadParameter("OUT must end in .xlsx or .xlsm", param_hint="OUT")
    if seed is not None and not demo:
        raise click.BadParameter("--seed needs --demo", param_hint="--seed")
    ev = build_workbook(out, demo=demo, seed=seed)
    rows = ", ".join(f"{n} {name}" for name, n in ev.rows.items())
    click.echo(f"Wrote {out} ({'demo data: ' + rows if demo else 'empty template'}).")
