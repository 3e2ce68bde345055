"""lulc_core.settings: read when called (never frozen at import), environment first, then Streamlit secrets."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lulc_core.errors import LulcError
from lulc_core.settings import load_settings, read_secrets_files
from tests.conftest import ROOT


def test_cache_dir_set_after_import_applies(tmp_path, monkeypatch):
    """The cache isolation the tests rely on: LULC_CACHE_DIR set after every import still applies."""
    import lulc_core.cache as cache_module
    from lulc_core.providers.factory import make_provider

    monkeypatch.setenv("LULC_CACHE_DIR", str(tmp_path / "isolated"))
    monkeypatch.setenv("LULC_CACHE_MAX_MB", "5")
    provider = make_provider("demo")
    assert provider.cache.root == tmp_path / "isolated" and provider.cache.max_bytes == 5 * 2**20
    assert cache_module.default_cache_dir() == tmp_path / "isolated"
    monkeypatch.setenv("LULC_CACHE_DIR", str(tmp_path / "moved"))
    assert make_provider("demo").cache.root == tmp_path / "moved"


def test_cache_isolation_in_a_fresh_process(tmp_path):
    """Import first, set the variable afterwards, in a process of its own (no module state from other tests)."""
    code = ("import os, lulc_core.cache as c\n"
            f"os.environ['LULC_CACHE_DIR'] = {str(tmp_path)!r}\n"
            "print(c.SceneCache().root)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr[-500:]
    assert res.stdout.strip() == str(tmp_path)


def test_weights_set_after_import_apply(tmp_path, monkeypatch):
    """LULC_WEIGHTS is read when a classifier is built, not frozen at import; secrets work too."""
    from lulc_core.errors import WeightsError
    from lulc_core.model.classifier import Classifier
    from lulc_core.model.weights import SHIPPED_RGB, default_weights_path

    monkeypatch.delenv("LULC_WEIGHTS", raising=False)
    assert default_weights_path(load_settings(secrets={})) == SHIPPED_RGB
    monkeypatch.setenv("LULC_WEIGHTS", str(tmp_path / "absent.pt"))
    assert default_weights_path() == tmp_path / "absent.pt"
    with pytest.raises(WeightsError, match="absent.pt not found"):
        Classifier()
    from_secrets = load_settings(env={}, secrets={"LULC_WEIGHTS": str(tmp_path / "w.pt")})
    assert default_weights_path(from_secrets) == tmp_path / "w.pt"


def test_sentinelhub_table_in_a_secrets_file_is_read(tmp_path, monkeypatch):
    secrets_file = tmp_path / ".streamlit" / "secrets.toml"
    secrets_file.parent.mkdir()
    secrets_file.write_text('LULC_CACHE_MAX_MB = 64\n\n[sentinelhub]\nclient_id = "table-id"\n'
                            'client_secret = "table-secret"\nendpoint = "sentinelhub"\n')
    monkeypatch.chdir(tmp_path)
    for key in ("SH_CLIENT_ID", "SH_CLIENT_SECRET", "SH_ENDPOINT", "LULC_CACHE_MAX_MB"):
        monkeypatch.delenv(key, raising=False)
    s = load_settings()
    assert (s.sh_client_id, s.sh_client_secret, s.sh_endpoint) == ("table-id", "table-secret", "sentinelhub")
    assert s.has_sh_credentials and s.cache_max_bytes == 64 * 2**20
    assert "table-secret" not in repr(s)
    from lulc_core.providers.sentinelhub import SentinelHubSettings
    sh = SentinelHubSettings.from_env()
    assert sh.client_id == "table-id" and sh.base_url == "https://services.sentinel-hub.com"
    monkeypatch.setenv("SH_CLIENT_ID", "env-id")  # the environment comes first
    assert load_settings().sh_client_id == "env-id"


def test_a_broken_secrets_file_is_named(tmp_path):
    bad = tmp_path / "secrets.toml"
    bad.write_text("SH_CLIENT_ID = 'unterminated\n")
    with pytest.raises(LulcError, match="is not valid TOML"):
        read_secrets_files((bad,))
    assert read_secrets_files((tmp_path / "absent.toml",)) == {}


def test_bad_numbers_fail_where_they_are_used():
    s = load_settings(env={"LULC_CACHE_MAX_MB": "-3", "SH_CLIENT_ID": "x"}, secrets={})
    assert s.sh_client_id == "x"  # reading the settings does not fail...
    with pytest.raises(LulcError, match="LULC_CACHE_MAX_MB must be positive, got '-3'"):
        s.cache_max_bytes  # ...using the bad one does
