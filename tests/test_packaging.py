"""Packaging read as text: pinned requirements, Streamlit config, Dockerfile, Makefile, CI entry."""

import re
import tomllib

from tests.conftest import ROOT


def test_requirements_are_pinned():
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][^\s]*", l) for l in lines), lines
    pins = dict(l.split("==") for l in lines)
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert "folium" in pins and "streamlit-folium" in pins and "sentinelhub" in pins


def test_streamlit_config():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["server"]["enableStaticServing"] is True
    assert cfg["server"]["maxUploadSize"] <= 50


def test_dockerfile_runs_the_app_with_a_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11" in text
    assert "pip install -r requirements.txt" in text
    for folder in ("pages", "ui", "static", "lulc_core", ".streamlit"):
        assert f"COPY {folder} " in text
    assert "HEALTHCHECK" in text and "/_stcore/health" in text
    assert "EXPOSE 8501" in text and '"python", "-m", "ui.serve"' in text  # streamlit run app.py + warm-up
    assert "chown -R app /data /app/static/maps" in text  # the served map images are written at run time
    assert "USER app" in text


def test_make_and_ci_entry_points():
    mk = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: venv", mk, re.M) and re.search(r"^test: venv", mk, re.M)
    assert re.search(r"^\t\$\(PY\) -m ui\.serve ", mk, re.M) and "pytest" in mk
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "chromium" in ci


def test_the_fake_sentinel_hub_lives_in_the_tests_not_the_image():
    assert not list((ROOT / "lulc_core").rglob("*fake*.py"))
    assert (ROOT / "tests" / "fakes" / "sentinelhub" / "__main__.py").exists()
    ignored = (ROOT / ".dockerignore").read_text().split()
    docker = (ROOT / "Dockerfile").read_text()
    assert "tests" in ignored and "COPY tests" not in docker and "COPY . " not in docker
    assert re.search(r"^fake-sh:.*\n\t.*-m tests\.fakes\.sentinelhub", (ROOT / "Makefile").read_text(), re.M)


def test_pyproject_packages_and_lint_config():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert cfg["project"]["scripts"]["lulc"] == "lulc_core.cli:main"
    assert set(cfg["tool"]["setuptools"]["packages"]["find"]["include"]) == {"lulc_core*", "ui*"}
    assert cfg["tool"]["ruff"]["lint"]["select"]
