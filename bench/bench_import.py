"""Benchmark the predictions import: a million rows against the floor, in rows/s and peak RSS.

One predictions file is generated per run, in a temp dir, from a fixed seed: `--rows` rows
(default 1,000,000; about 10% misclassified, 90% "dev" and 10% "train") over three classes
with `prob_<class>` columns, whose `image` column cycles over `--images` (default 1,000) real
8 x 8 PNGs written under `images/`; the same table is also written as Parquet.

The floor, timed on the same file: `pandas.read_csv(dtype=str, keep_default_na=False)`, then
one `sqlite3` connection, CREATE TABLE with the file's columns and one `executemany` of every
row in one transaction, committed, into a fresh SQLite file. Each labeltool case opens a fresh
database as the app does (`Database.open`, migrations included, not timed) and times
`with db.begin() as session: import_predictions(...)`, commit included:

    floor     the floor above
    exists    CSV, check_images="exists" (the issue's target case)
    none      CSV, check_images="none"
    open      CSV, check_images="open"
    parquet   Parquet, check_images="exists"
    postgres  CSV, check_images="exists", on PostgreSQL in a fresh schema dropped afterwards

Every case runs in a fresh process of its own, so its peak RSS (getrusage) is its own; the
files are made in yet another, as Linux keeps a process's peak across exec and a parent that
grew would lift every worker's figure. With `--repeat N` the cases run N times, in turns so
a change of load hits them all, and the table shows each one's median seconds and highest
peak. PostgreSQL runs when `--postgres URL`, LABELTOOL_BENCH_DATABASE_URL or
LABELTOOL_TEST_DATABASE_URL gives a server (e.g. postgresql+psycopg://postgres@127.0.0.1/test).
The issue's target: CSV with check_images="exists" at >= 0.5x the floor's rows/s and at most
1 GB peak RSS; the same on PostgreSQL, reported.

    .venv/bin/python bench/bench_import.py [--quick] [--rows 1000000] [--images 1000]
        [--cases floor,exists,none,open,parquet,postgres] [--postgres URL] [--repeat 1] [--keep]

Prints figures; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ROWS, IMAGES = 1_000_000, 1_000
QUICK_ROWS, QUICK_IMAGES = 100_000, 200
SEED = 20240607
CLASSES = ("cat", "dog", "bird")
ERROR_SHARE = 0.10
TRAIN_SHARE = 0.10
PG_ENVS = ("LABELTOOL_BENCH_DATABASE_URL", "LABELTOOL_TEST_DATABASE_URL")
TARGET_RATIO, TARGET_MB = 0.5, 1024
#: case: (file format, check_images depth; None for the floor), in the order they run.
CASES = {
    "floor": ("csv", None),
    "exists": ("csv", "exists"),
    "none": ("csv", "none"),
    "open": ("csv", "open"),
    "parquet": ("parquet", "exists"),
    "postgres": ("csv", "exists"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help=f"prediction rows (default {ROWS:,})")
    parser.add_argument("--images", type=int, help=f"distinct image files (default {IMAGES:,})")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_ROWS:,} rows over {QUICK_IMAGES} images"
    )
    parser.add_argument("--cases", help=f"comma list of: {','.join(CASES)} (default: all)")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server for the pg case")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case (median)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and print it")
    parser.add_argument("--worker", nargs=3, metavar=("CASE", "FILE", "DB"), help=argparse.SUPPRESS)
    parser.add_argument("--make", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows = args.rows or (QUICK_ROWS if args.quick else ROWS)
    images = args.images or (QUICK_IMAGES if args.quick else IMAGES)
    if args.worker:
        print(json.dumps(_run(*args.worker)))
        return
    if args.make:
        _make_files(Path(args.make), rows, images)
        return

    pg_base = args.postgres or next((os.environ[e] for e in PG_ENVS if os.environ.get(e)), None)
    cases = _pick_cases(parser, args.cases, pg_base)

    tmp = Path(tempfile.mkdtemp(prefix="labeltool-bench-import-"))
    try:
        started = time.perf_counter()
        # In a process of its own: Linux keeps a process's peak RSS across exec, so the
        # workers would start from this process's peak if the table were made here.
        make = [sys.executable, __file__, "--make", str(tmp), "--rows", str(rows)]
        subprocess.run([*make, "--images", str(images)], check=True)
        csv_path, parquet_path = tmp / "predictions.csv", tmp / "predictions.parquet"
        print(
            f"{rows:,} rows, {images:,} images, {len(CLASSES)} classes; CSV "
            f"{csv_path.stat().st_size / 2**20:.1f} MB, Parquet "
            f"{parquet_path.stat().st_size / 2**20:.1f} MB; written in "
            f"{time.perf_counter() - started:.1f}s\n",
            flush=True,
        )
        runs: dict[str, list[dict]] = {case: [] for case in cases}
        for round_ in range(1, max(1, args.repeat) + 1):
            for case in cases:
                kind, _depth = CASES[case]
                path = csv_path if kind == "csv" else parquet_path
                db_file = tmp / f"{case}-{round_}.db"
                url = pg_base if case == "postgres" else f"sqlite:///{db_file}"
                runs[case].append(_worker(case, path, url))
                for suffix in ("", "-wal", "-shm"):  # a million rows' database: 100s of MB
                    Path(f"{db_file}{suffix}").unlink(missing_ok=True)
                _progress(case, runs[case][-1], round_ if args.repeat > 1 else None)
        _print({case: _summary(results) for case, results in runs.items()}, rows, pg_base)
    finally:
        if args.keep:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# --- the main process ------------------------------------------------------------------


def _pick_cases(parser: argparse.ArgumentParser, chosen: str | None, pg_base) -> list[str]:
    if chosen is None:
        return [case for case in CASES if case != "postgres" or pg_base]
    picked = [c.strip() for c in chosen.split(",") if c.strip()]
    unknown = [c for c in picked if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; pick from {', '.join(CASES)}")
    if "postgres" in picked and not pg_base:
        parser.error(f"the postgres case needs --postgres URL or {PG_ENVS[0]}")
    return [case for case in CASES if case in picked]


def _make_files(folder: Path, rows: int, images: int) -> None:
    """predictions.csv and .parquet (the same table) and the image files; deterministic."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    (folder / "images").mkdir()
    for number in range(images):
        colour = ((number * 37) % 256, (number * 91) % 256, (number * 13) % 256)
        Image.new("RGB", (8, 8), colour).save(folder / "images" / f"img{number:05d}.png")

    rng = np.random.default_rng(SEED)
    count = len(CLASSES)
    label = rng.integers(0, count, rows)
    wrong = rng.random(rows) < ERROR_SHARE
    prediction = np.where(wrong, (label + rng.integers(1, count, rows)) % count, label)
    confidence = np.round(rng.uniform(0.5, 1.0, rows), 4)
    # The rest of the mass shared at random among the other classes: the prediction is the
    # most probable class.
    shares = rng.random((rows, count))
    shares[np.arange(rows), prediction] = 0.0
    shares /= shares.sum(axis=1, keepdims=True)
    probs = np.round(shares * (1.0 - confidence)[:, None], 4)
    probs[np.arange(rows), prediction] = confidence
    names = np.array(CLASSES, dtype=object)
    numbers = np.arange(rows)
    table = pd.DataFrame(
        {
            "example_id": np.char.add("ex", np.char.zfill(numbers.astype(str), 7)).astype(object),
            "image": np.char.add(
                np.char.add("images/img", np.char.zfill((numbers % images).astype(str), 5)), ".png"
            ).astype(object),
            "label": names[label],
            "prediction": names[prediction],
            "confidence": confidence,
            **{f"prob_{name}": probs[:, i] for i, name in enumerate(CLASSES)},
            "split": np.where(rng.random(rows) < TRAIN_SHARE, "train", "dev").astype(object),
        }
    )
    table.to_csv(folder / "predictions.csv", index=False, float_format="%.4f")
    table.to_parquet(folder / "predictions.parquet", engine="pyarrow", index=False)


