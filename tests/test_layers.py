"""The package's import layers, checked from the source (``ast``), function-level imports included.

Layers, lowest first (a module may import its own subpackage and any lower layer, never a higher one):

0. bottom: ``pdfnet`` (the root ``__init__``), ``pdfnet.errors``, ``pdfnet.config``, ``pdfnet.utils``;
1. middle: ``models``, ``losses``, ``data``, ``depth``, ``metrics`` -- each imports only the bottom (so models
   and losses never import each other, in either direction);
2. ``inference``;
3. ``engine``;
4. ``bench``: benchmark harness and reference implementations, imported by ``cli`` only (the library never
   imports it);
5. ``cli``.

Besides the layers:

* no import cycle between modules, nor between subpackages, counting imports inside functions
  (``if TYPE_CHECKING:`` imports never run and are left out of the cycle check, not of the layer check);
* an import inside a function is for an optional or heavy dependency only: a package of
  :data:`LAZY_THIRD_PARTY`, ``torch`` itself in a module of :data:`TORCH_FREE` (which must import without
  torch), or a ``pdfnet`` module that pulls in such a dependency. Every such import carries a comment (on its
  line or on the line above its block) saying why it is deferred;
* the modules of :data:`TORCH_FREE` reach no torch (nor a package that imports torch) through their
  module-level imports, followed transitively through ``pdfnet``.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pdfnet"

#: subpackage (or top-level module) -> layer rank
LAYERS: dict[str, int] = {
    "pdfnet": 0, "errors": 0, "config": 0, "utils": 0,
    "models": 1, "losses": 1, "data": 1, "depth": 1, "metrics": 1,
    "inference": 2,
    "engine": 3,
    "bench": 4,
    "cli": 5,
}
BOTTOM, MIDDLE = 0, 1

#: Optional or heavy third-party packages that may be imported inside a function (module prefixes).
LAZY_THIRD_PARTY: tuple[str, ...] = (
    "onnx", "onnxruntime", "onnxscript",  # the ``export`` extra
    "matplotlib",                         # plots of ``pdfnet report``
    "transformers",                       # Depth Anything V2 (depth maps only)
    "torch.utils.tensorboard", "tensorboard",  # event files of a training run
    "timm",                               # ``timm:<name>`` backbones only
    "gradio", "huggingface_hub", "pymatting",  # app / Hub / matting extras
    "py_sod_metrics", "skimage",          # reference metrics of ``pdfnet bench`` (dev extras)
)
#: Packages whose import loads torch (what a torch-free module must not reach at module level).
TORCH_PACKAGES: tuple[str, ...] = ("torch", "torchvision", "timm", "transformers", "safetensors.torch",
                                   "onnxscript")

#: Modules that import without torch: the start-up of ``pdfnet --version/--help``, ``config``, ``report``,
#: ``data check`` and folder scoring (``score``, ``eval --pred-dir/--gt-dir``) goes through them.
TORCH_FREE: tuple[str, ...] = (
    "pdfnet", "pdfnet.errors", "pdfnet.config", "pdfnet.config.schema", "pdfnet.config.loader",
    "pdfnet.utils", "pdfnet.utils.io", "pdfnet.utils.parallel",
    "pdfnet.metrics", "pdfnet.metrics.core", "pdfnet.metrics.dis", "pdfnet.metrics.folders",
    "pdfnet.metrics.hce", "pdfnet.metrics.rdp", "pdfnet.metrics.report", "pdfnet.metrics.skeleton",
    "pdfnet.metrics.wfm", "pdfnet.metrics.published",
    "pdfnet.data", "pdfnet.data.check", "pdfnet.data.dis5k",
    "pdfnet.cli", "pdfnet.cli.main", "pdfnet.cli.common", "pdfnet.cli.config_cmd", "pdfnet.cli.report",
    "pdfnet.cli.score", "pdfnet.cli.eval", "pdfnet.cli.data",
)


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str  # a module name (pdfnet modules resolved to the module actually imported)
    line: int
    in_function: bool
    type_only: bool
    commented: bool


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return mods


MODULES = _modules()


def _targets(mod: str, is_pkg: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = mod.split(".") if is_pkg else mod.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        name = ".".join(base + ([node.module] if node.module else []))
    else:
        name = node.module or ""
    # ``from pdfnet.x import y`` imports the module pdfnet.x.y when there is one, else a name of pdfnet.x
    return [f"{name}.{a.name}" if f"{name}.{a.name}" in MODULES else name for a in node.names]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _has_comment(lines: list[str], first: int, last: int) -> bool:
    """A real comment (not only ``noqa``) on the line above ``first`` or on lines ``first..last``."""
    for i in range(max(first - 1, 1), last + 1):
        text = lines[i - 1]
        if "#" in text:
            comment = text.split("#", 1)[1].strip()
            if comment and not comment.lower().startswith("noqa"):
                return True
    return False


def _edges_of(mod: str, path: Path, is_pkg: bool) -> list[Edge]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    edges: list[Edge] = []

    def visit_body(body: list[ast.stmt], in_function: bool, type_only: bool) -> None:
        block: list[ast.stmt] = []
        for stmt in [*body, None]:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                block.append(stmt)
                continue
            if block:
                commented = _has_comment(lines, block[0].lineno, block[-1].end_lineno or block[-1].lineno)
                for imp in block:
                    for dst in _targets(mod, is_pkg, imp):
                        edges.append(Edge(mod, dst, imp.lineno, in_function, type_only, commented))
                block = []
            if stmt is not None:
                visit_node(stmt, in_function, type_only)

    def visit_node(node: ast.AST, in_function: bool, type_only: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function = True
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            visit_body(node.body, in_function, True)
            visit_body(node.orelse, in_function, type_only)
            return
        for _, value in ast.iter_fields(node):
            if not isinstance(value, list):
                continue
            stmts = [v for v in value if isinstance(v, ast.stmt)]
            if stmts:
                visit_body(stmts, in_function, type_only)
            for v in value:
                if isinstance(v, (ast.ExceptHandler, ast.match_case)):
                    visit_node(v, in_function, type_only)

    visit_body(ast.parse(source, filename=str(path)).body, False, False)
    return edges


EDGES: list[Edge] = [e for mod, (path, is_pkg) in MODULES.items() for e in _edges_of(mod, path, is_pkg)]
INTERNAL = [e for e in EDGES if e.dst == "pdfnet" or e.dst.startswith("pdfnet.")]


def _where(e: Edge) -> str:
    kind = "function-level " if e.in_function else ""
    return f"{MODULES[e.src][0].relative_to(PACKAGE.parent)}:{e.line}: {kind}import of {e.dst}"


def subpackage(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "pdfnet"


def _sccs(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components that contain a cycle (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while not comp or w != v:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _cycle_through(start: str, comp: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest closed path ``start -> ... -> start`` inside ``comp`` (breadth first)."""
    prev: dict[str, str] = {start: start}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [*reversed(path), start]
                if w in comp and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a closed path) per strongly connected component that has one."""
    return [_cycle_through(min(comp), comp, graph) for comp in _sccs(graph)]


def test_walk_sees_the_package():
    # guards against a walker that silently finds nothing (then every other check would pass)
    assert {"pdfnet.cli.main", "pdfnet.engine.trainer", "pdfnet.metrics.dis"} <= set(MODULES)
    assert len(INTERNAL) > 100
    assert any(e.in_function for e in EDGES)
    unknown = sorted({subpackage(m) for m in MODULES} - set(LAYERS))
    assert not unknown, f"subpackages without a layer: {unknown}"


def test_no_module_cycle():
    graph: dict[str, set[str]] = {}
    for e in INTERNAL:
        if not e.type_only and e.dst != e.src:
            graph.setdefault(e.src, set()).add(e.dst)
    cycles = _cycles(graph)
    assert not cycles, "module import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_subpackage_cycle():
    graph: dict[str, set[str]] = {}
    lines: dict[tuple[str, str], Edge] = {}
    for e in INTERNAL:
        a, b = subpackage(e.src), subpackage(e.dst)
        if a != b and not e.type_only:
            graph.setdefault(a, set()).add(b)
            lines.setdefault((a, b), e)
    cycles = _cycles(graph)
    msg = []
    for c in cycles:
        msg.append(" -> ".join(c))
        msg += [f"    {_where(lines[(a, b)])}" for a, b in zip(c, c[1:])]
    assert not cycles, "subpackage import cycles:\n" + "\n".join(msg)


def test_layers():
    bad = []
    for e in INTERNAL:
        a, b = subpackage(e.src), subpackage(e.dst)
        if a == b:
            continue
        if b == "bench" and a != "cli":
            bad.append(f"{_where(e)}: only pdfnet.cli imports pdfnet.bench")
        elif LAYERS[b] > LAYERS[a]:
            bad.append(f"{_where(e)}: {a} (layer {LAYERS[a]}) imports the higher layer {b} ({LAYERS[b]})")
        elif LAYERS[a] == LAYERS[b] == MIDDLE:
            bad.append(f"{_where(e)}: {a} imports {b}; the middle layer imports only the bottom")
        elif a == "pdfnet":
            bad.append(f"{_where(e)}: the root package imports nothing (fast start-up)")
    assert not bad, "layer violations:\n" + "\n".join(dict.fromkeys(bad))


def _third_party_ok(mod: str, dst: str) -> bool:
    if any(dst == p or dst.startswith(p + ".") for p in LAZY_THIRD_PARTY):
        return True
    return (dst == "torch" or dst.startswith("torch.")) and mod in TORCH_FREE


def test_function_level_imports_are_deferred_on_purpose():
    bad = []
    for e in EDGES:
        if not e.in_function or e.type_only:
            continue
        internal = e.dst == "pdfnet" or e.dst.startswith("pdfnet.")
        if not internal and not _third_party_ok(e.src, e.dst):
            bad.append(f"{_where(e)}: not an optional heavy dependency (LAZY_THIRD_PARTY; "
                       "torch only in a torch-free module): import it at module level")
        elif not e.commented:
            bad.append(f"{_where(e)}: say in a comment why this import is deferred")
    assert not bad, "function-level imports:\n" + "\n".join(dict.fromkeys(bad))


def test_torch_free_modules_reach_no_torch_at_import():
    top: dict[str, list[Edge]] = {}
    for e in EDGES:
        if not e.in_function and not e.type_only:
            top.setdefault(e.src, []).append(e)
    bad = []
    for start in TORCH_FREE:
        assert start in MODULES, f"TORCH_FREE names a module that does not exist: {start}"
        seen, todo, via = {start}, [start], {start: None}
        while todo:
            m = todo.pop()
            for e in top.get(m, []):
                if any(e.dst == p or e.dst.startswith(p + ".") for p in TORCH_PACKAGES):
                    chain = [m]
                    while via[chain[-1]] is not None:
                        chain.append(via[chain[-1]])
                    bad.append(f"{start}: {' <- '.join(chain)} imports {e.dst} (line {e.line})")
                elif e.dst in MODULES and e.dst not in seen:
                    seen.add(e.dst)
                    via[e.dst] = m
                    todo.append(e.dst)
                # importing pdfnet.a.b runs pdfnet/a/__init__.py first
                parent = e.dst.rsplit(".", 1)[0]
                while parent.startswith("pdfnet") and parent in MODULES and parent not in seen:
                    seen.add(parent)
                    via[parent] = m
                    todo.append(parent)
                    parent = parent.rsplit(".", 1)[0] if "." in parent else ""
    assert not bad, "torch reached at import time:\n" + "\n".join(bad)
