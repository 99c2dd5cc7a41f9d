"""What a container step costs: mlbuild's container executor against ``docker run``, side by side.

For each repetition, alternating the order, it runs the same python3 step in the same image:

- ``docker run --rm --network none --init -v WS:WS:ro -w WS IMAGE CMD`` — the peer, what a local
  step would call by hand (its output read through the CLI's attach);
- mlbuild's :class:`~mlbuild.exec.container.ContainerExecutor` (``start`` + ``wait``): the scratch
  directory, one read-only bind per input, labels, the attach stream, removal, collection;
- the same command as a local process, the floor.

Two commands: ``python3 -c pass`` (the per-step overhead) and one that writes a ``--size-mb`` MiB
output file (collection: mlbuild renames it out of the scratch directory; ``docker run`` binds an
output directory, so neither copies). Medians in seconds. Run it by hand and read it:

    python bench/bench_container.py --reps 9 --size-mb 512
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlbuild.exec.container import ContainerExecutor
from mlbuild.exec.executor import ProcessRequest
from mlbuild.masking import Secrets

IMAGE = "mlbuild-base:bookworm"
WRITE = "import sys; open('out/big.bin', 'wb').write(bytes(int(sys.argv[1]) << 20))"


def docker_run(ws: Path, argv: list[str]) -> float:
    (ws / "out").mkdir(exist_ok=True)
    command = [
        *("docker", "run", "--rm", "--network", "none", "--init"),
        *("-u", f"{os.getuid()}:{os.getgid()}"),
        *("-v", f"{ws / 'src'}:{ws / 'src'}:ro", "-v", f"{ws / 'out'}:{ws / 'out'}"),
        *("-w", str(ws), IMAGE, *argv),
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    took = time.perf_counter() - started
    shutil.rmtree(ws / "out")
    return took


def mlbuild_container(ws: Path, argv: list[str]) -> float:
    request = ProcessRequest(
        "bench", argv, ws, {"PYTHONUNBUFFERED": "1"}, {}, ["src/a.txt", "src/b.txt"],
        ["out"], ws / "bench.log", Secrets(), None, lambda _: None, {"image": IMAGE},
    )  # fmt: skip
    started = time.perf_counter()
    executor = ContainerExecutor()  # one per run: the image is resolved once, here each time
    executor.start(request).wait()
    took = time.perf_counter() - started
    shutil.rmtree(ws / "out", ignore_errors=True)
    return took


def local(ws: Path, argv: list[str]) -> float:
    (ws / "out").mkdir(exist_ok=True)
    started = time.perf_counter()
    subprocess.run(["python3", *argv[1:]], cwd=ws, check=True, stdout=subprocess.DEVNULL)
    took = time.perf_counter() - started
    shutil.rmtree(ws / "out")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--size-mb", type=int, default=512)
    args = parser.parse_args()
    ws = Path(tempfile.mkdtemp(prefix="mlbuild-bench-container-"))
    (ws / "src").mkdir()
    (ws / "src/a.txt").write_text("a")
    (ws / "src/b.txt").write_text("b")
    (ws / ".mlbuild").mkdir()
    cases = {
        "python3 -c pass": ["python3", "-c", "pass"],
        f"write a {args.size_mb} MiB output": ["python3", "-c", WRITE, str(args.size_mb)],
    }
    tools = {"docker run": docker_run, "mlbuild container": mlbuild_container, "local": local}
    print(f"load average before: {os.getloadavg()}")
    print("| step | docker run | mlbuild container executor | local process |")
    print("|---|---|---|---|")
    for label, argv in cases.items():
        times: dict[str, list[float]] = {name: [] for name in tools}
        for rep in range(args.reps):
            order = list(tools) if rep % 2 == 0 else list(reversed(tools))
            for name in order:
                times[name].append(tools[name](ws, argv))
        medians = {name: statistics.median(values) for name, values in times.items()}
        print(
            f"| {label} | {medians['docker run']:.3f} s | {medians['mlbuild container']:.3f} s "
            f"| {medians['local']:.3f} s |"
        )
    print(f"load average after: {os.getloadavg()}")
    shutil.rmtree(ws)


if __name__ == "__main__":
    main()
