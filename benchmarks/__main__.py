"""`python -m benchmarks [NAME ...]`: run the benchmark modules and print one table of figures."""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent


def _use_bench_database() -> None:
    url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/notary"))
    name = (url.path.lstrip("/") or "notary") + "_bench"
    os.environ["DATABASE_URL"] = urlunsplit(url._replace(path="/" + name))
    import psycopg

    with psycopg.connect(urlunsplit(url._replace(path="/postgres")), autocommit=True) as conn:
        if conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone() is None:
            conn.execute(f'create database "{name}"')


def main(argv: list[str]) -> int:
    _use_bench_database()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}")
    print(f"{'benchmark':<58} {'value':>12}  {'unit':<10} {'target':<14} note")
    failures = 0
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        started = time.perf_counter()
        try:
            figures = module.run()
        except Exception as exc:  # a broken benchmark is reported, the others still run
            failures += 1
            print(f"{name:<58} {'failed':>12}  {type(exc).__name__}: {exc}")
            continue
        for fig in figures:
            print(f"{fig.name:<58} {fig.value:>12,.2f}  {fig.unit:<10} {fig.target:<14} {fig.note}")
        print(f"{'':<58} ({name} took {time.perf_counter() - started:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
