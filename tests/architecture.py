"""The architecture contract of ``platform/ldlpose``, checked from the code's own imports (``ast``).

Run ``python tests/architecture.py`` for the figures (modules per package, the package import
graph, cycles, imports into a higher layer, function and module sizes) and a non-zero exit on any
breach; ``tests/test_architecture.py`` runs the same checks in the suite, and shows that each one
fails on a deliberately broken copy of the package. ``docs/architecture.md`` explains the layers.

Every import counts, wherever it stands: a function's lazy import and an import under
``TYPE_CHECKING`` tie two modules as much as a module-level one.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "ldlpose"

# Top to bottom. A unit (a subpackage, or a module at the package root) may import units of lower
# layers only; units of one layer are independent of each other.
LAYERS: list[tuple[str, ...]] = [
    ("__main__",),
    ("cli",),
    ("commands",),
    ("search",),
    ("evaluation", "deploy"),
    ("tracking",),
    ("report",),
    ("inference",),
    ("train",),
    # The run config validates every method's hyperparameter model (declared in the method's module)
    # and checks backbone names against the backbone registry: both sit below it (issue 21 item 4).
    ("config",),
    ("methods", "models", "selection"),
    ("data",),
    ("infra",),
    ("metrics",),
    ("geometry", "errors", "_moved"),
    ("_lazy",),  # a module that loads on first use: torch, for geometry and the methods
]
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
# Packages reached only through their public names (their ``__init__``), never a submodule, from
# outside themselves: a backend behind a seam (issue 21 item 3).
SEALED = ("tracking",)
ROOT_MODULES = {"__init__", "__main__", "_lazy", "_moved", "cli", "errors", "geometry", "metrics"}
"""What may stay at the package root: the entry points, the errors, the angle convention and metrics."""


@dataclass
class Report:
    modules: dict[str, Path] = field(default_factory=dict)
    imports: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    cycles: list[list[str]] = field(default_factory=list)
    upward: list[str] = field(default_factory=list)
    sideways: list[str] = field(default_factory=list)
    unlayered: list[str] = field(default_factory=list)
    long_functions: list[str] = field(default_factory=list)
    long_modules: list[str] = field(default_factory=list)
    root_modules: list[str] = field(default_factory=list)
    past_the_face: list[str] = field(default_factory=list)
    function_lines: list[int] = field(default_factory=list)
    module_lines: dict[str, int] = field(default_factory=dict)

    def breaches(self) -> list[str]:
        out = [f"import cycle: {' -> '.join([*c, c[0]])}" for c in self.cycles]
        out += [f"import into a higher layer: {e}" for e in self.upward]
        out += [f"import between independent units of one layer: {e}" for e in self.sideways]
        out += [f"not in any layer: {u}" for u in self.unlayered]
        out += [f"function over {MAX_FUNCTION_LINES} lines: {f}" for f in self.long_functions]
        out += [f"module over {MAX_MODULE_LINES} lines: {m}" for m in self.long_modules]
        out += [f"module at the package root that belongs in a layer package: {m}" for m in self.root_modules]
        out += [f"import of a sealed package's submodule (use its public names): {e}" for e in self.past_the_face]
        return out


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["ldlpose", *parts])


def unit(module: str) -> str:
    """The layer unit of a module: its subpackage, or the module itself at the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _targets(node: ast.AST, modules: set[str], here: str) -> set[str]:
    found: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.startswith("ldlpose"):
                found.add(_deepest(alias.name, modules))
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: resolve against this module's package
            pkg = here.split(".")[: -node.level] if not _is_package(here, modules) else here.split(".")
            base = ".".join([*pkg[: len(pkg) - (node.level - 1)], *([base] if base else [])])
        if base.startswith("ldlpose"):
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else _deepest(base, modules))
    return found


def _is_package(name: str, modules: set[str]) -> bool:
    return any(m.startswith(name + ".") for m in modules)


def _deepest(name: str, modules: set[str]) -> str:
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _layer_of() -> dict[str, int]:
    return {u: i for i, layer in enumerate(LAYERS) for u in layer}


def _check_layers(report: Report) -> None:
    layer = _layer_of()
    for source, targets in sorted(report.imports.items()):
        a = unit(source)
        if a == "__init__":
            continue  # the package's face may name anything (it imports only _moved)
        if a not in layer:
            report.unlayered.append(f"{a} ({source})")
            continue
        for target in sorted(targets):
            b = unit(target)
            if b in (a, "__init__") or b not in layer:
                continue
            edge = f"{source} -> {target}"
            if layer[b] < layer[a]:
                report.upward.append(edge)
            elif layer[b] == layer[a]:
                report.sideways.append(edge)


