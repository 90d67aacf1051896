"""Package crossings along a function's static call path (issue 21 item 2), read with Python's ``ast``.

``python bench/crossings.py [PACKAGE_DIR] [--from MODULE:FUNCTION] [--list]`` follows every call and
every reference to a function or class of the package (a function handed to another, as in
``callback.safely("...", trials.finalise, ...)``, counts: it is called there), depth first in source
order from ``ldlpose.search.driver:search_and_report``, expanding each function once. Names are
resolved through module-level and function-level imports (the package imports lazily), re-exports of
a package's ``__init__``, ``self.method`` inside a class, and a class's ``__init__`` when it is
called. Calls on objects it cannot type (``callback.tracker.trial_record``) are not followed, so the
figures are a lower bound of the dynamic path, and the same bound before and after a change.

Printed figures:

* crossings: a function of one unit calling into another unit (``tests/architecture.py``'s units: a
  subpackage, or a module at the package root), counted once per (calling function, unit entered),
  however many names it uses there; type annotations are not calls and do not count;
* back into a unit already left: crossings into a unit the walk had entered before and left for
  another since (search -> data, search -> train, search -> data again: one question asked in two
  places);
* data-root resolutions: call sites on the whole transitive path that turn the configured data
  root into a place (``data_root(...)``, ``resolve_data_root(...)``, ``resolve(...data.root)``).

* modules of other units named to reach them: the modules the walk's import statements name in
  another unit; a package's public face (``ldlpose.tracking``) counts once however much it offers.

By default the walk follows the start unit's own functions (the orchestration, ``search/``) and counts
where they reach out; ``--all`` follows every package function.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "ldlpose"
START = "ldlpose.search.driver:search_and_report"


@dataclass
class Module:
    name: str
    tree: ast.Module
    defs: dict[str, ast.AST] = field(default_factory=dict)  # qualname -> FunctionDef / ClassDef
    bindings: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # name -> (module, attr)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(["ldlpose", *(parts[:-1] if parts[-1] == "__init__" else parts)])


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _import_bindings(nodes, here: str, modules: dict[str, Module]) -> dict[str, tuple[str, str | None]]:
    """Names bound by the import statements among ``nodes``: name -> (module, attribute or None)."""
    out: dict[str, tuple[str, str | None]] = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ldlpose") and alias.asname:
                    out[alias.asname] = (alias.name, None)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = here.split(".")
                keep = parts if here + ".__init__" in modules else parts[:-1]
                base = ".".join([*keep[: len(keep) - (node.level - 1)], *([base] if base else [])])
            if not base.startswith("ldlpose"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out[alias.asname or alias.name] = (sub, None) if sub in modules else (base, alias.name)
    return out


def load(root: Path = PACKAGE) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        name = _module_name(path, root)
        modules[name] = Module(name, ast.parse(path.read_text(), filename=str(path)))
        if path.name == "__init__.py":
            modules[name + ".__init__"] = modules[name]  # marks a package for relative imports
    for module in {id(m): m for m in modules.values()}.values():
        for node in module.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                module.defs[node.name] = node
                if isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                            module.defs[f"{node.name}.{item.name}"] = item
        module.bindings = _import_bindings(ast.walk(module.tree), module.name, modules)
    return modules


def _resolve(modules: dict[str, Module], module: str, attr: str | None, depth: int = 0) -> str | None:
    """``module:qualname`` of the function or class that ``module.attr`` names, following re-exports."""
    if attr is None or module not in modules or depth > 10:
        return None
    found = modules[module]
    if attr in found.defs:
        node = found.defs[attr]
        if isinstance(node, ast.ClassDef) and f"{attr}.__init__" in found.defs:
            return f"{found.name}:{attr}.__init__"
        return f"{found.name}:{attr}"
    if attr in found.bindings:
        target, name = found.bindings[attr]
        return _resolve(modules, target, name, depth + 1)
    return None


def _annotations(node: ast.AST) -> list[ast.AST]:
    found: list[ast.AST] = []
    for n in ast.walk(node):
        if isinstance(n, ast.arg | ast.AnnAssign) and n.annotation is not None:
            found.append(n.annotation)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.returns is not None:
            found.append(n.returns)
    return found


def _callees(modules: dict[str, Module], key: str) -> list[tuple[str, str]]:
    """The package functions ``key`` calls or references, in source order, each once, with the module
    it names to reach each (the one in its import statement: a package's public face, or a submodule)."""
    module_name, qualname = key.split(":")
    module = modules[module_name]
    node = module.defs[qualname]
    local = {**module.bindings, **_import_bindings(ast.walk(node), module_name, modules)}
    cls = qualname.split(".")[0] if "." in qualname else None
    out: list[tuple[str, str]] = []
    annotations = {id(n) for a in _annotations(node) for n in ast.walk(a)}  # types, not calls
    refs = sorted((n for n in ast.walk(node) if isinstance(n, ast.Name | ast.Attribute) and id(n) not in annotations),
                  key=lambda n: (n.lineno, n.col_offset))
    for ref in refs:
        target, via = None, module_name
        if isinstance(ref, ast.Name) and isinstance(ref.ctx, ast.Load):
            if ref.id in local:
                target = _resolve(modules, *local[ref.id]) if local[ref.id][1] else None
                via = local[ref.id][0]
            elif ref.id in module.defs:
                target = _resolve(modules, module_name, ref.id)
        elif isinstance(ref, ast.Attribute) and isinstance(ref.value, ast.Name):
            owner = ref.value.id
            if owner == "self" and cls and f"{cls}.{ref.attr}" in module.defs:
                target = f"{module_name}:{cls}.{ref.attr}"
            elif owner in local and local[owner][1] is None:  # a module alias: trials.finalise
                target, via = _resolve(modules, local[owner][0], ref.attr), local[owner][0]
        if target and target != key and target not in (t for t, _ in out):
            out.append((target, via))
    return out


@dataclass
class Path_:
    crossings: list[tuple[str, str]] = field(default_factory=list)
    back: list[tuple[str, str]] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    doors: set[str] = field(default_factory=set)  # the other units' modules named to reach them


def walk(modules: dict[str, Module], start: str = START, everything: bool = False) -> Path_:
    """The crossings out of the start's unit, following its own functions only (``everything``:
    following every function of the package, the whole transitive closure)."""
    result = Path_()
    seen = {start}
    home = _unit(start.split(":")[0])
    entered, last = {home}, [home]
    stepped: set[tuple[str, str]] = set()

    def visit(key: str) -> None:
        result.functions.append(key)
        for callee, via in _callees(modules, key):
            a, b = _unit(key.split(":")[0]), _unit(callee.split(":")[0])
            if a != b:
                result.doors.add(via)
            if a != b and (key, b) not in stepped:  # a function stepping into a unit: once, whatever it uses there
                stepped.add((key, b))
                result.crossings.append((key, callee))
                if b in entered and b != last[0]:  # it went elsewhere since, and comes back
                    result.back.append((key, callee))
                entered.add(b)
                last[0] = b
            if callee not in seen and (everything or b == home):
                seen.add(callee)
                visit(callee)

    visit(start)
    return result


def root_resolutions(modules: dict[str, Module], functions: list[str]) -> list[str]:
    """Call sites in ``functions`` that turn a configured data root into a place: ``data_root(...)``,
    ``resolve_data_root(...)``, or resolving a location whose argument is a data root."""
    found = []
    for key in functions:
        module_name, qualname = key.split(":")
        for node in ast.walk(modules[module_name].defs[qualname]):
            if not isinstance(node, ast.Call):
                continue
            func = ast.unparse(node.func).split(".")[-1]
            args = " ".join(ast.unparse(a) for a in node.args)
            if func in ("data_root", "resolve_data_root") or (func.startswith("resolve") and "data.root" in args):
                found.append(f"{key}: {ast.unparse(node)}")
    return found


def main(argv: list[str]) -> int:
    start = START
    if "--from" in argv:
        start = argv[argv.index("--from") + 1]
        argv = [a for a in argv if a not in ("--from", start)]
    listing, everything = "--list" in argv, "--all" in argv
    argv = [a for a in argv if a not in ("--list", "--all")]
    modules = load(Path(argv[0]) if argv else PACKAGE)
    path = walk(modules, start, everything)
    roots = root_resolutions(modules, walk(modules, start, everything=True).functions)
    scope = "every package function" if everything else f"the functions of {_unit(start.split(':')[0])}/"
    print(f"from {start}, following {scope}: {len(path.functions)} functions")
    print(f"crossings between units: {len(path.crossings)}; back into a unit already left: {len(path.back)}")
    print(f"data-root resolutions on the whole path: {len(roots)}")
    by_unit: dict[str, int] = {}
    for _, callee in path.crossings:
        by_unit[_unit(callee.split(":")[0])] = by_unit.get(_unit(callee.split(":")[0]), 0) + 1
    print("crossings by unit entered: " + ", ".join(f"{u} {n}" for u, n in sorted(by_unit.items())))
    print(f"modules of other units named to reach them: {len(path.doors)} ({', '.join(sorted(path.doors))})")
    if listing:
        for caller, callee in path.crossings:
            mark = " (back)" if (caller, callee) in path.back else ""
            print(f"  {caller} -> {callee}{mark}")
        for site in roots:
            print(f"  root resolved: {site}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
