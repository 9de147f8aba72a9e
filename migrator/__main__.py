"""``python -m migrator`` is the ``migrator`` command."""

import sys

try:
    import migrator.backends  # noqa: F401
except ModuleNotFoundError as exc:  # pragma: no cover - only a broken install gets here
    sys.exit(
        f"error: cannot import migrator.backends ({exc}); running from the source tree needs an editable "
        "install: pip install -e ."
    )

from migrator.cli import main

sys.exit(main())
