"""``python -m augment``: the ``augment`` command."""

from .cli import main

raise SystemExit(main())
