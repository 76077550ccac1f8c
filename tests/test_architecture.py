"""The layout holds (docs/ARCHITECTURE.md, "The tree"): imports run one way between the
domains, no modules import each other in a circle, and HTML is marked safe in one place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHATAPP = ROOT / "chatapp"

# Each domain may import the domains below it, never one above. The modules at the top of
# chatapp/ (settings, asgi, apps, admin, checks, the models face, migrations) wire the domains
# together: they may import any domain, and no domain imports them.
LAYERS = {
    "core": 0,
    "rendering": 0,
    "providers": 1,
    "accounts": 1,
    "attachments": 2,
    # Each person's own API keys: reads the catalog's routes, used by turns and web.
    "credentials": 2,
    "conversations": 3,
    "turns": 4,
    # Export and import: reads and writes conversations, used by web only.
    "exchange": 4,
    "web": 5,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The chatapp modules a file imports (absolute or relative), type-only imports included."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            stem = ".".join([*base, node.module] if node.module else base)
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "chatapp" or name.startswith("chatapp.")}


def modules() -> dict[str, set[str]]:
    files = [p for p in CHATAPP.rglob("*.py") if "migrations" not in p.parts]
    names = {module_name(p) for p in files}
    graph = {}
    for path in files:
        # "from .x import y" names y, which may be a module or a name in x: keep modules.
        graph[module_name(path)] = {n for n in imports_of(path) if n in names} - {module_name(path)}
    return graph


def domain(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_domains_import_only_the_domains_below_them():
    upward = []
    for module, imported in modules().items():
        here = domain(module)
        if here not in LAYERS:
            continue  # the wiring at the top of chatapp/
        for target in imported:
            there = domain(target)
            if there == here or target == "chatapp":
                continue
            if there not in LAYERS or LAYERS[there] >= LAYERS[here]:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_modules_import_each_other_in_a_circle():
    graph = modules()
    cycles, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []


def test_the_graph_is_read_from_the_real_imports():
    """The checks above would pass vacuously on a parser that found nothing."""
    graph = modules()
    assert "chatapp.turns.run" in graph["chatapp.turns.manager"]
    assert "chatapp.providers.params" in graph["chatapp.providers.catalog"]
    assert "chatapp.conversations.models" in graph["chatapp.turns.services"]


SAFE_MARKERS = re.compile(r"mark_safe\(|\|safe\b|SafeString\(")


def test_html_is_marked_safe_only_by_the_one_renderer():
    """docs/SECURITY.md rule 2: markdown -> HTML -> sanitiser, and nothing else vouches for
    HTML."""
    places = [*CHATAPP.rglob("*.py"), *(ROOT / "templates").rglob("*.html")]
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in places
        if path != CHATAPP / "rendering.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SAFE_MARKERS.search(line)
    ]
    assert offenders == []
    assert SAFE_MARKERS.search((CHATAPP / "rendering.py").read_text())
