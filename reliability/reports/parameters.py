"""The notebooks and their parameters: finding them, reading values given on a command line or
in a file, checking them against a notebook's ``parameters`` cell, and naming a run by the
parameters that differ from the defaults.

papermill and nbformat are imported only inside the functions that need them.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

__all__ = [
    "ParameterError",
    "find_notebooks",
    "resolve_notebook",
    "read_notebook",
    "notebook_question",
    "notebook_parameters",
    "smoke_parameters",
    "default_parameters",
    "differing_parameters",
    "parse_parameter_value",
    "read_parameter_file",
    "check_parameters",
    "require_list",
    "require_choice",
    "run_name",
]


class ParameterError(ValueError):
    """Parameters that do not fit the notebooks they are meant for (a usage error)."""


def find_notebooks(notebooks_dir: str | os.PathLike) -> list[Path]:
    """The notebooks in a folder, sorted by name (checkpoints and hidden files skipped)."""
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise ValueError(f"notebooks_dir must be an existing folder, got {str(folder)!r}")
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith((".", "_")))


def resolve_notebook(notebooks_dir: str | os.PathLike, name: str) -> Path:
    """Find a notebook by name, with or without ``.ipynb``, or by a unique prefix (``"01"``)."""
    notebooks = find_notebooks(notebooks_dir)
    stem = name[:-len(".ipynb")] if name.endswith(".ipynb") else name
    stem = Path(stem).name
    exact = [p for p in notebooks if p.stem == stem]
    if exact:
        return exact[0]
    prefixed = [p for p in notebooks if p.stem.startswith(stem)]
    if len(prefixed) == 1:
        return prefixed[0]
    available = ", ".join(p.stem for p in notebooks) or "none"
    if prefixed:
        raise ParameterError(
            f"notebook name {name!r} is ambiguous: matches {', '.join(p.stem for p in prefixed)}"
        )
    raise ParameterError(f"no notebook named {name!r} in {notebooks_dir} (available: {available})")


def read_notebook(path: str | os.PathLike):
    """A notebook file as an ``nbformat`` node (version 4)."""
    import nbformat

    return nbformat.read(Path(path), as_version=4)


def notebook_question(nb, fallback: str = "") -> str:
    """The question a notebook answers: the first line of its first markdown cell, without ``#``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.strip():
                    return line.lstrip("#").strip()
            break
    return fallback


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def notebook_parameters(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """A notebook's parameters as papermill infers them from its ``parameters`` cell.

    Returns
    -------
    dict
        ``{name: {"name", "inferred_type_name", "default", "help"}}`` in cell order;
        ``default`` is the literal's source text, as papermill gives it.
    """
    import papermill

    return papermill.inspect_notebook(str(path))


def smoke_parameters(path: str | os.PathLike) -> dict[str, Any]:
    """The small, fast parameter set in ``metadata["reliability"]["smoke_parameters"]``."""
    nb = read_notebook(path)
    return dict(nb.metadata.get("reliability", {}).get("smoke_parameters", {}))


def default_parameters(declared: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The default value of every declared parameter, as Python values.

    Examples
    --------
    >>> default_parameters({"servers": {"default": "10"}, "loads": {"default": "[1.0, 2.0]"}})
    {'servers': 10, 'loads': [1.0, 2.0]}
    """
    return {name: _literal(str(info.get("default", ""))) for name, info in declared.items()}


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b


def differing_parameters(defaults: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters whose value differs from the default, in declaration order.

    Examples
    --------
    >>> differing_parameters({"a": 1.0, "b": "x"}, {"a": 1, "b": "y"})
    {'b': 'y'}
    """
    return {k: v for k, v in values.items() if k not in defaults or not _same_value(defaults[k], v)}


# YAML 1.1 reads these as booleans; on a command line they are almost always meant as words.
_YAML_WORD_BOOLEANS = {"y", "n", "yes", "no", "on", "off"}


def parse_parameter_value(text: str) -> Any:
    """Parse one ``-p NAME VALUE`` value as YAML, the way papermill's ``-y`` does.

    ``"3"`` gives 3, ``"0.5"`` and ``"1e3"`` give floats, ``"[10, 100]"`` a list,
    ``"True"``/``"False"``/``"None"`` the Python constants, anything else a string.
    (YAML 1.1's ``yes``/``no``/``on``/``off`` stay strings.)

    Examples
    --------
    >>> parse_parameter_value("[10, 100.0]")
    [10, 100.0]
    >>> parse_parameter_value("1e3")
    1000.0
    >>> parse_parameter_value("off")
    'off'
    """
    import yaml

    stripped = text.strip()
    if stripped.lower() in _YAML_WORD_BOOLEANS:
        return text
    if stripped == "None":
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and value == stripped:
        # PyYAML (YAML 1.1) reads an unquoted 1e3 as a string; a command line means a number.
        with contextlib.suppress(ValueError):
            number = float(value)
            if math.isfinite(number):
                return number
    return value


def read_parameter_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML file of parameters (a mapping of name to value)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParameterError(f"parameter file not found: {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:  # a folder, no permission, not UTF-8 text
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ParameterError(f"parameter file {str(path)!r} cannot be read: {reason}") from None
    except yaml.YAMLError as exc:
        raise ParameterError(f"parameter file {str(path)!r} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ParameterError(f"parameter file {str(path)!r} must hold a mapping of names to values")
    return data


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
}


def _list_hint(value: Any) -> str:
    """How to write a single value as a list, for a scalar given where a list is wanted."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return f" (a list is needed: write [{value}] for one value)"
    return ""


def check_parameters(
    notebook: str | os.PathLike,
    given: Mapping[str, Any],
    declared: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    strict: bool = True,
) -> dict[str, Any]:
    """Match given parameters to a notebook's parameters cell, checking names and simple types.

    Parameters
    ----------
    notebook : path-like
        The notebook (used for its declared parameters and in messages).
    given : mapping
        Parameter values to pass.
    declared : mapping, optional
        The notebook's parameters as from :func:`notebook_parameters` (read if omitted).
    strict : bool
        If True a parameter the notebook does not declare is an error; if False it is
        dropped (a full report run passes each notebook only the parameters it has).

    Returns
    -------
    dict
        The parameters to pass; integers given for ``float`` parameters become floats.

    Raises
    ------
    ParameterError
        Naming the notebook, the parameter and the problem (with a hint for a scalar given
        where a list is wanted).
    """
    name = Path(notebook).stem
    if declared is None:
        declared = notebook_parameters(notebook)
    accepted: dict[str, Any] = {}
    for key, value in given.items():
        if key not in declared:
            if strict:
                known = ", ".join(declared) or "none"
                raise ParameterError(
                    f"notebook {name} has no parameter {key!r} (its parameters: {known})"
                )
            continue
        type_name = str(declared[key].get("inferred_type_name", "None"))
        check = _TYPE_CHECKS.get(type_name)
        if check is not None and not check(value):
            hint = _list_hint(value) if type_name == "list" else ""
            raise ParameterError(
                f"parameter {key!r} of notebook {name} is {type_name}, "
                f"got {type(value).__name__} {value!r}{hint}"
            )
        accepted[key] = float(value) if type_name == "float" else value
    return accepted


def require_list(name: str, value: Any, *, min_length: int = 1) -> list:
    """A notebook parameter that must be a list: the list, or a ``ValueError`` naming it.

    A single value is refused with the hint to write it as a one-element list.

    Examples
    --------
    >>> require_list("offered_loads", [10.0])
    [10.0]
    >>> require_list("offered_loads", 10)
    Traceback (most recent call last):
    ...
    ValueError: offered_loads must be a list, got 10 (write [10] for one value)
    """
    if not isinstance(value, (list, tuple)):
        hint = f" (write [{value!r}] for one value)" if isinstance(value, (int, float, str)) else ""
        raise ValueError(f"{name} must be a list, got {value!r}{hint}")
    if len(value) < min_length:
        raise ValueError(f"{name} must list at least {min_length} value{'s' if min_length > 1 else ''}, got {value!r}")
    return list(value)


def require_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """A notebook parameter that must be one of a few words: the word, or a ``ValueError`` naming it.

    Examples
    --------
    >>> require_choice("table_size", "smoke", ["full", "smoke"])
    'smoke'
    >>> require_choice("table_size", "big", ["full", "smoke"])
    Traceback (most recent call last):
    ...
    ValueError: table_size must be one of 'full', 'smoke', got 'big'
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_WORD = re.compile(r"[A-Za-z0-9._-]+")


def _slug(value: Any) -> tuple[str, bool]:
    """A value as part of a file name, and whether that spelling tells values apart."""
    items = value if isinstance(value, (list, tuple)) else [value]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items)
    text = "-".join(str(v) for v in items) if isinstance(value, (list, tuple)) else str(value)
    slug = _SAFE.sub("-", text).strip("-") or "empty"
    lossless = (numeric or not isinstance(value, (list, tuple))) and (numeric or bool(_WORD.fullmatch(str(value))))
    return slug, lossless


def run_name(stem: str, changed: Mapping[str, Any], *, smoke: bool = False) -> str:
    """The name of a run's files: the notebook's name, then the parameters it changed.

    A run with the defaults is named like its notebook; any other run gets a suffix, so the
    index lists it on its own row and never overwrites the default report.

    Examples
    --------
    >>> run_name("01-erlang-capacity", {})
    '01-erlang-capacity'
    >>> run_name("01-erlang-capacity", {"blocking_target": 0.001})
    '01-erlang-capacity--blocking_target=0.001'
    >>> run_name("01-erlang-capacity", {"offered_loads": [10, 200]}, smoke=True)
    '01-erlang-capacity--smoke--offered_loads=10-200'
    """
    parts = ["smoke"] if smoke else []
    lossless = True
    for key, value in changed.items():
        slug, exact = _slug(value)
        parts.append(f"{key}={slug}")
        lossless = lossless and exact
    if not parts:
        return stem
    suffix = "--".join(parts)
    if len(suffix) > 80 or not lossless:
        # Long or lossy names get a short digest of the exact values, so two runs never share files.
        digest = hashlib.sha1(repr(sorted(changed.items())).encode("utf-8")).hexdigest()[:8]
        suffix = f"{suffix[:60].rstrip('-')}--{digest}"
    return f"{stem}--{suffix}"
