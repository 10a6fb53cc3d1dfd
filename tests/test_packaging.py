"""The two install routes (pip: pyproject.toml, conda: environment.yml) stay equal, and the CLI starts."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

# conda-forge names that differ from the PyPI names of the same distribution.
CONDA_TO_PYPI = {
    "matplotlib-base": "matplotlib",
    "python-tzdata": "tzdata",
    "pytables": "tables",
    "pytorch": "torch",
}

# conda-forge packages whose name is a PyPI distribution's but which are something else there:
# conda-forge's tzdata is the system time-zone database, not the Python module (python-tzdata).
CONDA_NAME_CLASHES = {"tzdata": "python-tzdata"}

# Entries of environment.yml that are not Python dependencies of the package.
CONDA_ONLY = {"python", "pip"}


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _conda_spec(entry: str) -> tuple[str, SpecifierSet]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", entry)
    assert match, f"cannot parse conda dependency {entry!r}"
    name, spec = match.groups()
    spec = spec.replace(" ", "")
    # conda's single "=" means a version prefix: numpy=1.26 is numpy==1.26.*
    if re.fullmatch(r"=[^=].*", spec):
        spec = f"={spec}.*" if not spec.endswith("*") else f"={spec}"
    name = CONDA_TO_PYPI.get(name.lower(), name)
    return canonicalize_name(name), SpecifierSet(spec)


def _pip_specs(entries) -> dict[str, SpecifierSet]:
    specs = {}
    for entry in entries:
        requirement = Requirement(entry)
        assert requirement.marker is None, f"markers cannot be mirrored in environment.yml: {entry!r}"
        name = canonicalize_name(requirement.name)
        assert name not in specs, f"{name} listed twice in pyproject.toml"
        specs[name] = requirement.specifier
    return specs


def _conda_specs() -> dict[str, SpecifierSet]:
    specs = {}
    for entry in _environment()["dependencies"]:
        if isinstance(entry, dict):  # the pip: section installs the package itself
            continue
        name, spec = _conda_spec(entry)
        if name in CONDA_ONLY:
            continue
        assert name not in specs, f"{name} listed twice in environment.yml"
        specs[name] = spec
    return specs


def test_conda_spec_parsing():
    assert _conda_spec("numpy >=1.26") == ("numpy", SpecifierSet(">=1.26"))
    assert _conda_spec("numpy=1.26") == ("numpy", SpecifierSet("==1.26.*"))
    assert _conda_spec("matplotlib-base>=3.8") == ("matplotlib", SpecifierSet(">=3.8"))
    assert _conda_spec("PyYAML") == ("pyyaml", SpecifierSet(""))
    assert _conda_spec("python-tzdata>=2024.1") == ("tzdata", SpecifierSet(">=2024.1"))


def test_environment_uses_conda_forge_names():
    entries = [e for e in _environment()["dependencies"] if isinstance(e, str)]
    names = {re.fullmatch(r"\s*([A-Za-z0-9_.\-]+).*", e).group(1).lower() for e in entries}
    clashes = {name: CONDA_NAME_CLASHES[name] for name in names & set(CONDA_NAME_CLASHES)}
    assert not clashes, f"on conda-forge these are other packages; write {clashes}"


def test_environment_matches_runtime_and_test_dependencies():
    project = _pyproject()["project"]
    wanted = _pip_specs(project["dependencies"] + project["optional-dependencies"]["test"])
    assert _conda_specs() == wanted


def test_environment_python_matches_requires_python():
    entries = [e for e in _environment()["dependencies"] if isinstance(e, str)]
    python = [_conda_spec(e)[1] for e in entries if _conda_spec(e)[0] == "python"]
    assert python == [SpecifierSet(_pyproject()["project"]["requires-python"])]


def test_environment_installs_the_package_itself():
    pip_sections = [e["pip"] for e in _environment()["dependencies"] if isinstance(e, dict) and "pip" in e]
    assert pip_sections and any(line.strip() in ("-e .", ".") for line in pip_sections[0])


def test_command_line_help():
    result = subprocess.run(
        [sys.executable, "-m", "reliability", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "report" in result.stdout and "params" in result.stdout
    report_help = subprocess.run(
        [sys.executable, "-m", "reliability", "report", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert report_help.returncode == 0, report_help.stderr
    for option in ("--only", "--smoke", "--with-code", "--output", "--notebooks", "-p", "-f"):
        assert option in report_help.stdout


def test_readme_layout_lists_every_package_file():
    """The README's layout section names each file of the package, one line per file."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):]
    package = ROOT / "reliability"
    missing = []
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        if f"- `{path.name}` —" not in layout:
            missing.append(str(path.relative_to(ROOT)))
        elif path.parent != package and f"- `{path.parent.name}/`" not in layout:
            missing.append(str(path.parent.relative_to(ROOT)) + "/")
    assert not missing, f"README layout does not list: {missing}"
