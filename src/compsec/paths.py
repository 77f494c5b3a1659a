"""Where compsec caches what it builds (the tiny assistant, converted real models).

The cache directory is ``$COMPSEC_CACHE`` if set, else ``~/.cache/compsec``.
"""

import os
from pathlib import Path

CACHE_ENV = "COMPSEC_CACHE"


def cache_dir() -> Path:
    """Return the cache directory, creating it if needed."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "compsec")
    root.mkdir(parents=True, exist_ok=True)
    return root
