"""The runtime layer: what model_runtime and functions/ import at run time, as a zip of
`python/...` built from manylinux wheels for the target runtime and architecture.

Steps: resolve the runtime requirements for the target (pinned to the versions this
environment tests with), download the wheels once into a cache, install the kept ones
with `pip install --target`, prune what is never imported, compile bytecode for the
target Python, check every native library's architecture, zip deterministically.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from layers.archive import Built, cache_key, cached_zip, find_zip, tree_files, write_zip
from layers.bytecode import compile_tree, find_interpreter
from layers.elf import foreign_binaries
from layers.errors import PackagingError
from layers.targets import Target
from model_runtime.manifest import sha256_file

# Distributions left out of the layer, with why. Their own dependencies go too unless
# something kept needs them.
EXCLUDED_DISTRIBUTIONS: dict[str, str] = {
    "boto3": "provided by the Lambda Python runtime",
    "botocore": "provided by the Lambda Python runtime",
    "s3transfer": "provided by the Lambda Python runtime",
    "huggingface-hub": "tokenizers imports it only for Tokenizer.from_pretrained (hub"
    " downloads); the runtime loads tokenizer.json from the artifact",
    "sympy": "onnxruntime imports it only in its offline tools (symbolic shape inference)",
    "protobuf": "onnxruntime imports it only in its offline tools (ONNX model editing)",
    "flatbuffers": "onnxruntime imports it only in its offline tools (ORT format conversion)",
    "packaging": "onnxruntime imports it only in its offline tools (version checks)",
}
# onnxruntime subpackages that `import onnxruntime` never loads; each needs `onnx`
# (not in the layer) and serves build-time work.
_ORT_TOOLS = ("backend", "datasets", "quantization", "tools", "transformers")
# (regex on the path inside python/, why). Never anything imported at run time: the
# isolated-interpreter tests check that no failed import hits a pruned module.
PRUNE_RULES: list[tuple[str, str]] = [
    (r"^bin/", "console scripts with the build machine's shebang"),
    (r"(^|/)__pycache__/", "bytecode of the build interpreter (target bytecode is compiled)"),
    (r"\.pyi$|(^|/)py\.typed$", "type stubs and markers"),
    (r"(^|/)tests?/", "test suites"),
    (r"\.(h|hpp|pxd|pyx|c|cc|cpp|a|lib)$|(^|/)include/", "C headers, sources, static libs"),
    (r"\.dist-info/(RECORD|INSTALLER|REQUESTED|direct_url\.json)$", "installer bookkeeping"),
    (rf"^onnxruntime/({'|'.join(_ORT_TOOLS)})/", "onnxruntime build-time tools (need onnx)"),
    (r"^numpy/(f2py|_pyinstaller)/", "numpy's Fortran wrapper generator, PyInstaller hooks"),
    # The Python binding links the runtime statically (its ELF NEEDED list has no
    # libonnxruntime); this copy is the C API library for native callers. 35 MB.
    (r"^onnxruntime/capi/libonnxruntime\.so", "onnxruntime's C API library (not loaded)"),
]
_PRUNE = [(re.compile(pattern), why) for pattern, why in PRUNE_RULES]
MOUNT = "/opt/python"


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    filename: str
    url: str
    sha256: str
    requires: list[str]
    requested: bool


def runtime_requirements(root: Path) -> list[str]:
    """The `[project].dependencies` of pyproject.toml: what the runtime needs, no extras."""
    path = root / "pyproject.toml"
    if not path.is_file():
        raise PackagingError(
            f"no {path}: the runtime's requirements are its [project] dependencies"
        )
    project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    return sorted(project["dependencies"])


def environment_pins() -> list[str]:
    """`name==version` for every distribution installed here: the layer ships the
    versions the tests ran against."""
    return list(_pins(_installed_state()))


def _installed_state() -> tuple[tuple[str, int], ...]:
    # Installing or removing a distribution changes its site directory's mtime.
    return tuple(
        (entry, os.stat(entry).st_mtime_ns) for entry in sys.path if entry and os.path.isdir(entry)
    )


@functools.cache
def _pins(_state: tuple[tuple[str, int], ...]) -> tuple[str, ...]:
    # Reading every distribution's metadata takes ~0.1 s; a deploy asks once per function.
    pins: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and "+" not in dist.version and _normalize(name) != "inferstack":
            pins.setdefault(_normalize(name), f"{name}=={dist.version}")
    return tuple(sorted(pins.values()))


def build_runtime_layer(
    target: Target,
    root: Path,
    cache_dir: Path,
    *,
    requirements: list[str] | None = None,
    pins: list[str] | None = None,
    compile_bytecode: bool = True,
    force: bool = False,
) -> Built:
    requirements = runtime_requirements(root) if requirements is None else requirements
    pins = environment_pins() if pins is None else pins
    wheels = resolve(target, requirements, pins, cache_dir)
    kept = kept_wheels(wheels, target)
    interpreter = find_interpreter(target.python_version) if compile_bytecode else None
    inputs = layer_inputs(target, kept, interpreter)

    def build(out: Path) -> dict[str, Any]:
        wheel_dir = cache_dir / "wheels" / f"{target.runtime}-{target.arch}"
        paths = download(target, wheels, wheel_dir)
        with tempfile.TemporaryDirectory(prefix="runtime-layer-") as tmp:
            site = Path(tmp) / "python"
            install(target, [paths[wheel.filename] for wheel in kept], site)
            pruned = prune(site)
            foreign = foreign_binaries(site, target.elf_machine)
            if foreign:
                raise PackagingError(
                    f"native code for another architecture than {target.arch} in the layer:"
                    f" {', '.join(foreign[:10])}"
                )
            if interpreter:
                compile_tree(site, interpreter, MOUNT)
            write_zip(tree_files(site, "python/"), out)
        excluded = [wheel for wheel in wheels if wheel not in kept]
        return {
            "target": str(target),
            "distributions": {wheel.name: wheel.version for wheel in kept},
            "excluded_distributions": {
                wheel.name: EXCLUDED_DISTRIBUTIONS.get(
                    _normalize(wheel.name), "needed only by excluded distributions"
                )
                for wheel in excluded
            },
            "excluded_modules": sorted(
                {m for wheel in excluded for m in wheel_modules(paths[wheel.filename])}
            ),
            "pruned_modules": sorted(pruned),
            "bytecode": f"{interpreter} (unchecked-hash)" if interpreter else None,
        }

    return cached_zip(cache_dir, runtime_layer_name(target), inputs, build, force=force)


def find_runtime_layer(target: Target, root: Path, cache_dir: Path) -> Built | None:
    """The runtime layer `build_runtime_layer(target, root, cache_dir)` would return, if it
    is built; never resolves, downloads or builds (no network)."""
    lock = lock_path(target, runtime_requirements(root), environment_pins(), cache_dir)
    if not lock.is_file():
        return None
    kept = kept_wheels(read_lock(lock), target)
    inputs = layer_inputs(target, kept, find_interpreter(target.python_version))
    return find_zip(cache_dir, runtime_layer_name(target), inputs)


def runtime_layer_name(target: Target) -> str:
    return f"runtime-{target.runtime}-{target.arch}"


def layer_inputs(target: Target, kept: list[Wheel], interpreter: Path | None) -> dict[str, Any]:
    """What the runtime layer's cache key is made of."""
    return {
        "target": str(target),
        "wheels": sorted(f"{wheel.filename}:{wheel.sha256}" for wheel in kept),
        "prune": PRUNE_RULES,
        "bytecode": bool(interpreter),
    }