def _sealed_submodules(tree: ast.AST, here: str, modules: set[str]) -> list[str]:
    """The submodules of a sealed package that module ``here`` (outside it) imports by name."""
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names
                                    if f"{node.module}.{a.name}" in modules)]
        for name in names:
            parts = name.split(".")
            if len(parts) > 2 and parts[0] == "ldlpose" and parts[1] in SEALED and unit(here) != parts[1]:
                found.append(f"{here} -> {name}")
    return found


def _check_sizes(report: Report, tree: ast.AST, name: str, lines: int) -> None:
    report.module_lines[name] = lines
    if lines > MAX_MODULE_LINES:
        report.long_modules.append(f"{name} ({lines} lines)")
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            report.function_lines.append(size)
            if size > MAX_FUNCTION_LINES:
                report.long_functions.append(f"{name}.{node.name} ({size} lines, line {node.lineno})")


def analyse(root: Path = PACKAGE) -> Report:
    report = Report()
    files = sorted(root.rglob("*.py"))
    report.modules = {module_name(p, root): p for p in files}
    names = set(report.modules)
    for name, path in report.modules.items():
        text = path.read_text()
        tree = ast.parse(text, filename=str(path))
        for node in ast.walk(tree):
            for target in _targets(node, names, name):
                if target != name:
                    report.imports[name].add(target)
        _check_sizes(report, tree, name, len(text.splitlines()))
        report.past_the_face += _sealed_submodules(tree, name, names)
        if name.count(".") == 1 and path.name != "__init__.py" and unit(name) not in ROOT_MODULES:
            report.root_modules.append(name)
    graph = {m: {t for t in ts if t in names} for m, ts in report.imports.items()}
    report.cycles = _cycles(graph)
    _check_layers(report)
    return report


def unit_graph(report: Report) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for source, targets in report.imports.items():
        for target in targets:
            if unit(source) != unit(target):
                graph[unit(source)].add(unit(target))
    return graph


def summary(report: Report) -> str:
    sizes = sorted(report.function_lines)
    root = sorted(m.split(".")[1] for m, path in report.modules.items()
                  if m.count(".") == 1 and path.name != "__init__.py")
    longest = max(report.module_lines.values())
    lines = [
        f"modules: {len(report.modules)}; at the package root: {len(root)} ({', '.join(root)})",
        (f"functions: {len(sizes)}; median {sizes[len(sizes) // 2]} lines, longest {sizes[-1]}; "
         f"over {MAX_FUNCTION_LINES}: {len(report.long_functions)}"),
        f"longest module: {longest} lines; over {MAX_MODULE_LINES}: {len(report.long_modules)}",
        f"import cycles: {len(report.cycles)}; imports into a higher layer: {len(report.upward)}",
        "unit imports (layer order, top first):",
    ]
    graph = unit_graph(report)
    for layer in LAYERS:
        for u in layer:
            lines.append(f"  {u} -> {', '.join(sorted(graph.get(u, ()))) or '-'}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``python tests/architecture.py [PACKAGE_DIR] [--draw PNG]``: the figures; exit 1 on a breach."""
    picture = None
    if "--draw" in argv:
        picture = Path(argv[argv.index("--draw") + 1])
        argv = [a for a in argv if a not in ("--draw", str(picture))]
    report = analyse(Path(argv[0]) if argv else PACKAGE)
    print(summary(report))
    if picture is not None:
        draw(report, picture)
    breaches = report.breaches()
    for breach in breaches:
        print("BREACH", breach)
    return 1 if breaches else 0



def draw(report: Report, path: Path) -> None:
    """The unit import graph as a picture: one row per layer, top first, an arrow per import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    rows = LAYERS
    where: dict[str, tuple[float, float]] = {}
    for r, layer in enumerate(rows):
        for i, name in enumerate(layer):
            x = (i + 1) / (len(layer) + 1) if len(layer) > 1 else 0.5 + 0.14 * (-1) ** r  # zig-zag: arrows apart
            where[name] = (x, 1 - r / (len(rows) - 1))
    fig, ax = plt.subplots(figsize=(9, 11))
    for source, targets in unit_graph(report).items():
        for target in targets:
            if source in where and target in where and target != "errors":  # every layer raises its errors
                ax.add_patch(FancyArrowPatch(where[source], where[target], arrowstyle="-|>", mutation_scale=9,
                                             color="#7a8ca3", alpha=0.45, lw=0.8, connectionstyle="arc3,rad=0.12",
                                             shrinkA=12, shrinkB=12))
    for name, (x, y) in where.items():
        lines = report.module_lines
        size = sum(n for m, n in lines.items() if unit(m) == name or m == f"ldlpose.{name}")
        ax.text(x, y, f"{name}\n{size} lines", ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round,pad=0.4", "fc": "#e8eef6", "ec": "#33475b"})
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.05, 1.05)
    ax.axis("off")
    ax.set_title("ldlpose: imports between layer units, top layer first; an arrow points to what is imported\n"
                 "(imports of errors, which every unit may raise, left out)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
