"""Each kind of test, passing and failing, on the toy model through the real CLI: the verdict,
its one-line summary and the located details are what a user reads."""

from __future__ import annotations

import pytest

from tests.conftest import Workspace
from tests.testing.conftest import mlbuild, results, run_json, toy_recipe

pytestmark = pytest.mark.slow


def test_metric_bounds_pass_and_fail_with_the_value_and_the_bound(toy: Workspace) -> None:
    toy.recipe(
        toy_recipe(
            """
            good: {kind: metric, metric: accuracy, min: 0.8}
            capped: {kind: metric, metric: evaluate/loss, max: 0.1}
            """
        )
    )
    found = run_json(toy)
    assert found["code"] == 1
    assert results(found) == {"good": "passed", "capped": "failed"}
    by_name = {t["name"]: t for t in found["tests"]}
    assert by_name["good"]["summary"] == "accuracy 0.9 >= 0.8"
    assert by_name["good"]["measured"] == {"value": 0.9}
    assert by_name["capped"]["summary"] == "loss 0.2 is above the maximum 0.1"


def test_metric_against_the_version_in_production(toy: Workspace) -> None:
    toy.recipe(
        toy_recipe(
            """
            accuracy:
              kind: metric
              metric: accuracy
              baseline: {alias: production, tolerance: 0.02}
            loss:
              kind: metric
              metric: loss
              baseline: {alias: production, better: lower}
            """
        )
    )
    first = run_json(toy)
    assert results(first) == {"accuracy": "passed", "loss": "passed"}
    assert first["tests"][0]["summary"] == (
        "no version of model 'toy' alias 'production' yet, nothing to compare with"
    )
    # the tested run becomes version 1, in production
    registered = mlbuild(toy, "model", "register", first["run_id"], "--name", "toy")
    assert registered.returncode == 0, registered.stderr
    assert mlbuild(toy, "model", "alias", "toy", "production", "1").returncode == 0

    # the alias moved: the verdicts reached without a baseline do not count any more
    worse = run_json(toy, "accuracy=0.85", "loss=0.25")
    assert results(worse) == {"accuracy": "failed", "loss": "failed"}
    assert worse["tests"][0]["summary"] == (
        "accuracy 0.85 is worse than the baseline 0.9 by 0.05, more than the tolerance 0.02 "
        "(version 1, model 'toy' alias 'production')"
    )
    assert worse["tests"][0]["measured"] == {
        "value": 0.85,
        "baseline": 0.9,
        "baseline_version": 1,
    }
    assert worse["tests"][1]["summary"].startswith(
        "loss 0.25 is worse than the baseline 0.2 by 0.05, more than the tolerance 0"
    )
    close = run_json(toy, "accuracy=0.89", "loss=0.1")
    assert results(close) == {"accuracy": "passed", "loss": "passed"}
    assert close["tests"][0]["summary"] == (
        "accuracy 0.89 is within 0.02 of the baseline 0.9 (version 1, model 'toy' alias "
        "'production')"
    )
    assert close["tests"][1]["summary"] == (
        "loss 0.1 is no worse than the baseline 0.2 (version 1, model 'toy' alias 'production')"
    )


def test_cases_compare_classes_values_within_a_tolerance_and_ranges(toy: Workspace) -> None:
    toy.gen(
        {
            "tests": {
                "near.csv": "x,n,colour,score,score>=,score<=\n"
                "0.5,0,red,1.05,,\n"  # 1.0: within 0.1
                "1.0,0,red,,1.5,2.5\n"  # 2.0: inside the range
                "1.0,1,red,,3.5,\n",  # 3.0: below 3.5
            }
        }
    ).recipe(
        toy_recipe(
            """
            golden: {kind: cases, file: tests/cases.csv, name_column: case}
            near: {kind: cases, file: tests/near.csv, tolerance: {score: 0.1}}
            """
        )
    )
    found = run_json(toy)
    assert results(found) == {"golden": "passed", "near": "failed"}
    near = next(t for t in found["tests"] if t["name"] == "near")
    assert near["summary"] == "1 of 3 cases wrong"
    assert near["details"] == ["tests/near.csv:4: score 3.0 is below 3.5"]
    assert near["measured"] == {"cases": 3, "wrong": 1}


