"""The layer rules of ARCHITECTURE.md and CONTRIBUTING.md, read from the product code itself (``ast``,
no import of the views): each kind of log row has one writer, only the engine assigns a workflow's
state, imports point down the layers (admin_views → workflows → models), and no module imports
itself round a circle. ``bench/structure.py`` prints these figures with the views' own."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections import Counter
from enum import Enum
from pathlib import Path

import models
import workflows
from workflows.engine import PROTECTED

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("app.py", "models", "workflows", "admin_views")  # seed/ and bench/ generate data in bulk

# each row kind and the one module that writes it
WRITERS = {
    "AuditLog": "workflows/audit.py",  # audit.log
    "Message": "workflows/messages.py",  # messages.send
    "TransitionLog": "workflows/engine.py",  # Workflow._apply
    "Attachment": "workflows/attachments.py",  # attachments.store, after the files' checks
    "ElectronicCertificate": "workflows/ecert.py",  # ecert.issue: with the certificate, in its effects
}
ENGINE = "workflows/engine.py"
# which layer may import which (a package may always import itself; third-party code is not listed)
MAY_IMPORT = {
    "settings": set(),
    "models": {"settings"},
    "workflows": {"models", "settings"},
    "admin_views": {"workflows", "models", "settings"},
    "seed": {"workflows", "models", "settings"},
    "app": {"admin_views", "workflows", "models", "seed", "settings"},
}
NO_FLASK = ("models", "workflows")  # the rules run from tests, the CLI and the job worker: no request


def product_files() -> list[Path]:
    out = []
    for name in PRODUCT:
        path = ROOT / name
        out += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return out


def state_attributes() -> frozenset[str]:
    """The state attributes of every Workflow, as the workflows declare them."""
    for module in pkgutil.iter_modules(workflows.__path__):
        importlib.import_module(f"workflows.{module.name}")
    return frozenset().union(*PROTECTED.values())


def other_enums() -> frozenset[str]:
    """The models' enumerations that are no Workflow's states (a job's JobStatus): assigning one of
    their members to a ``status`` is not assigning a workflow state."""
    state_attributes()
    states = {model.__table__.c[name].type.enum_class for model, names in PROTECTED.items() for name in names}
    found = {value for module in pkgutil.iter_modules(models.__path__)
             for value in vars(importlib.import_module(f"models.{module.name}")).values()
             if isinstance(value, type) and issubclass(value, Enum) and value.__module__.startswith("models.")}
    return frozenset(e.__name__ for e in found - states)


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _assignments(node) -> list[tuple]:
    """(target, value) pairs of an assignment, tuples unpacked pairwise (value None when unknown)."""
    if isinstance(node, ast.Assign):
        found = [(target, node.value) for target in node.targets]
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        found = [(node.target, node.value)]
    else:
        return []
    out = []
    while found:
        target, value = found.pop()
        if isinstance(target, (ast.Tuple, ast.List)):
            values = value.elts if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts) \
                else [None] * len(target.elts)
            found += zip(target.elts, values, strict=True)
        else:
            out.append((target, value))
    return out


def _member_of(value, enums: frozenset[str]) -> bool:
    return isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id in enums


def violations(path: Path, source: str, states: frozenset[str], others: frozenset[str] = frozenset()) -> list[str]:
    """What ``source`` (the file at ``path``) does that only a row's writer or the engine may."""
    where = path.relative_to(ROOT).as_posix()
    out = []
    for node in ast.walk(ast.parse(source, filename=where)):
        if isinstance(node, ast.Call):
            name = _called_name(node)
            if name in WRITERS and WRITERS[name] != where:
                out.append(f"{where}: constructs {name}(…)")
            if name == "insert" and node.args and isinstance(node.args[0], ast.Name) \
                    and WRITERS.get(node.args[0].id, where) != where:
                out.append(f"{where}: inserts {node.args[0].id} rows")
            if name == "setattr" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
                    and node.args[1].value in states and where != ENGINE:
                out.append(f"{where}: assigns .{node.args[1].value}")
            if name == "setting_state" and where != ENGINE:
                out.append(f"{where}: uses setting_state()")
        for target, value in _assignments(node):
            if isinstance(target, ast.Attribute) and target.attr in states and where != ENGINE \
                    and not _member_of(value, others):
                out.append(f"{where}: assigns .{target.attr}")
    return out


def test_the_rules_find_what_they_forbid():
    states = frozenset({"status"})
    path = ROOT / "admin_views" / "example.py"
    source = ("row.status = 1\na.x, b.status = 1, 2\nsetattr(row, 'status', 1)\ns.add(AuditLog(kind='x'))\n"
              "models.Message(user_id=1)\ns.execute(insert(TransitionLog), [])\nwith setting_state():\n    pass\n"
              "row.name = 'ok'\nlog(s, u, Kind.EDIT, 'ok')\njob.status, job.x = JobStatus.done, 1\n")
    assert Counter(violations(path, source, states, frozenset({"JobStatus"}))) == Counter({
        "admin_views/example.py: assigns .status": 3, "admin_views/example.py: constructs AuditLog(…)": 1,
        "admin_views/example.py: constructs Message(…)": 1, "admin_views/example.py: inserts TransitionLog rows": 1,
        "admin_views/example.py: uses setting_state()": 1})
    assert violations(ROOT / "workflows" / "engine.py", source.replace("AuditLog", "TransitionLog"), states) == [
        "workflows/engine.py: constructs Message(…)"]


def test_state_attributes_come_from_the_workflows():
    assert {"status", "print_status"} <= state_attributes()
    assert "JobStatus" in other_enums() and not {"BatchStatus", "OrgStatus", "PrintStatus"} & other_enums()


def test_one_writer_per_row_kind_and_only_the_engine_assigns_a_state():
    states, others = state_attributes(), other_enums()
    found = Counter(v for path in product_files() for v in violations(path, path.read_text("utf-8"), states, others))
    assert not found, "\n".join(f"{v} (×{n})" for v, n in sorted(found.items()))


# -- imports ----------------------------------------------------------------------------------------
def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(tree: ast.AST, module: str, known: frozenset[str]) -> list[tuple[int, str]]:
    """(line, module) of every import in ``tree``, relative ones resolved; ``from package import
    module`` imports the module, not the package's ``__init__``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            subs = [f"{base}.{alias.name}" for alias in node.names]
            out += [(node.lineno, sub) for sub in subs if sub in known] or [(node.lineno, base)]
    return out


def import_graph(files: list[Path]) -> tuple[dict[str, set[str]], list[str]]:
    """The product's modules and what each imports of them; and the imports against the layers."""
    known = frozenset(module_name(p) for p in files)
    graph, against = {}, []
    for path in files:
        module = module_name(path)
        layer = module.split(".")[0]
        where = path.relative_to(ROOT).as_posix()
        graph[module] = set()
        for line, target in imports_of(ast.parse(path.read_text("utf-8"), filename=where), module, known):
            head = target.split(".")[0]
            if target in known and target != module:
                graph[module].add(target)
            if head in MAY_IMPORT and head != layer and head not in MAY_IMPORT[layer]:
                against.append(f"{where}:{line}: imports {target}")
            if layer in NO_FLASK and head == "flask":
                against.append(f"{where}:{line}: imports {target}")
    return graph, against


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other round a circle (Tarjan's strongly connected
    components of more than one module)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
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
            while not group or group[-1] != v:
                group.append(stack.pop())
                on.discard(group[-1])
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layered_files() -> list[Path]:
    return product_files() + [ROOT / "settings.py", *sorted((ROOT / "seed").rglob("*.py"))]


def test_the_import_rules_find_what_they_forbid():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("from models import db\nfrom admin_views import base\nimport flask\n")
    known = frozenset({"models", "admin_views.base"})
    assert imports_of(tree, "workflows.x", known) == [(1, "models"), (2, "admin_views.base"), (3, "flask")]


def test_imports_point_down_the_layers():
    _graph, against = import_graph(layered_files())
    assert not against, "\n".join(against)


def test_no_import_circles():
    graph, _against = import_graph(layered_files())
    assert not circles(graph), "\n".join(" ↔ ".join(c) for c in circles(graph))
