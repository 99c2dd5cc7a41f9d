from collections.abc import Sequence
from os import PathLike

LANES: int

def md5_files(
    paths: Sequence[str | bytes | PathLike[str] | PathLike[bytes]],
    /,
    *,
    threads: int = 1,
    simd: bool = True,
) -> list[str | int]: ...
def simd_available() -> bool: ...
