"""The server process keeps what it built at start-up out of the collector's passes."""

import os
import subprocess
import sys

from config.settings import BASE_DIR


def test_the_asgi_module_freezes_start_up_objects_once_and_widens_the_young_generation():
    code = (
        "import gc, importlib; before = gc.get_freeze_count(); import config.asgi;"
        "frozen = gc.get_freeze_count(); alive = [[] for _ in range(1000)]; importlib.reload(config.asgi);"
        "print(before, frozen, gc.get_freeze_count() - frozen, *gc.get_threshold())"
    )
    env = {**os.environ, "DJANGO_DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    before, frozen, frozen_by_reload, young, middle, old = map(int, result.stdout.split())
    assert before == 0
    # Django, the apps and the URL maps: tens of thousands of objects.
    assert frozen > 20_000
    # Once per process: what is alive later (connections…) is never frozen out of collection.
    assert frozen_by_reload <= 0  # (module objects the reload replaced are released)
    assert (young, middle, old) == (20_000, 20, 10)
