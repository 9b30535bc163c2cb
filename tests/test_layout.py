"""The package's architecture as rules on its import graph (every import, in functions too, and the
names the lazy ``__init__`` tables import by string): no cycle; ``solver/`` imports torch only;
``nn/`` knows neither the solver nor Lightning (torch, and MONAI's networks); ``data/`` never imports
training or the commands; each room (top-level subpackage) imports only the rooms its rule names
(``ROOMS``), so no two rooms import each other."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_reg"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (``from a import b``: ``a.b`` when that is a
    module of ours, else ``a``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if _is_ours(candidate) else base)
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_WHERE" for t in node.targets):
            # lazy tables: {"Name": "submodule"} imported on first use
            for value in ast.literal_eval(node.value).values():
                found.add(f"{package}.{value}")
    return {item for item in found if item}


def _is_ours(name: str) -> bool:
    relative = Path(*name.split("."))
    root = PACKAGE.parent / relative
    return root.with_suffix(".py").is_file() or (root / "__init__.py").is_file()


GRAPH = {_module_name(path): _imports(path) for path in PACKAGE.rglob("*.py")}


def _ours(names: set[str]) -> set[str]:
    return {name for name in names if name.split(".")[0] == "lightning_reg"}


#: imports allowed against the rules on cycles and rooms, each with the release that removes it
#: (``RegistrationModule.pretrained``, deprecated for ``lightning_reg.models.pretrained``)
DEPRECATED_EDGES = {
    ("lightning_reg.training.checkpoints", "lightning_reg.models"): "0.5",
    ("lightning_reg.data.brains.__main__", "lightning_reg.anatomy.__main__"): "0.5",
}


def test_no_import_cycle():
    graph = {
        module: {target for target in _ours(targets) & GRAPH.keys() if (module, target) not in DEPRECATED_EDGES}
        for module, targets in GRAPH.items()
    }
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                pytest.fail(f"import cycle: {' -> '.join(path[path.index(target) :] + [target])}")
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def _third_party(module: str) -> set[str]:
    return {name.split(".")[0] for name in GRAPH[module] - _ours(GRAPH[module])} - set(sys.stdlib_module_names)


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("lightning_reg.solver")))
def test_the_solver_imports_torch_only(module):
    assert _third_party(module) <= {"torch"}
    assert all(name.startswith("lightning_reg.solver") for name in _ours(GRAPH[module]))


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("lightning_reg.nn")))
def test_networks_know_neither_solver_nor_lightning(module):
    assert _third_party(module) <= {"torch", "monai"}  # monai: the networks of MonaiFeatures, an optional extra
    assert all(name.startswith("lightning_reg.nn") for name in _ours(GRAPH[module]))


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("lightning_reg.data")))
def test_data_never_imports_training_or_the_commands(module):
    forbidden = ("lightning_reg.training", "lightning_reg.cli", "lightning_reg.sweep")
    assert not [name for name in _ours(GRAPH[module]) if name.startswith(forbidden)]


def _room(module: str) -> str:
    """The top-level subpackage or module a module lives in (``lightning_reg.solver``, ``lightning_reg.errors``)."""
    return ".".join(module.split(".")[:2])


#: which rooms each room may import (besides itself): the architecture, read from the bottom up.
#: ``errors``, ``moved`` and ``hyperparameters`` are leaves anyone may use; the package's own ``__init__``
#: is its public face
ROOMS = {
    "solver": set(),
    "nn": set(),
    "files": {"solver"},
    "evaluation": {"solver", "files"},
    "data": {"solver", "files"},
    "anatomy": {"data", "solver", "files"},
    "training": {"solver", "nn", "data", "files", "evaluation"},
    "models": {"training", "files"},
    "sweep": {"training", "evaluation", "files"},
    "cli": {"solver", "nn", "data", "files", "evaluation", "training", "models", "sweep"},
}
LEAVES = {"errors", "moved", "hyperparameters"}


def test_every_room_has_a_rule_and_the_rules_have_no_cycle():
    found = {_room(module).split(".")[1] for module in GRAPH if module != "lightning_reg"}
    assert found == set(ROOMS) | LEAVES
    done: set[str] = set()
    while len(done) < len(ROOMS):  # peel rooms whose dependencies are all peeled: fails on a cycle
        ready = {room for room, needs in ROOMS.items() if room not in done and needs <= done}
        assert ready, f"the room rules have a cycle among {sorted(set(ROOMS) - done)}"
        done |= ready


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_each_room_imports_only_the_rooms_below_it(room):
    allowed = {f"lightning_reg.{name}" for name in ROOMS[room] | LEAVES | {room}}
    wrong = [
        (module, target)
        for module in GRAPH
        if _room(module) == f"lightning_reg.{room}"
        for target in _ours(GRAPH[module]) & GRAPH.keys()
        if _room(target) not in allowed and (module, target) not in DEPRECATED_EDGES
    ]
    assert not wrong, wrong


#: the solver's sub-rooms and what each may import of the solver besides itself: ``base`` is the
#: solver's own top-level modules of small helpers (checks, pairs, registry, modes), which import no room
SOLVER_ROOMS = {"geometry": {"base"}, "energy": {"geometry", "base"}, "loop": {"energy", "geometry", "base"}}
SOLVER_BASE = {"checks", "pairs", "registry", "modes"}


def _solver_room(module: str) -> str:
    """``geometry``, ``energy``, ``loop``, ``base`` or ``face`` (the solver's other top-level modules)."""
    parts = module.split(".")
    if len(parts) > 3 and parts[2] in SOLVER_ROOMS:
        return parts[2]
    return "base" if parts[-1] in SOLVER_BASE else "face"


@pytest.mark.parametrize("room", sorted(SOLVER_ROOMS) + ["base"])
def test_each_solver_room_imports_only_the_rooms_below_it(room):
    allowed = SOLVER_ROOMS.get(room, set()) | {room}
    wrong = [
        (module, target)
        for module in GRAPH
        if module.startswith("lightning_reg.solver.") and _solver_room(module) == room
        for target in _ours(GRAPH[module]) & GRAPH.keys()
        if target.startswith("lightning_reg.solver.") and _solver_room(target) not in allowed
    ]
    assert not wrong, wrong


def test_the_solver_rooms_hold_their_modules():
    """The rules above would pass on empty rooms: check that each holds what it is named for."""
    rooms = {_solver_room(module) for module in GRAPH if module.startswith("lightning_reg.solver.")}
    assert rooms == {"geometry", "energy", "loop", "base", "face"}
    assert _solver_room("lightning_reg.solver.geometry.spatial") == "geometry"
    assert "lightning_reg.solver.energy.objective" in GRAPH["lightning_reg.solver.loop.optimize"]


def test_the_leaves_import_nothing_of_ours():
    for leaf in LEAVES:
        assert not _ours(GRAPH[f"lightning_reg.{leaf}"]), leaf


def test_no_two_rooms_import_each_other():
    """Rooms depend one way: models on training, commands on everything, never back (also what the
    rules above imply; this one names the two modules of a violation)."""
    edges: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for module, targets in GRAPH.items():
        for target in _ours(targets) & GRAPH.keys():
            rooms = (_room(module), _room(target))
            if rooms[0] != rooms[1] and "lightning_reg" not in rooms and (module, target) not in DEPRECATED_EDGES:
                edges.setdefault(rooms, set()).add((module, target))
    both_ways = [
        (a, b, sorted(edges[(a, b)])[0], sorted(edges[(b, a)])[0]) for a, b in edges if (b, a) in edges and a < b
    ]
    assert not both_ways, both_ways


def test_the_graph_sees_the_imports_that_matter():
    """The rules above would pass on an empty graph: check it holds known edges."""
    assert "lightning_reg.solver.layer" in GRAPH["lightning_reg.solver.register"]
    assert "lightning_reg.cli.register" in GRAPH["lightning_reg.cli.main"]  # imported inside a function
    assert "lightning_reg.data.oasis_datamodule" in GRAPH["lightning_reg.data"]  # by string, in the lazy table
    assert "lightning_reg.training.checkpoints" in GRAPH["lightning_reg.models.bundle"]  # models -> training


@pytest.mark.parametrize("package", ["lightning_reg", "lightning_reg.data"])
def test_type_checkers_see_every_lazily_imported_name(package):
    """The names a package hands out on first use (``_WHERE``) are imported under ``TYPE_CHECKING``
    too, from the same modules, so IDEs and mypy know them."""
    path = PACKAGE.parent / Path(*package.split(".")) / "__init__.py"
    tree = ast.parse(path.read_text())
    (table,) = [node for node in tree.body if isinstance(node, ast.Assign) and node.targets[0].id == "_WHERE"]
    lazy = ast.literal_eval(table.value)
    (guard,) = [
        node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    ]
    typed = {alias.name: node.module.lstrip(".") for node in guard.body for alias in node.names}
    assert typed == lazy
