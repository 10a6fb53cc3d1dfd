"""Where data/ and notebooks/ are found: beside the package, or where RELIABILITY_DATA says."""

import shutil
from pathlib import Path

import pytest

import reliability
from reliability import incident as incidents, paths

ROOT = Path(__file__).resolve().parent.parent


def test_folders_are_found_beside_the_package(monkeypatch):
    monkeypatch.delenv("RELIABILITY_DATA", raising=False)
    assert paths.repository_root() == ROOT
    assert paths.data_dir() == ROOT / "data"
    assert paths.incidents_dir() == ROOT / "data" / "incidents"
    assert (paths.incidents_dir() / "proton-2025-01-09.yaml").is_file()


def test_data_dir_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("RELIABILITY_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.data_dir() == ROOT / "data"


def test_environment_overrides_the_data_folder(tmp_path, monkeypatch):
    (tmp_path / "incidents").mkdir()
    monkeypatch.setenv("RELIABILITY_DATA", str(tmp_path))
    assert paths.data_dir() == tmp_path
    assert paths.incidents_dir() == tmp_path / "incidents"


def test_environment_override_expands_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "held-out").mkdir()
    monkeypatch.setenv("RELIABILITY_DATA", "~/held-out")
    assert paths.data_dir() == tmp_path / "held-out"


def test_missing_data_folder_is_a_value_error_naming_its_source(tmp_path, monkeypatch):
    monkeypatch.setenv("RELIABILITY_DATA", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"missing.*RELIABILITY_DATA.*does not exist"):
        paths.data_dir()


def test_the_old_names_give_the_same_folder(tmp_path, monkeypatch):
    shutil.copytree(paths.data_dir(), tmp_path / "data")
    monkeypatch.setenv("RELIABILITY_DATA", str(tmp_path / "data"))
    assert incidents.data_dir() == paths.data_dir() == reliability.data_dir() == tmp_path / "data"


def test_notebooks_prefer_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.notebooks_dir() == ROOT / "notebooks"
    (tmp_path / "notebooks").mkdir()
    assert paths.notebooks_dir().resolve() == (tmp_path / "notebooks").resolve()
