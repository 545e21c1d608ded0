"""Check the package's import layers: no cycle, no upward import, imports inside functions
counted too. Run ``python tools/check_layers.py`` (``make lint`` and the tests do).

Each sub-package (or top-level module) of ``src/pipeline`` belongs to one layer of
:data:`LAYERS`, lowest first. A module may import its own sub-package and any lower layer;
modules on the same layer are independent of each other. docs/architecture.md draws this.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

#: Layers, lowest first; each is a tuple of the components on it (``pipeline.<component>``).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "numeric"),
    ("__init__",),
    ("io",),
    ("datasets",),
    ("features",),
    ("models",),
    ("inference",),
    ("evaluation",),
    ("training",),
    ("retrieval", "fewshot"),
    ("collection",),
    ("config",),
    ("cli",),
    ("__main__",),
)

RANK = {component: rank for rank, layer in enumerate(LAYERS) for component in layer}
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pipeline"


def module_name(path: Path, *, root: Path = PACKAGE) -> str:
    """``src/pipeline/a/b.py`` -> ``pipeline.a.b`` (a package's ``__init__`` is the package)."""
    parts = ("pipeline", *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def component(module: str) -> str:
    """The layer component of a module: ``pipeline.features.windows`` -> ``features``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path, module: str, *, root: Path = PACKAGE) -> list[tuple[str, int]]:
    """Every ``pipeline`` module the file imports (at any depth), with its line."""
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("pipeline")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("pipeline"):
                continue
            found.append((target, node.lineno))
            # ``from pipeline.x import y`` where y is a sub-module: count the sub-module too.
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if _module_path(sub, root=root) is not None:
                    found.append((sub, node.lineno))
    return found


def _module_path(module: str, *, root: Path = PACKAGE) -> Path | None:
    rel = Path(*module.split(".")[1:])
    for candidate in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
        if module != "pipeline" and candidate.exists():
            return candidate
    return None


def check(root: Path = PACKAGE) -> list[str]:
    """All violations, as readable lines (empty: the layering holds)."""
    problems: list[str] = []
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root=root)
        own = component(module)
        if own not in RANK:
            problems.append(f"{module}: component {own!r} is on no layer of tools/check_layers.py")
            continue
        graph.setdefault(module, set())
        for target, line in imports(path, module, root=root):
            other = component(target)
            graph[module].add(target)
            if other == own:
                continue
            if other not in RANK:
                problems.append(f"{path}:{line}: {module} imports {target}, on no layer")
            elif RANK[other] >= RANK[own]:
                where = "a higher" if RANK[other] > RANK[own] else "the same"
                problems.append(
                    f"{path}:{line}: {module} ({own}) imports {target} ({other}, {where} layer)"
                )
    problems += [f"import cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                members.append(top)
                if top == node:
                    break
            if len(members) > 1:
                cycles.append(sorted(members))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def main() -> int:
    problems = check()
    for problem in problems:
        print(problem)
    print(f"import layers: {len(problems)} problem(s)" if problems else "import layers: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
