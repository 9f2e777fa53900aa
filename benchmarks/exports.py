"""The order export the reader and report benchmarks read, their common options, and the
package's bytecode as an installed package has it."""

from __future__ import annotations

import argparse
import compileall
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


def compile_package() -> None:
    """Byte-compile xl-kpis's modules, as ``pip install`` does for an installed package.

    Python compiles a module that has no bytecode from its source each time a process
    imports it when it cannot write the bytecode (``PYTHONDONTWRITEBYTECODE``, set on some
    machines): in an editable checkout that costs every ``xl-kpis`` command about 0.1 s
    of CPU, which the installed package never pays, nor the peers (pip compiled theirs).
    """
    import xl_kpis

    compileall.compile_dir(str(Path(xl_kpis.__file__).parent), quiet=1)
