"""One contract, every backend of the remote cache (see ``mlbuild/cache/remote/backend.py``):
a directory, S3 (a real moto server) through s3fs and through mlbuild's own signed reads
(``s3.py``: reads its own, writes through s3fs), and fsspec's local filesystem (no atomic PUT: a
temporary name and a rename)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlbuild.cache.remote import Backend, DirectoryBackend, FsspecBackend, RemoteFileError, s3

KINDS = ["directory", "s3", "s3-reader", "fsspec-local"]


@pytest.fixture(params=KINDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    if request.param == "directory":
        yield DirectoryBackend(tmp_path / "remote")
    elif request.param == "s3":
        server = request.getfixturevalue("s3")
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        url = f"s3://{server.bucket()}/prefix"
        yield FsspecBackend.connect(url, {}, url, "s3fs")
    elif request.param == "s3-reader":
        server = request.getfixturevalue("s3")
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        url = f"s3://{server.bucket()}/a prefix/ü"  # quoted in the path exactly as signed
        reader = s3.connect(url, {}, url, "s3fs")
        assert isinstance(reader, s3.S3Reader)
        yield reader
    else:
        url = f"file://{tmp_path}/remote"
        yield FsspecBackend.connect(url, {}, url, "fsspec")


def read(backend: Backend, key: str) -> bytes:
    with backend.opened(key) as found:
        data = found.read(found.size + 1)
        assert len(data) == found.size
        return data


def test_what_is_written_reads_back_whole(backend: Backend, tmp_path: Path) -> None:
    backend.write("actions/ab/one.json", b'{"a": 1}')
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 << 20))
    backend.upload("objects/cd/big", source, 3 << 20)
    assert read(backend, "actions/ab/one.json") == b'{"a": 1}'
    assert read(backend, "objects/cd/big") == source.read_bytes()
    assert backend.size("objects/cd/big") == 3 << 20


def test_a_missing_key_is_none_or_file_not_found(backend: Backend) -> None:
    assert backend.size("objects/ee/nothing") is None
    with pytest.raises(FileNotFoundError), backend.opened("objects/ee/nothing"):
        pass


def test_a_second_write_replaces_the_first_whole(backend: Backend) -> None:
    backend.write("actions/ab/e.json", b"x" * 1000)
    backend.write("actions/ab/e.json", b"short")
    assert read(backend, "actions/ab/e.json") == b"short"


def test_concurrent_writers_of_one_key_leave_one_whole_copy(backend: Backend) -> None:
    payloads = [bytes([n]) * (200_000 + n) for n in range(8)]
    errors: list[BaseException] = []

    def write(data: bytes) -> None:
        try:
            backend.write("actions/ab/race.json", data)
        except BaseException as exc:  # collected: the test fails below, not in a thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert read(backend, "actions/ab/race.json") in payloads


def test_no_temporary_file_is_left_behind(backend: Backend, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"data")
    backend.upload("objects/aa/f", source, 4)
    backend.write("actions/aa/g.json", b"{}")
    assert sorted(_names(backend)) == ["actions/aa/g.json", "objects/aa/f"]


def _names(backend: Backend) -> list[str]:
    if isinstance(backend, DirectoryBackend):
        return [
            p.relative_to(backend.root).as_posix() for p in backend.root.rglob("*") if p.is_file()
        ]
    if isinstance(backend, s3.S3Reader):
        backend = backend._writes()  # what it wrote, listed through s3fs
    assert isinstance(backend, FsspecBackend)
    found: Any = backend.fs.find(backend.root)
    return [str(p)[len(backend.root) + 1 :] for p in found]


def test_a_directory_remote_opens_no_symbolic_link(tmp_path: Path) -> None:
    backend = DirectoryBackend(tmp_path / "remote")
    (tmp_path / "elsewhere").write_bytes(b"not yours")
    (tmp_path / "remote" / "objects" / "ab").mkdir(parents=True)
    (tmp_path / "remote" / "objects" / "ab" / "cd").symlink_to(tmp_path / "elsewhere")
    with (
        pytest.raises(RemoteFileError, match="is a symbolic link"),
        backend.opened("objects/ab/cd"),
    ):
        pass
    with pytest.raises(RemoteFileError, match="is a symbolic link"):
        backend.size("objects/ab/cd")


def test_a_directory_remote_writes_into_no_symlinked_folder(tmp_path: Path) -> None:
    backend = DirectoryBackend(tmp_path / "remote")
    (tmp_path / "remote" / "objects").mkdir(parents=True)
    (tmp_path / "chosen").mkdir()
    (tmp_path / "remote" / "objects" / "ab").symlink_to(tmp_path / "chosen")
    with pytest.raises(RemoteFileError, match="is a symbolic link; mlbuild writes no file there"):
        backend.write("objects/ab/cd", b"x")
    assert list((tmp_path / "chosen").iterdir()) == []


def test_objects_in_a_directory_remote_are_read_only(tmp_path: Path) -> None:
    backend: Callable[[], DirectoryBackend] = lambda: DirectoryBackend(tmp_path / "r")  # noqa: E731
    backend().write("objects/ab/cd", b"x")
    backend().write("actions/ab/e.json", b"{}")
    assert (tmp_path / "r/objects/ab/cd").stat().st_mode & 0o777 == 0o444
    assert (tmp_path / "r/actions/ab/e.json").stat().st_mode & 0o777 == 0o644
