"""deploy/gunicorn.conf.py as gunicorn reads it: settings that must hold without starting a server."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from gunicorn.config import Config

CONF = Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"


def test_the_control_socket_is_off_unless_a_path_of_its_own_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Config().settings
    assert {"control_socket", "control_socket_disable"} <= set(settings)  # names gunicorn really reads
    monkeypatch.delenv("FEEDSVC_GUNICORN_CONTROL_SOCKET", raising=False)
    assert runpy.run_path(str(CONF))["control_socket_disable"] is True
    monkeypatch.setenv("FEEDSVC_GUNICORN_CONTROL_SOCKET", "/run/feedsvc/gunicorn.ctl")
    named = runpy.run_path(str(CONF))
    assert named["control_socket"] == "/run/feedsvc/gunicorn.ctl" and named["control_socket_disable"] is False
