"""What a worker container pays to hold an experiment's two models: peak memory and load time, one model against two.

``python -m bench.two_models [--artifact artifacts/artifact] [--items 100000]`` (``make bench-two-models``): for the
served artifact and a synthetic one of ``--items`` movies (``bench.serving``'s generator, random weights, built once
under ``artifacts/two_models/``), a fresh process per measurement imports the engine, loads one or two copies of the
artifact (two copies: what an experiment between two models of that size holds) and answers one request; its peak
RSS and each load's seconds are reported, each measurement ``--repeat`` times. Writes ``artifacts/two_models.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from infra.local.stack import DEFAULT_ARTIFACT

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "artifacts"
PROBE = """
import json, sys, time
from lambdas.engine import Engine
loads, engines = [], []
for path in sys.argv[1:]:
    t = time.perf_counter()
    engines.append(Engine(path))
    loads.append(time.perf_counter() - t)
engines[0].recommend(1, k=10)
# VmHWM, not ru_maxrss: after fork and exec the latter still counts the parent's peak (this bench's own, when it has
# just built the synthetic model)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"loads_s": loads, "peak_rss_mb": int(hwm.split()[1]) / 1024}))
"""


def measure(paths: list[Path]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, paths)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def synthetic(items: int, folder: Path) -> Path:
    from contract import is_artifact

    artifact = folder / f"synthetic-{items}"
    if not is_artifact(artifact):
        from bench.serving import synthetic_model_dir
        from model_export.export import export

        export(synthetic_model_dir(folder / f"model-{items}", items), artifact, log=lambda *_: None)
    return artifact


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    folder = a.out / "two_models"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, artifact in (("served artifact", a.artifact), ("synthetic", None)):
        artifact = artifact or synthetic(a.items, folder)
        copy = folder / f"copy-{artifact.name}"
        if not copy.exists():
            shutil.copytree(artifact, copy)
        movies = json.loads((artifact / "manifest.json").read_text())["model"]["n_items"]
        for n in (1, 2):
            runs = [measure([artifact, copy][:n]) for _ in range(a.repeat)]
            rss = max(r["peak_rss_mb"] for r in runs)
            loads = [s for r in runs for s in r["loads_s"]]
            rows.append(f"| {name} ({movies:,} movies) | {n} | {rss:.0f} | {min(loads):.2f}-{max(loads):.2f} |")
            print(rows[-1], flush=True)
    cmd = ("python -m bench.two_models " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    text = "\n".join(
        [
            f"Two models in one worker process: `{cmd}` ({time.strftime('%Y-%m-%d')}, this machine; {a.repeat} "
            "fresh processes per row, the highest peak RSS and every load's time).",
            "",
            "| catalogue | models loaded | peak RSS (MB) | each load (s) |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    (a.out / "two_models.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
