"""Cost per row as N grows, and the share of it spent in cyclic GC (issue 17, item 4).

``insert``, ``load_all`` and ``load_update`` at N = 2,000 and N = 100,000 rows, for
typed_session, SQLAlchemy's ORM (2.x ``sqlalchemy.orm.Session``) and SQLAlchemy Core, in µs
per row, with the time spent in cyclic garbage collection during each timed call and the
number of collections of each generation. A per-row cost that grows with N shows as a
growth ratio µs/row(largest N) / µs/row(smallest N) above 1; the same ratio with the
collector's time taken out says how much of the growth is the collector's.

The implementations are the peer benchmark's, unchanged: ``OrmImpl`` and ``CoreImpl`` of
``../shared/bench/peers.py`` (imported from its file, like ``run.sh`` runs it) and
``TypedSessionImpl`` of ``bench/peers_plugin.py``, on the same ``customer`` table. So
``insert`` = build N objects (Core: N parameter dicts), ``add_all``, ``commit`` on a fresh
session (Core: one ``executemany`` INSERT, ``commit``); ``load_all`` =
``scalars(select(Customer)).all()`` on a fresh session, held (Core: ``execute(select(...))
.all()``), reading back the rows the same implementation just inserted; ``load_update`` =
``load_all`` then a change to every loaded object and ``commit`` (the peer benchmark's
``load_for_change`` and ``update_all``), timed as one call: the peer benchmark times the
change alone, after a collection, so a session that makes its per-object record on the
first write (typed_session, issue 17) shows that cost there, and only the whole flow
compares like with like. As in ``peers.py``:
``gc.collect()`` before each timed call, the collector left on during it, an untimed
warm-up at N=2,000, the libraries interleaved with their order rotated every repetition,
medians of the repetitions, the database checked after every workload. In-memory SQLite
gives each implementation its own database.

The collector is timed through ``gc.callbacks`` (from each ``start`` to its ``stop``), only
while a workload runs.

Run from the repository root::

    .venv/bin/python -m bench.scaling --backend sqlite --reps 5
    .venv/bin/python -m bench.scaling --backend postgresql --reps 3 [--pg-url URL]

Writes ``bench/results/scaling-<backend>.{md,json}`` (``--no-save``: print only).
``--shared`` (default ``$SHARED`` or ``../shared``) is where ``bench/peers.py`` is found.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

import sqlalchemy

from bench.peers_plugin import TypedSessionImpl

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SIZES = (2_000, 100_000)
OPERATIONS = ("insert", "load_all", "load_update")
WARMUP_N = 2_000
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
URLS = {"sqlite": "sqlite://", "postgresql": PG_URL}
CORE = "SQLAlchemy Core"


class Implementation(Protocol):
    """The part of ``peers.py``'s plug-in interface these workloads use."""

    name: str

    def setup(self, url: str) -> None: ...
    def reset(self) -> None: ...
    def insert(self, n: int) -> None: ...
    def load_all(self) -> int: ...
    def load_for_change(self) -> None: ...
    def update_all(self) -> None: ...
    def scalar(self, sql: str) -> object: ...
    def release(self) -> None: ...
    def teardown(self) -> None: ...


def load_peers(shared: Path) -> ModuleType:
    """``peers.py`` imported from its file (it is a script, outside this repository)."""
    path = shared / "bench" / "peers.py"
    spec = importlib.util.spec_from_file_location("peers", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}: set --shared or $SHARED")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # registered before it runs, as an import does
    spec.loader.exec_module(module)
    return module


def implementations(peers: ModuleType) -> list[Implementation]:
    orm = cast("Implementation", peers.OrmImpl())
    core = cast("Implementation", peers.CoreImpl())
    orm.name, core.name = "SQLAlchemy ORM", CORE
    return [TypedSessionImpl(), orm, core]


@dataclass
class GcTimer:
    """A ``gc.callbacks`` entry: seconds spent collecting and collections, per generation."""

    seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    _started: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1


