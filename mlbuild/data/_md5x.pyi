from collections.abc import Sequence
from os import PathLike
from typing import Literal

LANES: int

def md5_files(
    paths: Sequence[str | bytes | PathLike[str] | PathLike[bytes]],
    /,
    *,
    threads: int = 1,
    simd: Literal["auto", "avx512", "avx2", "off"] = "auto",
) -> list[str | int]: ...
def simd_levels() -> list[str]: ...
