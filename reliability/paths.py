"""Where the project's folders live: ``data/``, ``data/incidents/`` and ``notebooks/``.

The data folder is found from the package's own location (the repository root holds
``reliability/``, ``data/`` and ``notebooks/`` side by side), never from the working directory,
so a notebook run from any folder finds it; ``$RELIABILITY_DATA`` points it elsewhere, for
example at a folder of held-out incidents.

Examples
--------
>>> (data_dir() / "incidents").is_dir()
True
>>> incidents_dir() == data_dir() / "incidents"
True
>>> notebooks_dir().is_dir()
True
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENVIRONMENT_VARIABLE", "repository_root", "data_dir", "incidents_dir", "notebooks_dir"]

#: The environment variable that overrides where ``data/`` lives.
DATA_ENVIRONMENT_VARIABLE = "RELIABILITY_DATA"


def repository_root() -> Path:
    """The folder that holds the ``reliability`` package (and, in a checkout, ``data/`` and ``notebooks/``).

    Examples
    --------
    >>> (repository_root() / "reliability" / "paths.py").is_file()
    True
    """
    return Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The project's ``data/`` folder: ``$RELIABILITY_DATA`` if set, else ``data/`` beside the package.

    Resolved from the package's own location, never from the working directory, so notebooks
    run from any folder find it.

    Returns
    -------
    pathlib.Path
        An existing folder.

    Raises
    ------
    ValueError
        If the folder does not exist (the message names where the path came from).

    Examples
    --------
    >>> data_dir() == repository_root() / "data"
    True
    >>> import os; os.environ["RELIABILITY_DATA"] = "/no/such/folder"
    >>> data_dir()
    Traceback (most recent call last):
    ...
    ValueError: data folder '/no/such/folder' (from RELIABILITY_DATA) does not exist
    >>> del os.environ["RELIABILITY_DATA"]
    """
    override = os.environ.get(DATA_ENVIRONMENT_VARIABLE)
    folder = Path(override).expanduser() if override else repository_root() / "data"
    if not folder.is_dir():
        source = DATA_ENVIRONMENT_VARIABLE if override else "the repository root"
        raise ValueError(f"data folder {str(folder)!r} (from {source}) does not exist")
    return folder


def incidents_dir() -> Path:
    """The folder of incident files, ``incidents/`` inside :func:`data_dir`.

    It may be missing (a data folder without incidents); callers that list it check.

    Examples
    --------
    >>> sorted(p.suffix for p in incidents_dir().glob("*.yaml"))[:1]
    ['.yaml']
    """
    return data_dir() / "incidents"


def notebooks_dir() -> Path:
    """The notebooks to run: ``notebooks/`` in the working directory if there is one, else the package's.

    The working directory comes first so that ``python -m reliability report`` run inside a
    project (or a copy of the notebooks) uses those notebooks; anywhere else it falls back to
    the ``notebooks/`` folder beside the package.

    Examples
    --------
    >>> notebooks_dir().name
    'notebooks'
    >>> import os, tempfile
    >>> here = os.getcwd(); os.chdir(tempfile.gettempdir())
    >>> notebooks_dir() == repository_root() / "notebooks"
    True
    >>> os.chdir(here)
    """
    local = Path("notebooks")
    if local.is_dir():
        return local
    return repository_root() / "notebooks"
