"""CI pipelines for model repositories: GitLab's ``.gitlab-ci.yml`` generated from the recipe,
a reusable include template, and the reports the jobs publish."""

from __future__ import annotations

from mlbuild.ci.gitlab import (
    PIPELINE_FILE,
    Pipeline,
    check_pipeline,
    gitlab_pipeline,
    gitlab_template,
    pipeline_text,
)
from mlbuild.ci.openmetrics import openmetrics, openmetrics_of_last_run
from mlbuild.ci.providers import (
    MANUAL_ON_DEFAULT_BRANCH,
    ON_MERGE_REQUESTS,
    PROVIDERS,
    STAGES,
    Context,
    JobProvider,
    register,
)

__all__ = [
    "MANUAL_ON_DEFAULT_BRANCH",
    "ON_MERGE_REQUESTS",
    "PIPELINE_FILE",
    "PROVIDERS",
    "STAGES",
    "Context",
    "JobProvider",
    "Pipeline",
    "check_pipeline",
    "gitlab_pipeline",
    "gitlab_template",
    "openmetrics",
    "openmetrics_of_last_run",
    "pipeline_text",
    "register",
]
