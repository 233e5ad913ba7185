"""The code's layout holds: no import cycles, dependencies point one way, parts by role.

These tests read the source with `ast` (nothing is imported), so they are fast and catch an
import added inside a function as well as one at the top of a module.
"""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "tfl"

# Lower layers never import higher ones. Within a layer, imports are allowed but must not cycle.
LAYERS = [
    ("helpers", ["tfl", "tfl.errors", "tfl.io", "tfl.runtime", "tfl.metrics", "tfl.plotting",
                 "tfl.progress"]),
    ("data, tokenizers, models", ["tfl.data", "tfl.tokenizers", "tfl.models"]),
    ("run settings", ["tfl.training.config", "tfl.run"]),
    ("workflows", ["tfl.training", "tfl.inference", "tfl.edge", "tfl.exercises"]),
    ("entry points", ["tfl.quickstart", "tfl.cli", "tfl.__main__"]),
]


def module_name(path):
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules():
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path, modules):
    """The tfl modules `path` imports, anywhere in it (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from tfl.models import parts` imports a module; `... import build_model` does not.
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules
                     else node.module for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def import_graph():
    modules = all_modules()
    graph = {name: imports_of(path, modules) - {name} for name, path in modules.items()}
    # `tfl/__init__` resolves its public names lazily (strings, not imports): it has no edges.
    graph["tfl"] = set()
    return graph


def layer_of(module):
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    assert best is not None, f"{module} is in no layer; add it to LAYERS in {__file__}"
    return best[0]


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
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


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_dependencies_point_one_way():
    wrong = [f"{source} ({LAYERS[layer_of(source)][0]}) imports {target} "
             f"({LAYERS[layer_of(target)][0]})"
             for source, targets in import_graph().items() for target in targets
             if layer_of(target) > layer_of(source)]
    assert not wrong, "\n".join(wrong)


def python_sources(*folders):
    for folder in folders:
        yield from (REPO / folder).rglob("*.py")


# A layer looked up by its name, or a private attribute of a keras-hub layer.
NAME_LOOKUP = re.compile(r"get_layer\(|\._self_attention|\._feedforward|\._(query|key|value|output)_dense")


def test_layers_are_reached_by_role_outside_tfl_models():
    models = PACKAGE / "models"
    offenders = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
                 for path in python_sources("tfl", "notebooks", "bench")
                 if models not in path.parents
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if NAME_LOOKUP.search(line)]
    assert not offenders, "\n".join(offenders)


def test_only_the_twin_module_imports_tf_keras():
    pattern = re.compile(r"^\s*(import tf_keras|from tf_keras)", re.MULTILINE)
    users = sorted(str(path.relative_to(REPO)) for path in python_sources("tfl", "notebooks", "bench")
                   if pattern.search(path.read_text(encoding="utf-8")))
    assert users == ["tfl/models/twin.py"]
