"""The package's shape (DESIGN.md §2): layers that import only downwards, no import cycle, no
private name used across modules, modules of a readable size, and only the CLI talks to a person."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "musivid"

# every module's layer, by its top-level name (a folder or a module; a new one must be given a layer
# here, and in the README's section on layers): DESIGN.md §2
LAYERS = {
    0: {"errors", "config", "files", "rng", "progress", "text"},  # base
    1: {"song", "images", "video", "perf"},  # stages: pure transformations of typed values
    2: {"project"},  # state: the only code that knows the project's files
    3: {"pipeline", "session", "runner", "actions", "scale"},  # run: the order of the stages, actions on a project
    4: {"cli", "__main__", "studio"},  # interfaces: the only code that talks to a person
}


def modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG).with_suffix("")
        name = ".".join(rel.parts)
        out["" if name == "__init__" else name.removesuffix(".__init__")] = p
    return out


def layer(mod: str) -> int:
    top = mod.split(".")[0]
    for k, names in LAYERS.items():
        if top in names:
            return k
    raise AssertionError(f"musivid/{mod.replace('.', '/')}.py has no layer: add it to LAYERS")


def imports(mod: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported musivid module, names taken from it, line) for every import, function-level too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = mod.split(".")[:-1] if path.name != "__init__.py" else mod.split(".") if mod else []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "musivid":
                target = node.module.removeprefix("musivid").lstrip(".")
            else:
                continue
            names = [a.name for a in node.names]
            if not node.module:  # from . import x, y: modules
                for n in names:
                    out.append(((f"{target}.{n}" if target else n), [], node.lineno))
            else:
                out.append((target, names, node.lineno))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "musivid":
                    out.append((a.name.removeprefix("musivid").lstrip("."), [], node.lineno))
    return out


def resolve(target: str, known: dict[str, Path]) -> str | None:
    while target and target not in known:
        target = target.rsplit(".", 1)[0] if "." in target else ""
    return target or None


def graph():
    known = modules()
    edges = {}
    for mod, path in known.items():
        if not mod:
            continue  # musivid/__init__.py: lazy re-exports by name only
        out = []
        for t, names, line in imports(mod, path):
            subs = [n for n in names if f"{t}.{n}" in known]  # from .song import audio: the module song.audio
            out += [(f"{t}.{n}", [], line) for n in subs]
            if len(subs) < len(names) or not names:
                out.append((resolve(t, known), [n for n in names if n not in subs], line))
        edges[mod] = out
    return known, edges


def test_layers_import_only_downwards():
    _, edges = graph()
    bad = [f"musivid/{a}.py:{line} (L{layer(a)}) imports {b} (L{layer(b)})"
           for a, targets in edges.items() for b, _, line in targets if b and b != a and layer(b) > layer(a)]
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    _, edges = graph()
    adj = {a: sorted({b for b, _, _ in ts if b and b != a and not a.startswith(b + ".")}) for a, ts in edges.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in adj.get(n, []):
            if state.get(m) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(adj):
        if n not in state:
            visit(n)


def test_no_private_name_is_imported_across_modules():
    _, edges = graph()
    bad = [f"musivid/{a}.py:{line} imports {n} from {b}" for a, ts in edges.items() for b, names, line in ts
           for n in names if b != a and n.startswith("_") and not n.startswith("__")]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("mod", sorted(m for m in modules() if m))
def test_module_size(mod):
    n = len(modules()[mod].read_text(encoding="utf-8").splitlines())
    assert n <= 600, f"musivid/{mod}.py has {n} lines: split it by responsibility (DESIGN.md §2)"


def test_only_the_cli_prints_or_exits():
    bad = []
    for mod, path in modules().items():
        if layer(mod or "errors") == 4 or not mod:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f"{getattr(f.value, 'id', '')}.{f.attr}" if isinstance(
                    f, ast.Attribute) else ""
                if name in ("print", "input", "sys.exit", "exit", "click.echo", "os._exit"):
                    bad.append(f"musivid/{mod}.py:{node.lineno} calls {name}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The checks above can fail: a fake package with both faults is caught."""
    fake = tmp_path / "musivid"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "song").mkdir()
    (fake / "song" / "__init__.py").write_text("")
    (fake / "song" / "audio.py").write_text("from ..pipeline import make_video\n")
    (fake / "pipeline.py").write_text("def make_video():\n    from .song import audio\n")
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    with pytest.raises(AssertionError, match="imports pipeline"):
        test_layers_import_only_downwards()
    with pytest.raises(AssertionError, match="import cycle"):
        test_no_import_cycle()


def test_the_studio_works_through_the_pipeline_not_the_stages():
    """DESIGN.md §2: the studio (like the CLI) changes a project only through pipeline/edit and the
    project's accessors; it never calls a stage (L1) itself."""
    _, edges = graph()
    bad = [f"musivid/{a.replace('.', '/')}.py:{line} imports {b}" for a, ts in edges.items() if a.startswith("studio")
           for b, _, line in ts if b and layer(b) == 1]
    assert not bad, "\n".join(bad)
