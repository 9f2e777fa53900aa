"""Run every benchmark and print its comparison table.

    python benchmarks/run.py            # full size (several minutes)
    python benchmarks/run.py --quick    # small sizes, to check they run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_import  # noqa: E402
import bench_libreoffice  # noqa: E402
import bench_predictive  # noqa: E402
import bench_reader  # noqa: E402
import bench_refresh  # noqa: E402
import bench_report  # noqa: E402
import bench_report_polars  # noqa: E402
import bench_udfs  # noqa: E402

QUICK = {
    bench_udfs: ["--rows", "100000"],
    bench_refresh: ["--orders", "5000", "--rows", "200", "--pycel-orders", "1000"],
    bench_report: ["--lines", "50000"],
    bench_report_polars: ["--lines", "50000", "--rounds", "1"],
    bench_reader: ["--lines", "20000", "--rounds", "1"],
    bench_import: ["--lines", "5000"],
    bench_libreoffice: ["--orders", "5000", "--rows", "200"],
    bench_predictive: ["--customers", "5000", "--repeat", "1"],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    quick = p.parse_args().quick
    for mod in (bench_udfs, bench_report, bench_report_polars, bench_reader, bench_import, bench_refresh,
                bench_libreoffice, bench_predictive):
        print(f"\n## {mod.__name__}\n", flush=True)
        mod.main(QUICK[mod] if quick else [])


if __name__ == "__main__":
    main()
