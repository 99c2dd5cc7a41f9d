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
    headers = [list(_PHDR.unpack_from(data, phoff + i * phentsize)) for i in range(phnum)]
    if phoff + phnum * phentsize > cut:
        return None
    kept = [i for i in range(shnum) if i not in dropped]
    for i in kept:
        link, info, flags, kind = sections[i][6], sections[i][7], sections[i][2], sections[i][1]
        if link in dropped or ((flags & _INFO_LINK or kind in (_REL, _RELA)) and info in dropped):
            return None
    found = _hole(headers, sections, kept, dropped, cut, len(data))
    if found is None:
        return None
    resume, shift = found
    moved = [
        i for i in kept if i and sections[i][1] != _NOBITS and cut <= sections[i][4] < resume
    ]  # kept sections in the hole (.shstrtab, .comment): written again after the loaded part
    tail_end = max(
        [p[2] + p[5] for p in headers if p[5] and p[2] >= resume]
        + [
            sections[i][4] + sections[i][5]
            for i in kept
            if i and sections[i][1] != _NOBITS and sections[i][4] >= resume
        ],
        default=resume,
    )
    index = {old: new for new, old in enumerate(kept)}
    out = bytearray(data[:cut])
    out += b"\0" * (resume - shift - cut)
    out += data[resume:tail_end]
    for header in headers:
        if header[2] >= resume and (header[5] or header[2] < tail_end):
            header[2] -= shift
    for i, header in enumerate(headers):
        _PHDR.pack_into(out, phoff + i * phentsize, *header)
    for i in kept:
        section = sections[i]
        if i and section[4] >= resume and (section[1] != _NOBITS or section[4] < tail_end):
            section[4] -= shift
    for i in moved:
        section = sections[i]
        body = data[section[4] : section[4] + section[5]]
        out += b"\0" * (-len(out) % max(section[8], 1))
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


def _hole(
    headers: list[list[int]],
    sections: list[list[int]],
    kept: list[int],
    dropped: set[int],
    cut: int,
    size: int,
) -> tuple[int, int] | None:
    """Where the loaded data after the dropped sections resumes, and by how much it moves back
    (the file's end and all of it when nothing loaded follows); None if it cannot move."""
    # what the loader reads after the cut: a library that patchelf edited (auditwheel's
    # repair) has loaded segments appended after its symbol table
    loaded_after = [p[2] for p in headers if p[5] and p[2] + p[5] > cut]
    loaded_after += [
        sections[i][4]
        for i in kept
        if i and sections[i][1] != _NOBITS and sections[i][2] & _ALLOC and sections[i][4] >= cut
    ]
    if any(offset < cut for offset in loaded_after):
        return None  # a segment spans the cut
    resume = min(loaded_after, default=size)
    if any(sections[i][4] + sections[i][5] > resume for i in dropped):
        return None  # a dropped section after loaded data: not the usual layout
    # the loaded part after the hole moves back by whole alignments of its segments, so each
    # keeps its offset congruent to its address (the loader maps pages of the file)
    align = max((max(p[7], 1) for p in headers if p[5] and p[2] >= resume), default=1)
    shift = (resume - cut) // align * align
    if loaded_after and shift == 0:
        return None
    return resume, shift


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


def link_duplicates(root: str) -> tuple[int, int]:
    """Replace each library in a wheel's vendored ``*.libs`` folder that is byte for byte the same
    as one another wheel vendors (numpy's and scipy's libgfortran) by a relative symbolic link
    to that one; (files linked, bytes saved). The loader opens the same path as before and already
    loads a soname once per process, so what runs is unchanged."""
    import hashlib

    seen: dict[tuple[int, str], str] = {}
    count = saved = 0
    for folder, dirs, names in sorted(os.walk(root)):
        dirs.sort()
        if not folder.endswith(".libs"):
            continue
        for file in sorted(names):
            path = os.path.join(folder, file)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as handle:
                data = handle.read()
            if data[:4] != b"\x7fELF":
                continue
            key = (len(data), hashlib.sha256(data).hexdigest())
            first = seen.setdefault(key, path)
            if first == path:
                continue
            tmp = f"{path}.link-tmp"
            os.symlink(os.path.relpath(first, folder), tmp)
            os.replace(tmp, path)
            count += 1
            saved += len(data)
    return count, saved


if __name__ == "__main__":
    for tree in sys.argv[1:]:
        files, freed = strip_tree(tree)
        print(f"elfstrip: {tree}: {files} libraries, {freed / 1e6:.1f} MB of symbols removed")
        files, freed = link_duplicates(tree)
        print(f"elfstrip: {tree}: {files} duplicate libraries linked, {freed / 1e6:.1f} MB")
