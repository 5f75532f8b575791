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

The first four are the rules of ``tests/unit/test_layers.py`` (their figure must stay 0; this
script prints them with the places); the views' figures are what issue 18 reduced, not rules: a
view may still commit a throttle counter on a refusal, and an action's name may be a transition's.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.unit.test_layers import (  # noqa: E402  the rules are the tests'; this prints their figures
    circles,
    import_graph,
    layered_files,
    other_enums,
    product_files,
    state_attributes,
    violations,
)


def transition_names() -> set[str]:
    """Every transition's name, from the workflows' tables."""
    import importlib
    import pkgutil

    import workflows
    from workflows.engine import Workflow

    return {name for info in pkgutil.iter_modules(workflows.__path__)
            for value in vars(importlib.import_module(f"workflows.{info.name}")).values()
            if isinstance(value, Workflow) for name in value.transitions}


def measure() -> dict[str, list[str]]:
    """rule -> the places that break it (file:line and the line)."""
    places: dict[str, list[str]] = defaultdict(list)
    states, others = state_attributes(), other_enums()
    for path in product_files():
        for v in violations(path, path.read_text("utf-8"), states, others):
            kind = "state assigned outside the engine" if "assigns ." in v or "setting_state" in v \
                else "log, message or transition rows written outside their writer"
            places[kind].append(v)
    graph, against = import_graph(layered_files())
    places["imports against the layers"] = against
    places["import circles"] = [" <-> ".join(c) for c in circles(graph)]
    transitions = transition_names()
    for path in sorted((ROOT / "admin_views").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        source = path.read_text("utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source, rel)):
            rule = None
            if isinstance(node, ast.Attribute) and node.attr == "form" and getattr(node.value, "id", "") == "request":
                rule = "views: request.form reads"
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("commit", "rollback"):
                rule = f"views: {node.func.attr}() calls"
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in transitions:
                rule = "views: strings that are transition names"
            elif isinstance(node, ast.Compare) and "current_user.kind" in ast.unparse(node.left):
                rule = "views: rules on current_user.kind"
            if rule:
                places[rule].append(f"{rel}:{node.lineno}: {lines[node.lineno - 1].strip()[:100]}")
    return places


def lines_per_layer() -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for path in layered_files():
        layer = path.relative_to(ROOT).parts[0].removesuffix(".py")
        out[layer] += sum(1 for line in path.read_text("utf-8").splitlines() if line.strip())
    return out


RULES = ("state assigned outside the engine", "log, message or transition rows written outside their writer",
         "imports against the layers", "import circles", "views: request.form reads", "views: commit() calls",
         "views: rollback() calls", "views: strings that are transition names", "views: rules on current_user.kind")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print every place")
    args = parser.parse_args()
    print("lines of code (non-blank) per layer:")
    for layer, n in sorted(lines_per_layer().items(), key=lambda kv: -kv[1]):
        print(f"  {layer:<14}{n:>7,}")
    places = measure()
    print("places:")
    for rule in RULES:
        print(f"  {rule:<64}{len(places.get(rule, [])):>5}")
        if args.list:
            for p in places.get(rule, []):
                print(f"      {p}")


if __name__ == "__main__":
    main()
