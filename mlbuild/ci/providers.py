"""The jobs of a generated pipeline, each contributed by a provider keyed by a recipe section.

A provider says which recipe section it needs (``None``: every recipe), which stage its job
belongs to and how to build the job. The generator adds the jobs of the providers whose section
the recipe has, in stage order; a later step kind (tests, package, publish, deploy) brings its job
by :func:`register`-ing a provider, without a change to the generator::

    register(JobProvider("mlbuild:deploy", "deploy", section="deploy",
                         needs=("mlbuild:run",), rules=MANUAL_ON_DEFAULT_BRANCH,
                         script=lambda ctx: [ctx.mlbuild("deploy")]))

Scripts are lists of shell lines that GitLab runs; every value from the recipe in them is a path
checked by the recipe's own rules, and every value from CI is a quoted ``$VARIABLE``, never text
pasted into a command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STAGES = ("validate", "run", "test", "package", "publish", "deploy")

MERGE_REQUEST = '$CI_PIPELINE_SOURCE == "merge_request_event"'
ON_MERGE_REQUESTS: list[dict[str, Any]] = [{"if": MERGE_REQUEST}]
# deploys and releases: from the default branch only, and only when someone presses the button
MANUAL_ON_DEFAULT_BRANCH: list[dict[str, Any]] = [
    {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "when": "manual"}
]

DIFF_REPORT = "mlbuild-diff.md"
METRICS_REPORT = "mlbuild-metrics.txt"
JUNIT_REPORT = "mlbuild-junit.xml"
TOKEN_VARIABLE = "MLBUILD_GITLAB_TOKEN"  # noqa: S105 - the variable's name, not a token


@dataclass(frozen=True)
class Context:
    """What a provider knows of the repository: where the recipe is and what it holds."""

    workspace: str  # the recipe's directory relative to the repository root ("" at the root)
    recipe: str  # the recipe's file name
    sections: dict[str, Any]  # the recipe's top-level mapping, as written
    metrics: list[str]  # the steps' metrics files, relative to the workspace
    lock_file: str | None  # relative to the workspace
    generated: bool  # the whole .gitlab-ci.yml (else the include template, in a team's pipeline)

    def path(self, relative: str) -> str:
        """A workspace path as the job sees it, relative to ``$CI_PROJECT_DIR``."""
        return f"{self.workspace}/{relative}" if self.workspace else relative

    def mlbuild(self, *args: str) -> str:
        """The shell line running ``mlbuild ARGS`` in the workspace."""
        words = ["mlbuild"]
        if self.workspace:
            words += ["-C", self.workspace]
        if self.recipe != "ml.yaml":
            words += ["-f", self.recipe]
        return " ".join([*words, *args])


@dataclass(frozen=True)
class JobProvider:
    """One job: ``name`` in ``stage``, added when the recipe has ``section``."""

    name: str
    stage: str
    script: Callable[[Context], list[str]]
    section: str | None = None
    needs: tuple[str, ...] = ()
    rules: list[dict[str, Any]] | None = None  # None: every pipeline
    artifacts: Callable[[Context], dict[str, Any]] | None = None
    variables: dict[str, str] = field(default_factory=dict)
    writes_cache: bool = False  # saves mlbuild's cache for later pipelines (else only reads it)
    allow_failure: bool = False  # a report, not a gate
    when: Callable[[dict[str, Any]], bool] | None = None  # and only if the sections say so

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage {self.stage!r} is not one of {', '.join(STAGES)}")


PROVIDERS: list[JobProvider] = []


def register(provider: JobProvider) -> None:
    """Add ``provider`` (a job of the same name is replaced)."""
    PROVIDERS[:] = [p for p in PROVIDERS if p.name != provider.name]
    PROVIDERS.append(provider)


def providers_for(sections: dict[str, Any]) -> list[JobProvider]:
    """The providers whose section the recipe has, in stage order."""
    chosen = [
        p
        for p in PROVIDERS
        if (p.section is None or p.section in sections) and (p.when is None or p.when(sections))
    ]
    return sorted(chosen, key=lambda p: STAGES.index(p.stage))


# ---- the jobs of the commands that exist today ---------------------------------------------------


def _validate(ctx: Context) -> list[str]:
    check = [ctx.mlbuild("ci", "gitlab", "--check")] if ctx.generated else []
    return [ctx.mlbuild("validate"), *check]


def _run(ctx: Context) -> list[str]:
    return [
        ctx.mlbuild("run"),
        ctx.mlbuild("ci", "metrics", "-o", f'"$CI_PROJECT_DIR/{METRICS_REPORT}"'),
    ]


def _run_artifacts(ctx: Context) -> dict[str, Any]:
    return {
        "when": "always",
        "expire_in": "30 days",
        "paths": [*(ctx.path(m) for m in ctx.metrics), ctx.path(".mlbuild/logs/")],
        "reports": {"metrics": METRICS_REPORT},
    }


def _diff(ctx: Context) -> list[str]:
    notes = "$CI_API_V4_URL/projects/$CI_PROJECT_ID/merge_requests/$CI_MERGE_REQUEST_IID/notes"
    return [
        ctx.mlbuild(
            "diff",
            '"$CI_MERGE_REQUEST_DIFF_BASE_SHA"',
            "HEAD",
            "--format",
            "markdown",
            "-o",
            f'"$CI_PROJECT_DIR/{DIFF_REPORT}"',
        ),
        f'cat "$CI_PROJECT_DIR/{DIFF_REPORT}"',
        # the token goes to curl on its standard input, so it is in no command line, and the job
        # log shows this script as written, with the variable's name only
        f'if [ -n "${{{TOKEN_VARIABLE}:-}}" ]; then\n'
        f"  printf 'PRIVATE-TOKEN: %s\\n' \"${TOKEN_VARIABLE}\" |\n"
        f"    curl --fail --silent --show-error --output /dev/null --header @- \\\n"
        f'      --data-urlencode "body@$CI_PROJECT_DIR/{DIFF_REPORT}" "{notes}"\n'
        '  echo "mlbuild: posted the report on merge request !$CI_MERGE_REQUEST_IID"\n'
        "else\n"
        f'  echo "mlbuild: {TOKEN_VARIABLE} is not set; the report is an artifact only"\n'
        "fi",
    ]


def _diff_artifacts(ctx: Context) -> dict[str, Any]:
    return {"expose_as": "mlbuild diff", "paths": [DIFF_REPORT], "expire_in": "30 days"}


def _test(ctx: Context) -> list[str]:
    return [ctx.mlbuild("test", "--junit", f'"$CI_PROJECT_DIR/{JUNIT_REPORT}"')]


def _test_artifacts(ctx: Context) -> dict[str, Any]:
    # when: always — a failed gate is when the report and the logs matter most
    return {
        "when": "always",
        "expire_in": "30 days",
        "paths": [ctx.path(".mlbuild/logs/")],
        "reports": {"junit": JUNIT_REPORT},
    }


def _package(ctx: Context) -> list[str]:
    return [ctx.mlbuild("package", "--target", "bundle")]


def _package_artifacts(ctx: Context) -> dict[str, Any]:
    bundle = str((ctx.sections.get("package") or {}).get("bundle"))
    return {"expire_in": "30 days", "paths": [ctx.path(bundle)]}


def _has_bundle(sections: dict[str, Any]) -> bool:
    package = sections.get("package")
    return isinstance(package, dict) and bool(package.get("bundle"))


for _provider in (
    JobProvider("mlbuild:validate", "validate", _validate),
    JobProvider(
        "mlbuild:diff",
        "validate",
        _diff,
        rules=ON_MERGE_REQUESTS,
        artifacts=_diff_artifacts,
        variables={"GIT_DEPTH": "0"},  # the merge base must be in the clone
        allow_failure=True,
    ),
    JobProvider(
        "mlbuild:run",
        "run",
        _run,
        section="steps",
        needs=("mlbuild:validate",),
        artifacts=_run_artifacts,
        writes_cache=True,
    ),
    # the model's tests (issue 13): their verdicts go into the cache, where the packaging job's
    # gate finds them for the exact model; the JUnit report feeds GitLab's test widget
    JobProvider(
        "mlbuild:test",
        "test",
        _test,
        section="tests",
        needs=("mlbuild:run",),
        artifacts=_test_artifacts,
        writes_cache=True,
    ),
    # the bundle (issue 12), behind the same gate as on a laptop: `mlbuild package` refuses a
    # model whose declared tests did not all pass — the test job's verdicts, from the cache. The
    # image is not built here: the job's image has no Docker engine (see the README)
    JobProvider(
        "mlbuild:package",
        "package",
        _package,
        section="package",
        when=_has_bundle,
        needs=("mlbuild:run", "mlbuild:test"),
        artifacts=_package_artifacts,
    ),
):
    register(_provider)
