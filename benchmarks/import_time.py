"""Import cost of the command line and of each rule script: CPU seconds in a fresh process.

Every Snakemake job starts a new interpreter and imports what its rule script imports, so
this cost is paid once per job (the demo runs ~50 jobs). For ``pipeline --help`` and for each
``workflow/scripts/*.py`` this runs, in a fresh ``python`` process, only the script's import
statements (everything before the first statement that is not an import or a docstring) and
reports the child's user + system CPU time, the median of ``--repeat`` runs, and the heavy
libraries the imports pulled in.

    python benchmarks/import_time.py                       # this checkout
    python benchmarks/import_time.py --src /tmp/old/src --scripts /tmp/old/workflow/scripts

``--src`` puts another checkout's package first on ``PYTHONPATH`` (to measure before/after in
the same run).
"""

from __future__ import annotations

import argparse
import ast
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pandas", "dask", "zarr", "librosa", "sklearn", "matplotlib", "scipy", "numpy")
REPORT = "import sys\nprint('HEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules))\n"


def import_block(script: Path) -> str:
    """The leading import statements of a rule script, as source."""
    source = script.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    end = 0
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            end = node.end_lineno or end
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        else:
            break
    return "\n".join(lines[:end])


def cpu_seconds(code: str, *, env: dict[str, str], repeat: int) -> tuple[float, str]:
    """Median CPU seconds (user + sys) of ``python -c code`` and the heavy modules it loaded."""
    times, heavy = [], ""
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(
            [sys.executable, "-c", code + "\n" + REPORT.format(heavy=HEAVY)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        heavy = next((line[6:] for line in out.splitlines() if line.startswith("HEAVY=")), heavy)
    return statistics.median(times), heavy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=REPO / "src", help="package source folder")
    parser.add_argument(
        "--scripts", type=Path, default=REPO / "workflow" / "scripts", help="rule scripts"
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(args.src.resolve()))
    help_code = (
        "import sys\nsys.argv = ['pipeline', '--help']\nfrom pipeline.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    rows = [("pipeline --help", help_code)]
    rows += [(p.name, import_block(p)) for p in sorted(args.scripts.glob("*.py"))]
    baseline, _ = cpu_seconds("pass", env=env, repeat=args.repeat)
    print(f"interpreter start-up alone: {baseline:.2f} CPU s (included below)")
    print(f"{'what':34s} {'CPU s':>6s}  heavy libraries imported")
    total = 0.0
    for name, code in rows:
        seconds, heavy = cpu_seconds(code, env=env, repeat=args.repeat)
        total += seconds if name != "pipeline --help" else 0.0
        print(f"{name:34s} {seconds:6.2f}  {heavy}")
    print(f"{'sum over rule scripts':34s} {total:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