def lock_path(target: Target, requirements: list[str], pins: list[str], cache_dir: Path) -> Path:
    key = cache_key("lock", {"target": str(target), "requirements": requirements, "pins": pins})
    return cache_dir / "locks" / f"{target.runtime}-{target.arch}-{key[:16]}.json"


def read_lock(lock: Path) -> list[Wheel]:
    return [Wheel(**item) for item in json.loads(lock.read_text(encoding="utf-8"))]


def resolve(
    target: Target, requirements: list[str], pins: list[str], cache_dir: Path
) -> list[Wheel]:
    """The wheels pip picks for `target`, from a lock cached by (requirements, pins)."""
    lock = lock_path(target, requirements, pins, cache_dir)
    if lock.is_file():
        return read_lock(lock)
    with tempfile.TemporaryDirectory(prefix="resolve-") as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("\n".join(pins) + "\n", encoding="utf-8")
        report = Path(tmp) / "report.json"
        _pip(
            "install",
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(report),
            *_target_args(target),
            "--target",
            str(Path(tmp) / "unused"),
            "--constraint",
            str(constraints),
            *requirements,
        )
        items = json.loads(report.read_text(encoding="utf-8"))["install"]
    wheels = [_wheel(item) for item in items]
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(
        json.dumps([wheel.__dict__ for wheel in wheels], indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    return wheels


def kept_wheels(wheels: list[Wheel], target: Target) -> list[Wheel]:
    """The requested wheels and everything they need on `target`, minus the excluded.

    pip evaluates environment markers for the interpreter running it; this walk
    evaluates them for the target (its Python version and machine).
    """
    from packaging.requirements import Requirement

    by_name = {_normalize(wheel.name): wheel for wheel in wheels}
    environment = {
        "python_version": target.python_version,
        "python_full_version": f"{target.python_version}.0",
        "platform_machine": target.machine,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    kept: dict[str, Wheel] = {}
    todo = [name for name, wheel in by_name.items() if wheel.requested]
    while todo:
        name = todo.pop()
        if name in kept or name in EXCLUDED_DISTRIBUTIONS or name not in by_name:
            continue
        kept[name] = by_name[name]
        for spec in by_name[name].requires:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                todo.append(_normalize(requirement.name))
    return sorted(kept.values(), key=lambda wheel: _normalize(wheel.name))


def download(target: Target, wheels: list[Wheel], wheel_dir: Path) -> dict[str, Path]:
    """Every wheel in `wheel_dir`, fetched by pip only when missing or corrupt."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    missing = [
        wheel
        for wheel in wheels
        if not (wheel_dir / wheel.filename).is_file()
        or sha256_file(wheel_dir / wheel.filename) != wheel.sha256
    ]
    if missing:
        _pip(
            "download",
            "--no-deps",
            *_target_args(target),
            "--dest",
            str(wheel_dir),
            *(f"{wheel.name}=={wheel.version}" for wheel in missing),
        )
    paths = {}
    for wheel in wheels:
        path = wheel_dir / wheel.filename
        if not path.is_file() or sha256_file(path) != wheel.sha256:
            raise PackagingError(
                f"wheel {wheel.filename} for {target} is missing or does not match the"
                f" resolved sha256 {wheel.sha256} after download"
            )
        paths[wheel.filename] = path
    return paths


def install(target: Target, wheel_paths: Iterable[Path], site: Path) -> None:
    _pip(
        "install",
        "--no-deps",
        "--no-index",
        "--no-compile",
        *_target_args(target),
        "--target",
        str(site),
        *(str(path) for path in wheel_paths),
    )


def prune(site: Path) -> set[str]:
    """Delete what is never imported at run time; return the module names removed."""
    modules: set[str] = set()
    for path in sorted(site.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(site).as_posix()
        if any(rule.search(relative) for rule, _ in _PRUNE):
            module = module_name(relative)
            if module:
                modules.add(module)
            path.unlink()
    for directory in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    return modules


def module_name(relative: str) -> str | None:
    """`numpy/_core/tests/test_x.py` -> `numpy._core.tests.test_x` (None if not code)."""
    path = PurePosixPath(relative)
    if "__pycache__" in path.parts or ".dist-info" in relative or ".data/" in relative:
        return None
    if path.suffix == ".py":
        parts = [*path.parts[:-1], path.stem]
    elif path.suffix == ".so":
        parts = [*path.parts[:-1], path.name.split(".")[0]]
    else:
        return None
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def wheel_modules(path: Path) -> set[str]:
    """The importable module names a wheel holds (packages and submodules)."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return {module for name in names if (module := module_name(name))}


def _wheel(item: dict[str, Any]) -> Wheel:
    info = item["download_info"]
    url = info["url"]
    sha256 = info.get("archive_info", {}).get("hashes", {}).get("sha256")
    filename = url.rsplit("/", 1)[-1]
    if not filename.endswith(".whl") or not sha256:
        raise PackagingError(f"pip resolved {url} for the layer: not a wheel with a sha256")
    meta = item["metadata"]
    return Wheel(
        name=meta["name"],
        version=meta["version"],
        filename=filename,
        url=url,
        sha256=sha256,
        requires=list(meta.get("requires_dist") or []),
        requested=bool(item.get("requested")),
    )


def _target_args(target: Target) -> list[str]:
    args = ["--only-binary=:all:", "--implementation", "cp"]
    args += ["--python-version", target.python_version, "--abi", target.abi, "--abi", "abi3"]
    args += ["--abi", "none"]
    for platform in target.platforms():
        args += ["--platform", platform]
    return args


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackagingError(
            f"pip {args[0]} failed ({result.returncode}): {result.stderr.strip()[-3000:]}"
        )


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