@dataclass
class Sample:
    seconds: float
    gc_seconds: float
    gc_seconds_by_generation: list[float]
    collections: list[int]
    tracked_held: int  # GC-tracked objects the workload left alive (what it holds)


def timed(fn: Callable[..., Any], *args: Any) -> Sample:
    gc.collect()
    tracked_before = len(gc.get_objects())
    timer = GcTimer()
    gc.callbacks.append(timer)
    try:
        start = time.perf_counter()
        fn(*args)
        seconds = time.perf_counter() - start
    finally:
        gc.callbacks.remove(timer)
    gc.collect()  # untimed: what is still alive is what the implementation holds
    held = len(gc.get_objects()) - tracked_before
    return Sample(seconds, sum(timer.seconds), timer.seconds, timer.collections, held)


def expect_rows(impl: Implementation, what: str, n: int) -> None:
    got = impl.scalar("SELECT count(*) FROM customer")
    if got != n:
        raise AssertionError(f"{impl.name}: after {what}, {got} rows, expected {n}")


def run_once(impl: Implementation, n: int) -> dict[str, Sample]:
    """``insert`` of N rows, then ``load_all`` of them, on a fresh table."""
    impl.reset()
    insert = timed(impl.insert, n)
    impl.release()
    expect_rows(impl, "insert", n)
    loaded: list[int] = []
    load_all = timed(lambda: loaded.append(impl.load_all()))
    impl.release()
    if loaded != [n]:
        raise AssertionError(f"{impl.name}: load_all loaded {loaded}, expected {n}")
    load_update = timed(lambda: (impl.load_for_change(), impl.update_all()))
    impl.release()
    updated = impl.scalar(  # no LIKE: a driver's paramstyle may read its % sign
        "SELECT count(*) FROM customer "
        "WHERE substr(description, length(description) - 7) = ' updated'"
    )
    if updated != n:
        raise AssertionError(f"{impl.name}: load_update changed {updated} rows, expected {n}")
    return {"insert": insert, "load_all": load_all, "load_update": load_update}


Samples = dict[tuple[str, int, str], list[Sample]]


def measure(impls: Sequence[Implementation], url: str, sizes: Sequence[int], reps: int) -> Samples:
    samples: Samples = {}
    for impl in impls:
        impl.setup(url)
    try:
        for impl in impls:
            run_once(impl, min(WARMUP_N, *sizes))
        for rep in range(reps):
            order = [*impls[rep % len(impls) :], *impls[: rep % len(impls)]]
            for n in sizes:
                for impl in order:
                    for op, sample in run_once(impl, n).items():
                        samples.setdefault((impl.name, n, op), []).append(sample)
            print(
                f"  rep {rep + 1}/{reps} done (order {', '.join(i.name for i in order)}; "
                f"loadavg {os.getloadavg()[0]:.2f})",
                file=sys.stderr,
                flush=True,
            )
    finally:
        for impl in impls:
            impl.teardown()
    return samples


@dataclass
class Summary:
    library: str
    n: int
    operation: str
    us_per_row: float
    us_per_row_outside_gc: float
    gc_share: float
    gen2_share: float
    collections: list[int]
    tracked_per_row: float
    ratio_to_core: float = 0.0
    growth: float | None = None
    growth_outside_gc: float | None = None


def summarise(samples: Samples, sizes: Sequence[int]) -> list[Summary]:
    out: dict[tuple[str, int, str], Summary] = {}
    for (library, n, op), runs in samples.items():
        out[library, n, op] = Summary(
            library,
            n,
            op,
            us_per_row=statistics.median(s.seconds for s in runs) / n * 1e6,
            us_per_row_outside_gc=statistics.median(s.seconds - s.gc_seconds for s in runs)
            / n
            * 1e6,
            gc_share=statistics.median(s.gc_seconds / s.seconds for s in runs),
            gen2_share=statistics.median(s.gc_seconds_by_generation[2] / s.seconds for s in runs),
            collections=[statistics.median_low(s.collections[g] for s in runs) for g in range(3)],
            tracked_per_row=statistics.median(s.tracked_held for s in runs) / n,
        )
    first, last = sizes[0], sizes[-1]
    for (library, n, op), summary in out.items():
        summary.ratio_to_core = summary.us_per_row / out[CORE, n, op].us_per_row
        if n == last and first != last:
            base = out[library, first, op]
            summary.growth = summary.us_per_row / base.us_per_row
            summary.growth_outside_gc = summary.us_per_row_outside_gc / base.us_per_row_outside_gc
    libraries = list(dict.fromkeys(library for library, _, _ in out))
    return [out[lib, n, op] for op in OPERATIONS for lib in libraries for n in sizes]


