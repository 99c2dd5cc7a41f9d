"""The pipeline graph: compilation from the recipe, fingerprints, and the plan with its reasons."""

from __future__ import annotations

from mlbuild.graph.compiled import load_graph
from mlbuild.graph.fingerprint import Components, components, explain, fingerprint
from mlbuild.graph.model import COMMAND, Graph, Output, ServedModel, StepSpec
from mlbuild.graph.plan import (
    Action,
    Decision,
    ExternalHook,
    IdentityHook,
    Planner,
    make_plan,
    unrestorable,
)
from mlbuild.graph.records import StepRecord, StepRecords
from mlbuild.graph.workspace import Workspace

__all__ = [
    "COMMAND",
    "Action",
    "Components",
    "Decision",
    "ExternalHook",
    "Graph",
    "IdentityHook",
    "Output",
    "Planner",
    "ServedModel",
    "StepRecord",
    "StepRecords",
    "StepSpec",
    "Workspace",
    "components",
    "explain",
    "fingerprint",
    "load_graph",
    "make_plan",
    "unrestorable",
]
