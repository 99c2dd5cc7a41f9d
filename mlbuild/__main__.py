"""``python -m mlbuild`` is the ``mlbuild`` command."""

from __future__ import annotations

import sys

from mlbuild.cli.main import main

sys.exit(main())
