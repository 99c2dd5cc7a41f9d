"""Secrets never leave the step: masked across lines and reads, in every sink mlbuild writes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Workspace, statuses

KEY = "-----BEGIN TEST KEY-----\nAAAAbbbbCCCCdddd1111\nEEEEffffGGGGhhhh2222\n-----END TEST KEY-----"
PIECES = [KEY, "AAAAbbbbCCCCdddd1111", "EEEEffffGGGGhhhh2222", "-----END TEST KEY-----"]

LEAKY = """\
schema_version: 1
name: demo
steps:
  leaky:
    cmd: |
      printf '%s\\n' "$API_KEY"
      printf '%s\\n' "$API_KEY" | while read -r line; do echo "line: $line"; done
      python -c "
      import json, os, sys, time
      key = os.environ['API_KEY']
      for i in range(0, len(key), 3):  # no newline: mlbuild reads it in 3-byte pieces
          sys.stdout.write(key[i:i + 3]); sys.stdout.flush(); time.sleep(0.005)
      print()
      json.dump({'token': key, 'first_line': key.splitlines()[1], 'score': 0.5},
                open('metrics.json', 'w'))
      open('out.txt', 'w').write('done')
      "
    secrets: [API_KEY]
    metrics: [metrics.json]
    outs: [out.txt]
"""


def leaks(text: str) -> list[str]:
    return [piece for piece in PIECES if piece in text]


def files_holding_a_piece(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(piece.encode() in data for piece in PIECES):
                found.append(str(path.relative_to(root)))
    return found


def test_a_multi_line_secret_never_reaches_any_sink(ws: Workspace) -> None:
    ws.recipe(LEAKY)
    done = ws.cli("run", "--note", f"rotated {PIECES[1]}", env={"API_KEY": KEY})
    assert done.returncode == 0, done.stderr
    assert leaks(done.stdout + done.stderr) == []
    assert "[leaky] ***\n" in done.stdout
    assert (
        "[leaky] line: ***\n" * 4 + "[leaky] ***\n" in done.stdout
    )  # line by line, then in pieces
    assert (
        "leaky: metrics file metrics.json held the value of secret API_KEY (in 'token', "
        "'first_line'); it is replaced by *** in the file and in everything recorded\n"
        in done.stdout
    )
    assert "metrics: first_line=***  score=0.5  token=***" in done.stdout
    log = ws.read(".mlbuild/logs/leaky.log")
    assert log == "***\n" + "line: ***\n" * 4 + "***\n"
    (entry,) = (ws.root / ".mlbuild/cache/actions").glob("*/*.json")
    assert json.loads(entry.read_text())["metrics"] == {
        "token": "***",
        "first_line": "***",
        "score": 0.5,
    }
    (record,) = (ws.root / ".mlbuild/runs/journal").glob("*.json")
    run = json.loads(record.read_text())
    assert run["metrics"] == {"token": "***", "first_line": "***", "score": 0.5}
    assert run["notes"] == "rotated ***"
    assert files_holding_a_piece(ws.root / ".mlbuild") == []
    assert json.loads(ws.read("metrics.json")) == run["metrics"]


def test_json_output_and_cached_runs_are_masked_too(ws: Workspace) -> None:
    ws.recipe(LEAKY)
    first = ws.cli("run", "--json", env={"API_KEY": KEY})
    assert first.returncode == 0, first.stderr
    assert leaks(first.stdout + first.stderr) == []
    assert json.loads(first.stdout)["metrics"] == {
        "token": "***",
        "first_line": "***",
        "score": 0.5,
    }
    # another value of the secret: still cached (secrets are not in fingerprints), still masked
    again = ws.cli("run", "--json", env={"API_KEY": KEY.replace("1111", "9999")})
    assert statuses(json.loads(again.stdout)) == {"leaky": "cached"}
    assert leaks(again.stdout + again.stderr) == []
    assert files_holding_a_piece(ws.root / ".mlbuild") == []


def test_a_failure_message_holding_a_secret_is_masked(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          bad:
            cmd: 'printf "token: [%s\\n" "$API_KEY" > metrics.yaml'
            secrets: [API_KEY]
            metrics: [metrics.yaml]
        """
    )
    done = ws.cli("run", env={"API_KEY": "tok-0123456789"})
    assert done.returncode == 1
    assert "mlbuild: step 'bad' failed: metrics file metrics.yaml is not valid YAML" in done.stderr
    assert "    token: [***\n" in done.stderr  # YAML quotes the line: masked
    assert "tok-0123456789" not in done.stdout + done.stderr
    assert files_holding_a_piece(ws.root / ".mlbuild") == []
