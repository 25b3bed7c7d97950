"""Nothing below feedsvc.web and feedsvc.cli imports Flask: the worker, the CLI's core and the pure packages
start without it. Every module is found with pkgutil, so a new one is covered the day it is added."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import feedsvc

# Flask's own layers: only these may import it (the CLI's groups reach the web app to serve it).
WEB_LAYERS = ("feedsvc.web", "feedsvc.cli")
# Run by Alembic inside its migration context, never imported as modules.
NOT_MODULES = ("feedsvc.db.migrations",)

PROBE = """
import importlib, json, sys
culprits = []
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
    if "flask" in sys.modules and not culprits:
        culprits.append(name)
print(json.dumps({"flask": "flask" in sys.modules, "first": culprits[0] if culprits else None}))
"""


def core_modules() -> list[str]:
    """Every module and package of feedsvc outside the web layers (discovered, not listed)."""
    found = ["feedsvc"]
    for module in pkgutil.walk_packages(feedsvc.__path__, "feedsvc."):
        if not module.name.startswith(WEB_LAYERS + NOT_MODULES):
            found.append(module.name)
    return found


def test_the_discovery_sees_every_package() -> None:
    names = core_modules()
    for expected in ("feedsvc.config", "feedsvc.content.reader", "feedsvc.mail.newsletter", "feedsvc.outbox.worker"):
        assert expected in names
    assert not [n for n in names if n.startswith(WEB_LAYERS)]


def test_nothing_outside_web_and_cli_imports_flask() -> None:
    names = core_modules()
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(names)], capture_output=True, text=True, timeout=120, check=False
    )
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout)
    assert result == {"flask": False, "first": None}, f"{result['first']} brings Flask in"


WORKER_PROBE = """
import json, sys
import feedsvc.cli.worker
heavy = ("flask", "premailer", "lxml", "cssutils", "markdown_it", "feedgen", "dkim", "jinja2", "sqlalchemy.orm")
print(json.dumps(sorted(name for name in heavy if name in sys.modules)))
"""


def test_the_worker_command_loads_no_renderer_web_app_dkim_or_orm() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", WORKER_PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == []


def test_every_command_the_cli_lists_is_found_under_its_name() -> None:
    from feedsvc.cli import COMMANDS, main

    for name in COMMANDS:
        command = main.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name