def _growth(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def markdown(rows: Sequence[Summary], meta: dict[str, Any]) -> str:
    sizes = sorted({r.n for r in rows})
    lines = [
        f"{meta['backend']} ({meta['url_kind']}), N = {' and '.join(f'{n:,}' for n in sizes)}, "
        f"median of {meta['reps']} interleaved repetitions, cyclic GC on; "
        f"Python {meta['python']}, SQLAlchemy {meta['sqlalchemy']}; load average "
        f"{meta['loadavg_start'][0]:.2f} at the start, {meta['loadavg_end'][0]:.2f} at the end.",
        "",
        "| operation | library | N | µs/row | / Core | % time in GC (in gen2) "
        "| collections gen0/1/2 | tracked objects held / row | growth | growth outside GC |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.operation} | {r.library} | {r.n:,} | {r.us_per_row:.2f} "
            f"| {r.ratio_to_core:.2f} | {r.gc_share * 100:.0f}% ({r.gen2_share * 100:.0f}%) "
            f"| {'/'.join(map(str, r.collections))} | {r.tracked_per_row:.2f} "
            f"| {_growth(r.growth)} "
            f"| {_growth(r.growth_outside_gc)} |"
        )
    lines += [
        "",
        f"growth = µs/row at N={sizes[-1]:,} / µs/row at N={sizes[0]:,}; outside GC: the same "
        "with the time inside collections taken out. In gen2: the part of the time spent in full "
        "collections. Collections: median count per timed call. "
        "Tracked objects held / row: GC-tracked objects alive after the call (and a "
        "`gc.collect()`), less those alive before it, per row: what the library keeps per "
        "object it hands out.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--backend", choices=tuple(URLS), default="sqlite")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions (median reported)")
    p.add_argument("--n", type=int, nargs="+", default=list(SIZES), help="row counts")
    p.add_argument("--pg-url", default=PG_URL, help="PostgreSQL URL (default %(default)s)")
    p.add_argument(
        "--shared",
        type=Path,
        default=Path(os.environ.get("SHARED", ROOT.parent / "shared")),
        help="the shared folder holding bench/peers.py (default $SHARED or ../shared)",
    )
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = p.parse_args(argv)
    sizes = sorted(set(args.n))
    url = args.pg_url if args.backend == "postgresql" else URLS[args.backend]
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.scaling", *sys.argv[1:]]),
        "backend": args.backend,
        "url_kind": "in-memory, one database per library" if url == "sqlite://" else url,
        "sizes": sizes,
        "reps": args.reps,
        "warmup_n": min(WARMUP_N, *sizes),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "cpus": os.cpu_count(),
        "gc_threshold": gc.get_threshold(),
        "loadavg_start": os.getloadavg(),
    }
    samples = measure(implementations(load_peers(args.shared)), url, sizes, args.reps)
    meta["loadavg_end"] = os.getloadavg()
    rows = summarise(samples, sizes)
    table = markdown(rows, meta)
    print(table)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"scaling-{args.backend}.md").write_text(table)
        payload = {
            "meta": meta,
            "summary": [asdict(r) for r in rows],
            "samples": {
                f"{library}|{n}|{op}": [asdict(s) for s in runs]
                for (library, n, op), runs in samples.items()
            },
        }
        (RESULTS / f"scaling-{args.backend}.json").write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
