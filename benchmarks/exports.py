"""The order export the reader and report benchmarks read, and their common options."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path
from typing import Iterator


def parser(doc: str) -> argparse.ArgumentParser:
    """The options every export benchmark takes: ``--lines``, ``--rounds``, ``--export``."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--export", type=Path, help="an existing export to read (--lines is ignored)")
    return p


@contextlib.contextmanager
def order_export(export: Path | None, lines: int) -> Iterator[tuple[Path, Path]]:
    """``(export, folder)``: the file named, or the synthetic export of ``lines`` lines
    (:func:`xl_kpis.imports.synth.write_order_export`, seed 1) written into a temporary
    folder, which is removed on exit."""
    with tempfile.TemporaryDirectory() as d:
        if export is None:
            from xl_kpis.imports.synth import write_order_export

            export = Path(d) / "orders.csv"
            write_order_export(export, lines, seed=1)
        yield export, Path(d)
