"""How the package's modules use each other, read from their sources: no private name crosses a module, and
the grading modules import each other without a circle (an import only for type checkers does not count)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "rai_lab"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def imports(path: Path, at_load: bool = False):
    """(module, name or None) of each import of the package's that runs (those under `if TYPE_CHECKING:` do not);
    `at_load`: only those that run when the module is imported (not those in a function, until it is called)."""
    def walk(node):
        for child in ast.iter_child_nodes(node):
            if at_load and isinstance(child, FUNCTIONS):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    yield from walk_one(other)
            else:
                yield from walk_one(child)

    def walk_one(node):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("rai_lab"):
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("rai_lab"):
                    yield alias.name, None
        yield from walk(node)

    yield from walk(ast.parse(path.read_text(encoding="utf-8")))


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_crosses_a_module():
    """Does every module use only the public names of the package's other modules (imported, or read as
    `module._name`)?"""
    crossing = []
    for name, path in MODULES.items():
        found = list(imports(path))
        crossing += [f"{name}: {module}.{imported}" for module, imported in found
                     if imported and private(imported) and module != name]
        bound = {imported: f"{module}.{imported}" for module, imported in found if f"{module}.{imported}" in MODULES}
        bound |= {module.split(".")[0]: module for module, imported in found if imported is None}
        crossing += [f"{name}: {bound[node.value.id]}.{node.attr}" for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.Attribute) and private(node.attr) and isinstance(node.value, ast.Name)
                     and node.value.id in bound and bound[node.value.id] != name]
    assert crossing == []


def test_the_grading_modules_import_each_other_without_a_circle():
    """Can the grading modules be ordered so that each imports only those before it?"""
    grading = {name for name in MODULES if name.startswith("rai_lab.grading.")}
    needs = {name: set() for name in grading}
    for name in grading:
        for module, imported in imports(MODULES[name]):
            target = f"{module}.{imported}" if imported and f"{module}.{imported}" in grading else module
            if target in grading and target != name:
                needs[name].add(target)
    ordered: list[str] = []
    while len(ordered) < len(grading):
        ready = sorted(name for name in grading if name not in ordered and needs[name] <= set(ordered))
        assert ready, f"a circle among {sorted(set(grading) - set(ordered))}"
        ordered.extend(ready)


def test_the_sandboxed_code_imports_nothing_of_the_instructor_nor_the_worker():
    """Does the code that runs inside a learner's sandbox (rai_lab.grading.sandboxed) import nothing from the
    instructor's process (rai_lab.grading.instructor) or a grading worker's (rai_lab.grading.worker), nor the
    package's public names that live there (`from rai_lab.grading import Grader`)?"""
    sandboxed = {name: path for name, path in MODULES.items() if name.startswith("rai_lab.grading.sandboxed")}
    assert {"rai_lab.grading.sandboxed.forkserver", "rai_lab.grading.sandboxed.guard"} <= set(sandboxed)
    outside = ("rai_lab.grading.instructor", "rai_lab.grading.worker")
    found = []
    for name, path in sandboxed.items():
        for module, imported in imports(path):
            target = f"{module}.{imported}" if imported else module
            if module == "rai_lab.grading" and imported != "sandboxed" or target.startswith(outside):
                found.append(f"{name}: {target}")
    assert found == []


# Server code: the Azure stand-in, the Spark Connect server, the grader's processes, the classroom's. (The kernel's
# side of grading, rai_lab.grading.sandboxed, runs in the kernel.)
SERVERS = ("rai_lab.azure.standin", "rai_lab.spark.server", "rai_lab.grading.instructor", "rai_lab.grading.worker",
           "rai_lab.classroom")


def loaded_with(name: str) -> set[str]:
    """The package's modules that importing `name` loads: its imports at load time, their packages' __init__ too,
    and so on."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in MODULES:
            continue
        seen.add(current)
        parts = current.split(".")
        todo += [".".join(parts[:i]) for i in range(2, len(parts))]
        for module, imported in imports(MODULES[current], at_load=True):
            todo.append(f"{module}.{imported}" if imported and f"{module}.{imported}" in MODULES else module)
    return seen


def test_the_kernel_imports_no_server_code():
    """Does the learner's kernel (the kit cell's modules, the check cells', the cassette and the quota's pacer) load
    no server: not the Azure stand-in (rai_lab.azure.standin), not the Spark Connect server (rai_lab.spark.server),
    nothing of the grader's processes nor of the classroom (tests/azure/test_cassette.py checks the same in a
    Python that imports them)?"""
    kernel = set().union(*(loaded_with(name) for name in
                           ("rai_lab.kit", "rai_lab.checking", "rai_lab.azure.cassette.player", "rai_lab.azure.pacing")))
    assert {"rai_lab.azure.provider", "rai_lab.azure.quota", "rai_lab.spark.session"} <= kernel
    assert sorted(name for name in kernel if name.startswith(SERVERS)) == []
