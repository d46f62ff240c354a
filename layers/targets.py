"""Lambda runtimes and architectures: what wheels they take and what binaries they run."""

from __future__ import annotations

from dataclasses import dataclass

from layers.errors import PackagingError

# Lambda Python runtime -> (Python version, glibc of its Amazon Linux).
RUNTIMES: dict[str, tuple[str, tuple[int, int]]] = {
    "python3.10": ("3.10", (2, 26)),
    "python3.11": ("3.11", (2, 26)),
    "python3.12": ("3.12", (2, 34)),
    "python3.13": ("3.13", (2, 34)),
}
# Lambda architecture -> (wheel platform suffix, ELF e_machine of its native code).
ARCHITECTURES: dict[str, tuple[str, int]] = {
    "x86_64": ("x86_64", 62),  # EM_X86_64
    "arm64": ("aarch64", 183),  # EM_AARCH64
}
DEFAULT_RUNTIME = "python3.12"
DEFAULT_ARCH = "x86_64"


@dataclass(frozen=True)
class Target:
    runtime: str
    arch: str

    @classmethod
    def of(cls, runtime: str = DEFAULT_RUNTIME, arch: str = DEFAULT_ARCH) -> Target:
        if runtime not in RUNTIMES:
            raise PackagingError(
                f"runtime {runtime!r} is not supported; allowed: {', '.join(RUNTIMES)}"
            )
        if arch not in ARCHITECTURES:
            raise PackagingError(
                f"architecture {arch!r} is not supported; allowed: {', '.join(ARCHITECTURES)}"
            )
        return cls(runtime, arch)

    @property
    def python_version(self) -> str:
        return RUNTIMES[self.runtime][0]

    @property
    def machine(self) -> str:
        return ARCHITECTURES[self.arch][0]

    @property
    def elf_machine(self) -> int:
        return ARCHITECTURES[self.arch][1]

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")

    def platforms(self) -> list[str]:
        """Every manylinux tag whose wheels run on this runtime's glibc, newest first.

        pip does not expand `manylinux_2_34_x86_64` to the older tags, so all are listed.
        """
        major, minor = RUNTIMES[self.runtime][1]
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 16, -1)]
        tags.append(f"manylinux2014_{self.machine}")
        if self.arch == "x86_64":
            tags += [f"manylinux_2_12_{self.machine}", f"manylinux2010_{self.machine}"]
            tags += [f"manylinux_2_5_{self.machine}", f"manylinux1_{self.machine}"]
        return tags

    def __str__(self) -> str:
        return f"{self.runtime}/{self.arch}"
