"""The package's modules import only the layers below them: no module imports, at its top, one that imports it back."""

import ast
import os

from conftest import REPO


def _graph() -> dict[str, set[str]]:
    package = os.path.join(REPO, "jaxdl")
    modules = {}
    for root, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".").removesuffix(".__init__")
                modules[dotted] = path
    graph = {}
    for dotted, path in modules.items():
        deps = set()
        for node in ast.parse(open(path).read()).body:  # top-level imports; those inside functions are deliberate
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxdl"):
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    deps.add(child if child in modules else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in modules)
        graph[dotted] = {d for d in deps if d in modules and d != dotted}
    return graph


def test_no_import_cycles():
    graph = _graph()
    cycles = []

    def visit(node, path):
        for dep in graph[node]:
            if dep in path:
                cycles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in done:
                done.add(dep)
                visit(dep, path + [dep])

    done = set()
    for start in graph:
        visit(start, [start])
    assert not cycles, cycles


def test_config_knows_no_task_and_the_trainer_no_model():
    graph = _graph()
    assert not {d for d in graph["jaxdl.config"] if d.startswith("jaxdl.tasks")}
    for layer in ("jaxdl.loop", "jaxdl.feed", "jaxdl.parallel.compiled", "jaxdl.parallel.strategy"):
        assert not graph[layer] & {"jaxdl.models", "jaxdl.losses", "jaxdl.modules", "jaxdl.tasks.supervised"}, layer


def test_importing_jaxdl_leaves_the_heavy_libraries_to_the_runs_that_use_them():
    # TFDS, grain, orbax, matplotlib, scikit-learn and PIL cost 0.3 s to import: only loading data, the host
    # pipeline, checkpoints and plots import them (benchmarks/startup.py times the whole command).
    import subprocess
    import sys

    code = ("import sys, jaxdl; heavy = ('tensorflow_datasets', 'grain', 'orbax', 'matplotlib', 'sklearn', 'PIL', "
            "'tensorstore'); print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    from jaxdl.data import sources, tfds_source

    assert sources.EMBEDDED == tuple(tfds_source.EMBEDDED)