def _worker(case: str, path: Path, url: str) -> dict:
    """Run one case in a fresh process; its JSON line, or {"error": ...} when it failed."""
    command = [sys.executable, __file__, "--worker", case, str(path), url]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        error = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return {"error": error}
    return json.loads(lines[-1])


def _summary(results: list[dict]) -> dict:
    """One case's runs as one: the median seconds, the highest peak; the first failure."""
    failed = [result for result in results if "error" in result]
    if failed:
        return failed[0]
    middle = sorted(results, key=lambda result: result["seconds"])[(len(results) - 1) // 2]
    return {**middle, "rss_peak_mb": max(result["rss_peak_mb"] for result in results)}


def _progress(case: str, result: dict, round_: int | None) -> None:
    label = case if round_ is None else f"{case} #{round_}"
    if "error" in result:
        print(f"  {label}: FAILED: {result['error']}", flush=True)
    else:
        print(f"  {label}: {result['seconds']:.1f}s", flush=True)


def _print(results: dict[str, dict], rows: int, pg_base: str | None) -> None:
    floor = results.get("floor")
    floor_rate = floor["rows_per_s"] if floor and "error" not in floor else None
    print(
        f"\n{'case':<9} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'× floor':>8} "
        f"{'peak RSS':>9}  check_images"
    )
    for case, result in results.items():
        if "error" in result:
            print(f"{case:<9} FAILED: {result['error']}")
            continue
        ratio = f"{result['rows_per_s'] / floor_rate:.2f}×" if floor_rate else "-"
        check = result.get("check_images") or "-"
        stored = result.get("stored", rows)
        note = "" if result["rows"] == stored == rows else f"  ({stored:,} rows stored)"
        print(
            f"{case:<9} {result['rows']:>10,} {result['seconds']:>8.2f} "
            f"{result['rows_per_s']:>9,.0f} {ratio:>8} {result['rss_peak_mb']:>7.0f}MB  "
            f"{check}{note}"
        )
    print(
        "\nseconds: the floor's read_csv + executemany + commit; labeltool's whole\n"
        "`with db.begin(): import_predictions(...)`, commit included (migrations not timed).\n"
        "peak RSS: the case's own process (getrusage), interpreter and imports included."
    )
    if pg_base is None:
        print(f"(PostgreSQL skipped: pass --postgres URL or set {PG_ENVS[0]})")
    print(
        f"\ntarget: ≥ {TARGET_RATIO}× floor and ≤ {TARGET_MB} MB peak RSS for CSV "
        f"--check-images exists: {_verdict(results.get('exists'), floor_rate, rows)}"
    )
    if "postgres" in results:
        print(f"same on PostgreSQL (reported): {_verdict(results['postgres'], floor_rate, rows)}")


def _verdict(result: dict | None, floor_rate: float | None, rows: int) -> str:
    if result is None or "error" in result:
        return "NOT MEASURED (case not run or failed)"
    if floor_rate is None:
        return "NOT MEASURED (no floor: add floor to --cases)"
    ratio = result["rows_per_s"] / floor_rate
    met = ratio >= TARGET_RATIO and result["rss_peak_mb"] <= TARGET_MB and result["rows"] == rows
    met = met and result.get("stored", rows) == rows
    return (
        f"{'MET' if met else 'NOT MET'} ({ratio:.2f}× floor, {result['rss_peak_mb']:.0f} MB, "
        f"check_images={result['check_images']})"
    )


# --- the worker process ----------------------------------------------------------------


def _run(case: str, path: str, url: str) -> dict:
    if CASES[case][1] is None:
        return _floor(Path(path), url.removeprefix("sqlite:///"))
    if case == "postgres":
        from tests.conftest import postgres_schema  # the tests' throwaway schema

        with postgres_schema(url, prefix="bench") as schema_url:
            return _import(CASES[case][1], Path(path), schema_url)
    return _import(CASES[case][1], Path(path), url)


def _floor(path: Path, db_file: str) -> dict:
    """pandas.read_csv as text, then one executemany in one transaction into a fresh file."""
    import sqlite3

    import pandas as pd

    rss_setup = _peak_rss_mb()
    started = time.perf_counter()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    connection = sqlite3.connect(db_file)
    columns = ", ".join(f'"{name}" TEXT' for name in frame.columns)
    connection.execute(f"CREATE TABLE predictions ({columns})")
    marks = ", ".join("?" * len(frame.columns))
    with connection:  # one transaction, committed at the end of the block
        connection.executemany(
            f"INSERT INTO predictions VALUES ({marks})", frame.itertuples(index=False, name=None)
        )
    connection.close()
    seconds = time.perf_counter() - started
    return _result(len(frame), seconds, rss_setup, check_images=None)


def _import(depth: str, path: Path, url: str) -> dict:
    """labeltool's import into a freshly migrated database, commit included."""
    from sqlalchemy import func, select

    from labeltool.db import Database
    from labeltool.importing import import_predictions
    from labeltool.models import Example

    def timed(check) -> dict:
        started = time.perf_counter()
        with db.begin() as session:
            summary = import_predictions(session, path, project="bench", check_images=check)
        seconds = time.perf_counter() - started
        with db.begin() as session:  # not timed: that the rows really are in the database
            stored = session.scalar(select(func.count()).select_from(Example))
        result = _result(summary.rows, seconds, rss_setup, check_images=repr(check))
        return {**result, "stored": stored}

    db = Database.open(url)
    rss_setup = _peak_rss_mb()
    try:
        return timed(depth)
    finally:
        db.dispose()


def _result(rows: int, seconds: float, rss_setup: float, *, check_images) -> dict:
    return {
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "rss_setup_mb": rss_setup,
        "rss_peak_mb": _peak_rss_mb(),
        "check_images": check_images,
    }


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


if __name__ == "__main__":
    main()