def test_a_wrong_golden_case_names_its_line_and_name(toy: Workspace) -> None:
    toy.gen({"tests": {"cases.csv": "case,x,n,colour,size,label\nflip,1.0,0,red,small,0\n"}})
    toy.recipe(toy_recipe("golden: {kind: cases, file: tests/cases.csv, name_column: case}"))
    done = mlbuild(toy, "test")
    assert done.returncode == 1
    assert "golden: 1 of 1 cases wrong\n" in done.stdout
    assert (
        "  tests/cases.csv:2 (flip): size: expected 'small', got 'big'; label: expected 0, got 1"
        in done.stdout
    )


def test_invariance_holds_or_counts_the_rows_that_changed(toy: Workspace) -> None:
    toy.recipe(
        toy_recipe(
            """
            colour-blind: {kind: invariance, file: tests/cases.csv, perturb: {colour: {set: green}}}
            nudged:
              kind: invariance
              file: tests/cases.csv
              perturb: {x: {add: 0.3}}
              outputs: [label, size]
            tolerant:
              kind: invariance
              file: tests/cases.csv
              perturb: {x: {multiply: 1.01}}
              outputs: [score]
              tolerance: 0.05
            lenient:
              kind: invariance
              file: tests/cases.csv
              perturb: {x: {add: 0.3}}
              outputs: [label]
              max_failure_rate: 0.25
            """
        )
    )
    found = run_json(toy)
    assert results(found) == {
        "colour-blind": "passed",
        "nudged": "failed",
        "tolerant": "passed",
        "lenient": "passed",
    }
    tests = {t["name"]: t for t in found["tests"]}
    # 2 * 0.5 + 0 = 1.0 is not > 1; 2 * 0.8 = 1.6 is: the row "one" flips
    assert tests["nudged"]["summary"] == (
        "label, size changed in 1 of 4 rows (25.0%, none allowed)"
    )
    assert tests["nudged"]["details"] == ["tests/cases.csv:3: label 0 → 1, size 'small' → 'big'"]
    assert tests["lenient"]["summary"] == "1 of 4 rows broke it (25%, at most 25% allowed)"
    assert tests["colour-blind"]["summary"] == "4 rows held"


def test_directional_requires_the_declared_move(toy: Workspace) -> None:
    toy.recipe(
        toy_recipe(
            """
            up: {kind: directional, file: tests/cases.csv, perturb: {n: {add: 1}},
                 output: score, expect: increase}
            flat: {kind: directional, file: tests/cases.csv, perturb: {colour: {set: x}},
                   output: score, expect: increase}
            never-down: {kind: directional, file: tests/cases.csv, perturb: {colour: {set: x}},
                         output: label, expect: not_decrease}
            """
        )
    )
    found = run_json(toy)
    assert results(found) == {"up": "passed", "flat": "failed", "never-down": "passed"}
    flat = next(t for t in found["tests"] if t["name"] == "flat")
    assert flat["summary"] == "score did not go up in 4 of 4 rows (100.0%, none allowed)"
    assert flat["details"][0] == "tests/cases.csv:2: score 0 → 0"


