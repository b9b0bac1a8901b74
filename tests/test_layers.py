"""The layers of `assembly` point down, and nothing imports in a circle.

Read statically from the source (every `import`, including those inside
functions), so a lazy import cannot hide a wrong dependency:

- `core` never imports the scenario loader, a protocol, the LLM layer,
  inspection or sweeps, and the engine never imports a protocol;
- protocols import only `core` (and their own package);
- only `assembly.llm` imports autogen, openai or litellm;
- there is no cycle among modules' top-level imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "assembly"
MODEL_SDKS = ("autogen_agentchat", "autogen_core", "autogen_ext", "openai", "litellm")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # `if TYPE_CHECKING:` blocks import nothing at run time
        nodes = [n for n in nodes if not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _assembly_imports(module: str, *, top_level_only: bool = False) -> set[str]:
    """The assembly modules `module` imports (a `from pkg import name` counts as
    the submodule `pkg.name` when there is one, else as `pkg`)."""
    return {m for m in _imports(MODULES[module], top_level_only=top_level_only) if m in MODULES}


def _in(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _in(m, "assembly.core")))
def test_core_imports_only_core(module: str) -> None:
    outside = {m for m in _assembly_imports(module) if not _in(m, "assembly.core") and m != "assembly"}
    assert not outside, f"{module} imports {sorted(outside)}"


def test_engine_never_imports_a_protocol() -> None:
    assert not {m for m in _assembly_imports("assembly.core.engine") if _in(m, "assembly.protocols")}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _in(m, "assembly.protocols")))
def test_protocols_import_only_core_and_themselves(module: str) -> None:
    own = ".".join(module.split(".")[:3])  # assembly.protocols.<package>
    allowed = ("assembly.core", own)
    outside = {
        m for m in _assembly_imports(module) if not _in(m, *allowed) and m not in ("assembly", "assembly.protocols")
    }
    if module == "assembly.protocols":  # the registry imports every protocol package
        outside = {m for m in outside if not _in(m, "assembly.protocols")}
    assert not outside, f"{module} imports {sorted(outside)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_llm_layer_imports_model_sdks(module: str) -> None:
    if _in(module, "assembly.llm"):
        return
    sdks = {m for m in _imports(MODULES[module], top_level_only=False) if m.split(".")[0] in MODEL_SDKS}
    assert not sdks, f"{module} imports {sorted(sdks)}"


def test_no_import_cycles() -> None:
    graph = nx.DiGraph()
    for module in MODULES:
        graph.add_node(module)
        for target in _assembly_imports(module, top_level_only=True):
            if target != module:
                graph.add_edge(module, target)
    # A package's __init__ importing its own submodules is how packages work, not a cycle.
    for module in list(graph):
        for target in list(graph.successors(module)):
            if target.startswith(module + "."):
                graph.remove_edge(module, target)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_the_checks_see_imports() -> None:
    """Guard against a vacuous pass: the parser finds known edges."""
    assert "assembly.core.events" in _assembly_imports("assembly.core.engine")
    assert "assembly.protocols" in _assembly_imports("assembly.scenario.model")
