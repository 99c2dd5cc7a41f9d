"""The compiled graph's JSON (mlbuild/graph/model.py): written without ``dataclasses.asdict``'s
deep copy, it must be exactly what ``asdict`` wrote (the compiled cache's format), and read back
into the same graph."""

from __future__ import annotations

import json
from dataclasses import asdict

from mlbuild.data import DatasetSpec
from mlbuild.graph.model import Graph, Output, PathUse, ServedModel, StepSpec
from mlbuild.graph.packaging import DockerSpec, PackageSpec


def step(name: str, **extra: object) -> StepSpec:
    fields: dict[str, object] = {
        "name": name,
        "kind": "command",
        "config": {"cmd": f"echo {name}", "nested": {"a": [1, {"b": None}]}},
        "deps": ["data.csv"],
        "outs": [Output(f"{name}.txt"), Output(f"{name}.bin", cache=False, persist=True)],
        "params": {"train": {"lr": 0.1, "layers": [1, 2]}},
        "metrics": [],
        "env": {"X": "1"},
        "secrets": ["TOKEN"],
        "needs": [],
        "always_run": False,
        "timeout": 3.5,
        "upstream": [],
    }
    return StepSpec(**{**fields, **extra})  # type: ignore[arg-type]


def rich() -> Graph:
    return Graph(
        name="demo",
        recipe_file="ml.yaml",
        steps={
            "a": step("a", problems=[["steps.a.params[0]", "unset"]], env_vars={"V": None}),
            "b": step("b", upstream=["a"], params_from="hpo", best={"lr": 0.2}, default=False),
        },
        params={"train": {"lr": 0.1}},
        overrides=["train.lr=0.1"],
        python="3.11",
        lock_file="requirements.txt",
        datasets={"raw": DatasetSpec("raw", "data/raw", dvc=True, remote="s3")},
        positions={"steps.a": [5, 3]},
        lines={1: "schema_version: 1"},
        model=ServedModel("m", {"model": "a.bin"}, "sklearn", None, None, {"inputs": []}),
        paths=[PathUse("steps.a.outs[0]", "a.txt", True)],
        protected={"ml.yaml": "the recipe"},
        package=PackageSpec(
            code=["src"],
            code_py_only=True,
            sample=None,
            bundle="model.tar",
            docker=DockerSpec("img", "base", None, ["curl"], {"k": "v"}),
        ),
        executors={"docker": {"image": "x"}},
        tests={"golden": {"paths": ["t.json"]}},
    )


def test_the_json_is_what_asdict_wrote_key_for_key_and_in_order() -> None:
    graph = rich()
    assert json.dumps(graph.to_json()) == json.dumps(asdict(graph))


def test_a_graph_without_model_package_or_datasets_too() -> None:
    graph = Graph("d", "ml.yaml", {"a": step("a")}, {}, [], None, None)
    assert json.dumps(graph.to_json()) == json.dumps(asdict(graph))


def test_the_json_reads_back_into_the_same_graph() -> None:
    graph = rich()
    again = Graph.from_json(json.loads(json.dumps(graph.to_json())))
    assert again == graph


def test_a_step_read_back_is_as_frozen_and_equal_as_a_constructed_one() -> None:
    again = Graph.from_json(json.loads(json.dumps(rich().to_json())))
    spec, out, use = again.steps["a"], again.steps["a"].outs[0], again.paths[0]
    assert (type(spec), type(out), type(use)) == (StepSpec, Output, PathUse)
    assert spec == step("a", problems=[["steps.a.params[0]", "unset"]], env_vars={"V": None})
    assert out == Output("a.txt") and use == PathUse("steps.a.outs[0]", "a.txt", True)
    for obj, name in ((spec, "name"), (out, "path"), (use, "path")):
        try:
            setattr(obj, name, "x")
        except AttributeError:  # dataclasses.FrozenInstanceError
            continue
        raise AssertionError(f"{type(obj).__name__} read back is not frozen")


def test_an_entry_lacking_a_field_gets_its_default_and_one_with_a_stranger_is_refused() -> None:
    raw = json.loads(json.dumps(rich().to_json()))
    del raw["steps"]["a"]["default"]  # an optional field
    del raw["steps"]["a"]["outs"][0]["persist"]
    del raw["paths"][0]["writes"]  # a required one
    try:
        Graph.from_json(raw)
    except TypeError as exc:
        assert "writes" in str(exc)
    else:
        raise AssertionError("a path use without `writes` was read")
    raw["paths"][0]["writes"] = True
    again = Graph.from_json(raw)
    assert again.steps["a"].default is True and again.steps["a"].outs[0].persist is False
    raw["steps"]["b"]["planted"] = 1
    try:
        Graph.from_json(raw)
    except TypeError as exc:
        assert "planted" in str(exc)
    else:
        raise AssertionError("a step with an unknown field was read")
