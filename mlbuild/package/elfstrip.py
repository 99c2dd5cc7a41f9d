"""Drop the symbol tables and debug sections from the shared libraries of an image's packages, as
``strip --strip-unneeded`` would, with the standard library only: base images such as Debian's
minbase have no binutils, and an image build has no network to install them.

Run in the image's dependency stage as ``python3 elfstrip.py DIR``, after pip installed the lock's
wheels with their hashes checked. What the dynamic loader reads (the program headers, every
section loaded into memory, ``.dynsym`` and ``.dynstr``) is copied unchanged; only sections that
are not loaded and that nothing else links to (``.symtab``, ``.strtab``, ``.debug_*``) are cut,
and the section header table is written again without them. A file whose layout is not the usual
one (an unloaded section before a loaded one, a link into a dropped section, not 64-bit
little-endian) is left as it is. In the scikit-learn image it saves tens of megabytes (uvloop
alone ships 12 MB of debug information).
"""

from __future__ import annotations

import os
import struct
import sys

_SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
_PHDR = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr
_ALLOC = 0x2
_INFO_LINK = 0x40
_NOBITS = 8
_REL, _RELA = 9, 4


def _droppable(name: bytes, flags: int) -> bool:
    if flags & _ALLOC:
        return False
    return name in (b".symtab", b".strtab") or name.startswith(b".debug")


def strip(data: bytes) -> bytes | None:
    """``data`` without its symbol table and debug sections, or None to leave it unchanged
    (not a 64-bit little-endian ELF file, an unusual layout, or a malformed one)."""
    try:
        return _strip(data)
    except (ValueError, IndexError, KeyError, struct.error):
        return None


def _strip(data: bytes) -> bytes | None:
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    phoff, shoff = struct.unpack_from("<QQ", data, 0x20)
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", data, 0x36)
    if shentsize != _SHDR.size or shnum == 0 or shstrndx >= shnum or phentsize != _PHDR.size:
        return None
    if shoff + shnum * shentsize > len(data):
        return None
    sections = [list(_SHDR.unpack_from(data, shoff + i * shentsize)) for i in range(shnum)]
    names_at = sections[shstrndx][4]

    def name(section: list[int]) -> bytes:
        start = names_at + section[0]
        return data[start : data.index(b"\0", start)]

    dropped = {
        i for i, s in enumerate(sections) if i and i != shstrndx and _droppable(name(s), s[2])
    }
    if not dropped:
        return None
    cut = min(sections[i][4] for i in dropped)
    loaded_end = max(
        (
            p[2] + p[5]
            for p in (_PHDR.unpack_from(data, phoff + i * phentsize) for i in range(phnum))
        ),
        default=0,
    )
    if loaded_end > cut:
        return None
    kept = [i for i in range(shnum) if i not in dropped]
    for i in kept:
        link, info, flags, kind = sections[i][6], sections[i][7], sections[i][2], sections[i][1]
        if link in dropped or ((flags & _INFO_LINK or kind in (_REL, _RELA)) and info in dropped):
            return None
        if i and kind != _NOBITS and sections[i][4] >= cut and flags & _ALLOC:
            return None
    index = {old: new for new, old in enumerate(kept)}
    out = bytearray(data[:cut])
    for i in kept:
        section = sections[i]
        if i == 0 or section[1] == _NOBITS or section[4] < cut:
            continue
        align = max(section[8], 1)
        out += b"\0" * (-len(out) % align)
        body = data[section[4] : section[4] + section[5]]
        section[4] = len(out)
        out += body
    out += b"\0" * (-len(out) % 8)
    new_shoff = len(out)
    for i in kept:
        section = sections[i]
        section[6] = index.get(section[6], 0)
        if section[2] & _INFO_LINK or section[1] in (_REL, _RELA):
            section[7] = index.get(section[7], 0)
        out += _SHDR.pack(*section)
    struct.pack_into("<Q", out, 0x28, new_shoff)
    struct.pack_into("<HH", out, 0x3C, len(kept), index[shstrndx])
    return bytes(out)


def strip_tree(root: str) -> tuple[int, int]:
    """Strip every ELF file under ``root`` in place; (files stripped, bytes saved)."""
    count = saved = 0
    for folder, _, names in os.walk(root):
        for file in names:
            path = os.path.join(folder, file)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as handle:
                if handle.read(4) != b"\x7fELF":
                    continue
                handle.seek(0)
                data = handle.read()
            smaller = strip(data)
            if smaller is None:
                continue
            tmp = f"{path}.strip-tmp"
            with open(tmp, "wb") as handle:
                handle.write(smaller)
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
            os.replace(tmp, path)
            count += 1
            saved += len(data) - len(smaller)
    return count, saved


if __name__ == "__main__":
    for tree in sys.argv[1:]:
        files, freed = strip_tree(tree)
        print(f"elfstrip: {tree}: {files} libraries, {freed / 1e6:.1f} MB of symbols removed")
