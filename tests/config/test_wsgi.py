"""The WSGI entry point freezes what loading the application made (docs/scaling.md#pages)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loading_the_wsgi_application_freezes_its_heap():
    script = (
        "import gc; assert gc.get_freeze_count() == 0; import config.wsgi; "
        "print(gc.get_freeze_count(), callable(config.wsgi.application))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    frozen, loaded = int(out[-2]), out[-1]
    assert loaded == "True"
    assert frozen > 10_000  # Django, the apps and their modules
