"""The model's servable check: a step kind, ``model-check``, compiled from ``model.check``.

The step ``model:check`` depends on the model's artifacts (so the steps that write them run
first), its signature, its class's file and a sample. When it runs, it loads the model from the
verified cache exactly as ``mlbuild serve`` does, in a child process started through the step's
executor (numpy, scikit-learn and the model's own code never load into mlbuild's process), predicts
on the sample, and keeps the predictions as its result (``run --json``) and, if asked, in an output
file. It is cached like any step: it re-runs only when an artifact, the sample, the model's code or
its settings change. The model-tests issue extends it with golden cases and gates.

- :mod:`.compile`: ``model.check`` → the step (no heavy import);
- :mod:`.kind`: the step's execution in mlbuild (no heavy import);
- :mod:`.child`: the check itself, in its own process (numpy, the model).
"""

from __future__ import annotations

STEP = "model:check"
KIND = "model-check"
# bumped when what the check does changes, so every cached check runs again
CHECK_VERSION = 1

__all__ = ["CHECK_VERSION", "KIND", "STEP"]
