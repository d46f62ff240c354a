"""Reading the architecture of native code from ELF headers (no `file` or pyelftools)."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
MACHINES = {3: "x86", 62: "x86_64", 40: "arm", 183: "aarch64"}


def elf_machine(path: Path) -> int | None:
    """The ELF e_machine of `path`, or None when it is not an ELF file."""
    with open(path, "rb") as handle:
        return header_machine(handle.read(20))


def header_machine(header: bytes) -> int | None:
    if len(header) < 20 or header[:4] != ELF_MAGIC:
        return None
    byte_order = "<" if header[5] == 1 else ">"
    machine: int = struct.unpack_from(f"{byte_order}H", header, 18)[0]
    return machine


def native_files(root: Path) -> dict[str, int]:
    """Every ELF file under `root` (any name: .so, .so.1, executables) -> e_machine."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            machine = elf_machine(path)
            if machine is not None:
                found[path.relative_to(root).as_posix()] = machine
    return found


def foreign_binaries(root: Path, expected_machine: int) -> list[str]:
    """ELF files under `root` built for another machine, as 'path (arch)'."""
    return [
        f"{name} ({MACHINES.get(machine, machine)})"
        for name, machine in native_files(root).items()
        if machine != expected_machine
    ]


def zip_native_files(path: Path) -> dict[str, int]:
    """Every ELF file inside the zip at `path` -> e_machine (read from the zip itself)."""
    found = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            with zf.open(info) as member:
                machine = header_machine(member.read(20))
            if machine is not None:
                found[info.filename] = machine
    return found
