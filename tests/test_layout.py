"""The package layout: layers, import directions, public surfaces, sizes and docs (issue 11).

Every module of ``cascade/`` is parsed with ``ast`` and each of its imports of ``cascade`` (top of
the file or inside a function) is checked:

- layers: a module imports only its own package and packages of a lower layer (:data:`LAYERS`); the
  engine (``features``, ``forest``) imports nothing of cascade but itself and ``errors``, and ``io``
  never imports ``pipeline``, ``project``, ``training``, ``batch``, ``cluster``, ``demo`` or ``cli``;
- public surfaces: another package is imported as the package itself (``from ..io import
  write_image``), never one of its modules, and only names its ``__all__`` lists;
- sizes: at most 8 modules at the top of ``cascade/``, no module over 400 lines, no function body
  over :data:`MAX_BODY` lines (numba kernel modules are exempt from the last rule, see
  :data:`NUMBA_KERNELS`).

Then: the public API (``cascade.__all__``, imported lazily), that the README and the notebooks use
only public names, numpydoc sections on every public function, that ``docs/architecture.md`` and the
README's layout table are true, and that CLI messages name only options that exist.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cascade"

#: Layer of each top-level module or package; a module may import its own package and lower layers.
#: ``_config`` and ``_malloc`` are private to cascade as a whole (shared tunables, the allocator tuning
#: the CLI and the cluster workers apply), so every package may import them.
LAYERS: dict[str, int] = {
    "errors": 0,
    "axes": 1,
    "_config": 1,
    "progress": 1,
    "_malloc": 1,
    "features": 2,
    "forest": 2,
    "io": 3,
    "pipeline": 4,
    "objects": 4,
    "project": 5,
    "training": 6,
    "batch": 7,
    "cluster": 7,
    "demo": 8,
    "cli": 9,
    "__main__": 10,
    "__init__": 10,
}
#: The engine: pure computation, importing nothing of cascade but itself and the errors.
ENGINE = {"features": {"errors"}, "forest": {"errors"}}
#: Never imported by ``io`` (reading and writing images knows nothing of what computes them).
NOT_FROM_IO = {"pipeline", "project", "training", "batch", "cluster", "demo", "cli"}
#: Imports against the layers, each made inside a function, with the reason.
LAZY_UPWARD = {
    ("project", "training"): "open_project(retrain=True) trains an .ilp's forests from its stored labels",
}
#: Names another package may take from the root package (defined there before anything is imported).
FROM_ROOT = {"__version__"}
MAX_TOP_LEVEL = 8
MAX_LINES = 400
#: Function bodies should stay under ~40 lines; longer than this fails.
MAX_BODY = 60
#: numba kernels are written as one loop nest per function (splitting them costs speed): exempt from
#: :data:`MAX_BODY`, not from :data:`MAX_LINES`.
NUMBA_KERNELS = {"features/_filters.py", "forest/_kernels.py"}


@dataclass(frozen=True)
class Import:
    """One ``from cascade... import ...`` (or ``import cascade...``) in a module."""

    module: str  # importing module, e.g. "cascade.batch.plan"
    target: str  # imported module, e.g. "cascade.io"
    names: tuple[str, ...]
    line: int
    lazy: bool  # inside a function


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    lazy_nodes = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for inner in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = tuple(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            target, names = node.names[0].name, ()
        else:
            continue
        if target == "cascade" or target.startswith("cascade."):
            found.append(Import(name, target, names, node.lineno, id(node) in lazy_nodes))
    return found


def _top(module: str) -> str:
    """The top-level module or package of ``cascade.x.y``: ``x`` (``__init__`` for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _is_package(top: str) -> bool:
    return (PACKAGE / top / "__init__.py").is_file()


def _public_names(top: str) -> set[str]:
    """The ``__all__`` of a package's ``__init__`` (read from its source)."""
    tree = ast.parse((PACKAGE / top / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _problems(imp: Import) -> list[str]:
    """What is wrong with one import, if anything."""
    where = f"{imp.module}:{imp.line} imports {imp.target}"
    source, target = _top(imp.module), _top(imp.target)
    if source == target:
        return []
    if target == "__init__":
        extra = sorted(set(imp.names) - FROM_ROOT)
        return [f"{where} {extra}: packages take only {sorted(FROM_ROOT)} from the root"] if extra else []
    problems = []
    if source in ENGINE and target not in ENGINE[source]:
        problems.append(f"{where}: the engine imports nothing of cascade but itself and errors")
    if source == "io" and target in NOT_FROM_IO:
        problems.append(f"{where}: io never imports {target}")
    if LAYERS[target] >= LAYERS[source] and not (imp.lazy and (source, target) in LAZY_UPWARD):
        problems.append(f"{where}: layer {LAYERS[source]} ({source}) may not import layer {LAYERS[target]}")
    if _is_package(target):
        if imp.target != f"cascade.{target}":
            problems.append(f"{where}: import the package cascade.{target}, not its modules")
        else:
            hidden = set(imp.names) - _public_names(target)
            if hidden:
                problems.append(f"{where}: {sorted(hidden)} not in cascade.{target}.__all__")
    return problems


def test_every_top_level_module_and_package_has_a_layer() -> None:
    tops = {p.stem for p in PACKAGE.glob("*.py")} | {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert tops == set(LAYERS)


def test_import_directions_and_public_surfaces() -> None:
    problems = [problem for path in _modules() for imp in _imports(path) for problem in _problems(imp)]
    assert problems == []


def test_the_checks_catch_bad_imports() -> None:
    """The rules above fail on the imports the issue found (so the test above can fail)."""
    bad = [
        Import("cascade.io.export", "cascade.pipeline", ("StageResult",), 1, False),  # io -> pipeline
        Import("cascade.io.scratch", "cascade.batch", ("run_batch",), 1, True),  # io -> batch, even lazily
        Import("cascade.batch.plan", "cascade.io._resume", ("resumable_blocks",), 1, False),  # private module
        Import("cascade.training.fit", "cascade.features.graph", ("compute_features",), 1, False),  # module
        Import("cascade.features.graph", "cascade.io", ("open_image",), 1, True),  # engine -> io
        Import("cascade.forest._train", "cascade.axes", ("to_internal",), 1, False),  # engine -> axes
        Import("cascade.pipeline", "cascade.batch", ("BatchOptions",), 1, False),  # upwards
        Import("cascade.project.native", "cascade.training", ("fit",), 1, False),  # upwards, not lazy
        Import("cascade.batch.run", "cascade.io", ("_lookup",), 1, False),  # not in io.__all__
        Import("cascade.cli._train", "cascade", ("fit",), 1, True),  # the root beyond __version__
    ]
    assert all(_problems(imp) for imp in bad)
    fine = [
        Import("cascade.batch.plan", "cascade.io", ("write_image",), 1, False),
        Import("cascade.project.convert", "cascade.training", ("retrain_ilp",), 1, True),
        Import("cascade.io._store", "cascade._config", ("SLAB_BLOCKS",), 1, False),
        Import("cascade.training.run", "cascade", ("__version__",), 1, False),
    ]
    assert [p for imp in fine for p in _problems(imp)] == []


def test_the_import_parser_sees_relative_and_lazy_imports() -> None:
    found = {(i.target, i.lazy) for i in _imports(PACKAGE / "project" / "convert.py")}
    assert ("cascade.training", True) in found
    assert ("cascade.pipeline", False) in found
    assert ("cascade.project.ilp", False) in found


def test_at_most_eight_modules_at_the_top() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_size(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines: split it"
    if str(path.relative_to(PACKAGE)) in NUMBA_KERNELS:
        return
    long = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if ast.get_docstring(node) and len(node.body) > 1 else node.body
            size = (node.end_lineno or node.lineno) - body[0].lineno + 1
            if size > MAX_BODY:
                long.append(f"{node.name} ({size} lines)")
    assert long == []


def test_packages_declare_their_public_surface() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        names = _public_names(init.parent.name)
        assert names, f"{init.parent.name}/__init__.py has no __all__"


def test_the_public_api_resolves_lazily() -> None:
    probe = (
        "import sys, cascade; before = {'dask', 'numpy'} & set(sys.modules); "
        "missing = [n for n in cascade.__all__ if getattr(cascade, n, None) is None]; "
        "print(sorted(before), missing, sorted(set(cascade.__all__) - set(dir(cascade))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.stdout.split("\n")[0] == "[] [] []", done.stderr


def test_the_public_api() -> None:
    import cascade
    from cascade.errors import CascadeError
    from cascade.pipeline import predict

    assert {"fit", "predict", "open_project", "run_batch", "open_image", "write_image", "execution"} <= set(
        cascade.__all__
    )
    assert cascade.CascadeError is CascadeError
    assert cascade.predict is predict
    with pytest.raises(AttributeError, match="no attribute 'batch_options'"):
        _ = cascade.batch_options


def _example_imports() -> list[tuple[str, str, tuple[str, ...]]]:
    """(where, imported module, names) of every cascade import in the README's and notebooks' code."""
    root = PACKAGE.parent
    sources = [("README.md", block) for block in (root / "README.md").read_text().split("```python")[1:]]
    for notebook in sorted((root / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        sources += [(notebook.name, "".join(c["source"])) for c in cells if c["cell_type"] == "code"]
    found = []
    for where, code in sources:
        for node in ast.walk(ast.parse(code.split("```")[0])):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cascade"):
                found.append((where, node.module or "", tuple(a.name for a in node.names)))
            elif isinstance(node, ast.Import):
                found += [(where, a.name, ()) for a in node.names if a.name.startswith("cascade")]
    return found


def test_readme_and_notebooks_use_only_public_names() -> None:
    found = _example_imports()
    assert any(module == "cascade" for _, module, _ in found)
    wrong = [
        (where, module, names)
        for where, module, names in found
        if module != "cascade"
        and not (
            module.count(".") == 1 and _is_package(_top(module)) and set(names) <= _public_names(_top(module))
        )
    ]
    assert wrong == []


ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
#: Backticked words of the walk that are not cascade's own definitions.
NOT_CASCADE = {"map_overlap", "--headless"}


def _defined_names() -> set[str]:
    names = set()
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
    return names


def test_architecture_doc_is_true() -> None:
    """docs/architecture.md lists every top-level module and package, and its walk names real files
    and functions."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    tree, walk = text.split("```")[1], text.split("```")[2]
    listed = {line.split()[0].rstrip("/") for line in tree.splitlines()[2:] if line.strip()}
    tops = {p.name for p in PACKAGE.glob("*.py")} | {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert listed == tops
    files = set(re.findall(r"`([a-z_/]+\.py)`", walk))
    assert files, "the walk names no file"
    assert sorted(f for f in files if not (PACKAGE / f).is_file()) == []
    found = re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)`", walk)
    words = {w.rpartition(".")[2] for w in found if not w.endswith(".py")}
    words -= {Path(f).stem for f in files} | {f.partition("/")[0] for f in files} | NOT_CASCADE
    assert sorted(words - _defined_names()) == []
    steps = re.findall(r"^\d+\. ", walk, flags=re.M)
    assert 10 <= len(steps) <= 15


def test_readme_layout_table_names_every_package() -> None:
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Layout") :]
    assert "docs/architecture.md" in table
    for init in PACKAGE.glob("*/__init__.py"):
        assert f"`cascade/{init.parent.name}/`" in table
    for module in PACKAGE.glob("*.py"):
        if module.name != "__main__.py":
            assert f"{module.name}`" in table, module.name


def _missing_sections(function: Any) -> list[str]:
    """The numpydoc sections a function's docstring lacks (Parameters; Returns or Yields)."""
    doc = inspect.getdoc(function) or ""
    signature = inspect.signature(function)
    missing = []
    if [p for p in signature.parameters if p not in ("self", "cls")] and "Parameters\n" not in doc:
        missing.append("Parameters")
    returns = signature.return_annotation not in (inspect.Signature.empty, None, "None")
    if returns and "Returns\n" not in doc and "Yields\n" not in doc:
        missing.append("Returns")
    return missing


def _public_functions() -> dict[str, Any]:
    """Functions and methods of the public surface: every public function of a public module, and
    everything a package's (or the root's) ``__all__`` exports, wherever it is defined."""
    found: dict[str, Any] = {}
    for path in _modules():
        name = _module_name(path)
        if any(part.startswith("_") for part in name.split(".")[1:]) and path.name != "__init__.py":
            continue
        module = importlib.import_module(name)
        exported = [getattr(module, n) for n in getattr(module, "__all__", [])]
        defined = [
            v
            for k, v in vars(module).items()
            if not k.startswith("_") and getattr(v, "__module__", "") == name
        ]
        for obj in exported + defined:
            if inspect.isclass(obj):
                members = list(vars(obj).items())
            elif inspect.isfunction(obj):
                members = [(obj.__name__, obj)]
            else:
                continue
            for key, member in members:
                member = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                if inspect.isfunction(member) and not key.startswith("_"):
                    found[f"{member.__module__}.{member.__qualname__}"] = inspect.unwrap(member)
    return found


def test_public_functions_have_numpydoc_sections() -> None:
    functions = _public_functions()
    assert len(functions) > 100
    missing = {name: m for name, f in functions.items() if (m := _missing_sections(f))}
    assert missing == {}


def test_cli_messages_name_only_options_that_exist() -> None:
    """An option named in a message or help text of the CLI (``use --block-shape``) is one that
    some command declares (as ``--chunks`` once was not)."""
    declared, mentioned = set(), set()
    for path in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if re.fullmatch(r"--[a-z][a-z0-9_-]*", node.value):
                    declared.add(node.value)
                else:
                    mentioned |= set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", node.value))
    assert "--block-shape" in declared
    assert sorted(mentioned - declared) == []
