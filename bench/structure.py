"""The structure's figures (issue 18): lines per layer, and every place that breaks a layer rule.

    python bench/structure.py            # figures of the working tree
    python bench/structure.py --list     # and every offending place, file:line

It reads the product's source with ``ast`` (nothing is run but the import of the workflow tables,
to learn each workflow's model and state column) and counts:

- state columns assigned outside the engine (``obj.status = …`` on a workflow's state attribute, or
  ``update(...).values(status=…)``), outside ``workflows/engine.py``;
- ``Message``, ``AuditLog`` and ``TransitionLog`` rows built outside their one writer
  (``workflows/messages.py``, ``workflows/audit.py``, ``workflows/engine.py``);
- in views: ``request.form`` reads, ``commit()``/``rollback()`` calls, transition names written as
  string literals, rules on ``current_user.kind``;
- imports against the layers (models ← workflows ← admin_views ← app; seed and bench on top) and
  import circles among the product's modules.

``tests/unit/test_layers.py`` holds the rules whose figure must stay 0.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("models", "workflows", "admin_views", "seed")
PRODUCT_FILES = ("app.py", "settings.py")
# which layer may import which (a package may always import itself)
MAY_IMPORT = {
    "settings": set(),
    "models": {"settings"},
    "workflows": {"models", "settings"},
    "admin_views": {"workflows", "models", "settings"},
    "seed": {"workflows", "models", "settings"},
    "app": {"admin_views", "workflows", "models", "seed", "settings"},
}
WRITERS = {"Message": "workflows/messages.py", "AuditLog": "workflows/audit.py",
           "TransitionLog": "workflows/engine.py"}
ENGINE = "workflows/engine.py"
# files whose ``status`` is not a workflow's: a job's is the queue's own (claim, heartbeat, retry)
NOT_WORKFLOW_STATES = {"workflows/jobs.py"}


@dataclass
class Figures:
    lines: dict = field(default_factory=dict)  # layer -> lines of code
    places: dict = field(default_factory=lambda: defaultdict(list))  # rule -> ["file:line text"]

    def count(self, rule: str) -> int:
        return len(self.places.get(rule, []))


def product_files(root: Path = ROOT) -> list[Path]:
    files = [root / name for name in PRODUCT_FILES if (root / name).exists()]
    for package in PRODUCT:
        files.extend(sorted((root / package).rglob("*.py")))
    return files


def layer_of(module: str) -> str | None:
    head = module.split(".")[0]
    return head if head in MAY_IMPORT else None


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(tree: ast.AST, module: str, known: set[str] = frozenset()) -> list[tuple[int, str]]:
    """(line, imported module) of every import, relative ones resolved, names that are modules kept."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level] if node.level else []
                base = ".".join([*parent, base] if base else parent)
            # ``from package import module`` imports the module, not the package's __init__
            subs = [f"{base}.{alias.name}" for alias in node.names]
            if not (known and all(sub in known for sub in subs)):
                out.append((node.lineno, base))
            out.extend((node.lineno, sub) for sub in subs)
    return out


def state_attributes() -> set[str]:
    """The state attribute names of every workflow table (REGISTRATION.status, PRINT.print_status …)."""
    sys.path.insert(0, str(ROOT))
    import importlib
    import pkgutil

    import workflows
    from workflows.engine import Workflow

    names = set()
    for info in pkgutil.iter_modules(workflows.__path__):
        mod = importlib.import_module(f"workflows.{info.name}")
        names.update(v.state_attr for v in vars(mod).values() if isinstance(v, Workflow))
    return names


def transition_names() -> set[str]:
    import importlib
    import pkgutil

    import workflows
    from workflows.engine import Workflow

    names = set()
    for info in pkgutil.iter_modules(workflows.__path__):
        mod = importlib.import_module(f"workflows.{info.name}")
        for v in vars(mod).values():
            if isinstance(v, Workflow):
                names.update(v.transitions)
    return names


def measure(root: Path = ROOT) -> Figures:
    figures = Figures()
    states = state_attributes()
    transitions = transition_names()
    graph: dict[str, set[str]] = defaultdict(set)
    modules = {module_name(p, root) for p in product_files(root)}
    for path in product_files(root):
        rel = path.relative_to(root).as_posix()
        source = path.read_text(encoding="utf-8")
        layer = rel.split("/")[0].removesuffix(".py")
        figures.lines[layer] = figures.lines.get(layer, 0) + sum(1 for line in source.splitlines() if line.strip())
        tree = ast.parse(source, rel)
        module = module_name(path, root)
        lines = source.splitlines()

        def place(rule, node, _rel=rel, _lines=lines):
            figures.places[rule].append(f"{_rel}:{node.lineno}: {_lines[node.lineno - 1].strip()[:100]}")

        own_layer = layer_of(module)
        for lineno, target in imports_of(tree, module, modules):
            if target in modules and target != module:
                graph[module].add(target)
            other = layer_of(target)
            if own_layer and other and other != own_layer and other not in MAY_IMPORT[own_layer]:
                figures.places["imports against the layers"].append(f"{rel}:{lineno}: imports {target}")
            if own_layer in ("models", "workflows") and target.split(".")[0] == "flask":
                figures.places["imports against the layers"].append(f"{rel}:{lineno}: imports {target}")
        is_view = rel.startswith("admin_views/")
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                flat = []
                for t in targets:
                    flat.extend(t.elts if isinstance(t, ast.Tuple) else [t])
                if rel != ENGINE and rel not in NOT_WORKFLOW_STATES \
                        and any(isinstance(t, ast.Attribute) and t.attr in states for t in flat):
                    place("state assigned outside the engine", node)
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name in WRITERS and rel != WRITERS[name]:
                    place(f"{name} rows written outside their writer", node)
                if name == "values" and rel not in (ENGINE, *NOT_WORKFLOW_STATES) \
                        and any(k.arg in states for k in node.keywords):
                    place("state assigned outside the engine", node)
                if is_view and name in ("commit", "rollback"):
                    place(f"views: {name}() calls", node)
            if is_view:
                if isinstance(node, ast.Attribute) and node.attr == "form" and getattr(node.value, "id", "") == "request":
                    place("views: request.form reads", node)
                elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in transitions \
                        and node.value not in ("delete", "edit", "index", "print", "submit"):
                    place("views: transition names as literals", node)
                elif isinstance(node, ast.Compare) and "current_user.kind" in ast.unparse(node.left):
                    place("views: rules on current_user.kind", node)
    for cycle in circles(graph):
        figures.places["import circles"].append(" -> ".join(cycle))
    return figures


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print every offending place")
    args = parser.parse_args()
    figures = measure()
    print("lines of code (non-blank) per layer:")
    for layer, n in sorted(figures.lines.items(), key=lambda kv: -kv[1]):
        print(f"  {layer:<14}{n:>7,}")
    rules = ["state assigned outside the engine", *(f"{w} rows written outside their writer" for w in WRITERS),
             "imports against the layers", "import circles", "views: request.form reads", "views: commit() calls",
             "views: rollback() calls", "views: transition names as literals", "views: rules on current_user.kind"]
    print("places:")
    for rule in rules:
        print(f"  {rule:<48}{figures.count(rule):>5}")
        if args.list:
            for p in figures.places.get(rule, []):
                print(f"      {p}")


if __name__ == "__main__":
    main()
