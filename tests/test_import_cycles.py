"""No import cycle anywhere in stk_nmt: a walk over every module's imports (at the top and inside
functions alike: an import deferred into a function to dodge a cycle is still a cycle).

A module's edges go to the stk_nmt modules it imports. `from ..precision import x` imports the
module precision (its parent packages are already being imported by then, by design), and
`from .pkg import name` imports pkg's __init__ and, when `name` is a submodule, that module too.
"""

import ast
from pathlib import Path

import stk_nmt

ROOT = Path(stk_nmt.__file__).parent
PACKAGE = "stk_nmt"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict:
    return {module_name(path): path for path in ROOT.rglob("*.py")}


def imports_of(name: str, path: Path, known: set) -> set:
    """The stk_nmt modules that the module `name` (file `path`) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [source] if node.module else []
            targets += [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in known]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def find_cycle(graph: dict):
    """One import cycle as a list of modules, or None (depth-first search, colours)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_walk_sees_the_imports_it_must():
    found = modules()
    graph = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    # a relative import of a sibling module, a package's import of its submodule, an absolute import
    assert "stk_nmt.core.precision" in graph["stk_nmt.core.aggregates.lambda_forms"]
    assert "stk_nmt.core.aggregates" in graph["stk_nmt.core"]
    assert "stk_nmt.core" in graph["stk_nmt.criterions.aggregated"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package():
    found = modules()
    graph = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)