def test_slices_judge_every_group_and_the_gap_between_them(toy: Workspace) -> None:
    toy.gen(
        {
            "tests": {
                "regions.csv": "x,n,colour,region,truth\n"
                "1.0,0,red,north,1\n1.0,0,red,north,1\n"  # both right
                "0.0,0,red,south,1\n1.0,0,red,south,1\n"  # one right
                "1.0,0,red,east,0\n"  # a group of one row
            }
        }
    ).recipe(
        toy_recipe(
            """
            fair:
              kind: slices
              file: tests/regions.csv
              by: region
              label: truth
              output: label
              metric: accuracy
              min: 0.4
              max_gap: 0.6
              min_rows: 2
            strict: {kind: slices, file: tests/regions.csv, by: region, label: truth,
                     output: label, metric: accuracy, min: 0.75}
            busy: {kind: slices, file: tests/regions.csv, by: region, output: score,
                   metric: mean, max: 1.5}
            """
        )
    )
    found = run_json(toy)
    assert results(found) == {"fair": "passed", "strict": "failed", "busy": "failed"}
    tests = {t["name"]: t for t in found["tests"]}
    assert tests["fair"]["summary"] == (
        "accuracy holds in all 2 groups of 'region' (lowest 0.5: region=south)"
    )
    assert tests["fair"]["measured"] == {"region=north": 1.0, "region=south": 0.5, "gap": 0.5}
    assert tests["strict"]["summary"] == "2 problems in 3 groups of 'region'"
    assert tests["strict"]["details"][:2] == [
        "region=east: accuracy 0 (1 rows) is below the minimum 0.75",
        "region=south: accuracy 0.5 (2 rows) is below the minimum 0.75",
    ]
    assert "region=north: mean 2 (2 rows) is above the maximum 1.5" in tests["busy"]["details"]


def test_latency_within_a_generous_budget_and_over_an_impossible_one(toy: Workspace) -> None:
    # TOY_DELAY makes every prediction sleep 20 ms: a 1 ms budget cannot be met, a minute can
    toy.recipe(
        toy_recipe(
            """
            roomy: {kind: latency, file: tests/cases.csv, p95_ms: 60000, requests: 5, warmup: 1}
            tight: {kind: latency, file: tests/cases.csv, p95_ms: 1, requests: 5, warmup: 1,
                    batch: 3}
            """
        )
    )
    found = run_json(toy, env={"TOY_DELAY": "0.02"})
    assert results(found) == {"roomy": "passed", "tight": "failed"}
    tests = {t["name"]: t for t in found["tests"]}
    assert tests["tight"]["summary"].startswith("in-process p95 ")
    assert tests["tight"]["summary"].endswith(
        " ms is above the budget 1 ms (p50 " + tests["tight"]["summary"].split("(p50 ")[1]
    )
    assert tests["tight"]["summary"].endswith("(5 predictions of 3 rows)")
    assert tests["tight"]["measured"]["p95_ms"] >= 20
    assert tests["roomy"]["measured"]["requests"] == 5


def test_latency_through_the_server_and_serving_against_a_real_server(toy: Workspace) -> None:
    toy.recipe(
        toy_recipe(
            """
            through-server: {kind: latency, file: tests/cases.csv, server_p95_ms: 60000,
                             requests: 5}
            serving: {kind: serving, file: tests/cases.csv}
            health: {kind: serving}
            """
        )
    )
    found = run_json(toy)
    assert results(found) == {"through-server": "passed", "serving": "passed", "health": "passed"}
    tests = {t["name"]: t for t in found["tests"]}
    assert tests["serving"]["summary"] == (
        "health, metadata and 4 rows through both protocols agree with the in-process model"
    )
    assert tests["health"]["summary"] == "health and metadata agree with the in-process model"
    assert set(tests["through-server"]["measured"]) == {
        "requests",
        "batch",
        "server_p50_ms",
        "server_p95_ms",
    }


def test_serving_catches_a_server_that_answers_differently(toy: Workspace) -> None:
    # the servable adds 0.5 in the server process only: train/serve skew
    toy.recipe(toy_recipe("serving: {kind: serving, file: tests/cases.csv}"))
    found = run_json(toy, env={"TOY_SKEW": "1"})
    assert results(found) == {"serving": "failed"}
    serving = found["tests"][0]
    assert serving["summary"] == "the server differs from the in-process model: 12 problems"
    assert serving["details"][:3] == [
        "tests/cases.csv:2: output 'score': in-process 0.0, v2 infer 0.5",
        "tests/cases.csv:3: output 'score': in-process 1.0, v2 infer 1.5",
        "tests/cases.csv:4: output 'score': in-process 2.0, v2 infer 2.5",
    ]
    assert "tests/cases.csv:3: output 'label': in-process 0, /invocations 1" in serving["details"]
