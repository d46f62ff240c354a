"""Run a packaged function the way Lambda would, on this machine.

The function zip and the layers are extracted into a tree shaped like a Lambda
environment (`var/task`, `opt/python`, `opt/models/<name>`), and the handler runs in a
separate interpreter of the target version, in isolated mode (`-I -S`: no
PYTHONPATH, no user or system site-packages), with only those directories on sys.path,
HOME in a read-only directory and writes allowed only under the tree's `tmp`. As root,
var/task, opt and HOME are also mounted read-only in a private mount namespace (as on
Lambda); either way the tree is checked afterwards for anything written.

Used by the packaging tests and the cold-start benchmark; standard library only.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions import HANDLER

# Starts each response line: the handler's own stdout (log and EMF lines) shares the pipe.
RESULT_MARK = "inferstack-runner-result "
# Runs inside the target interpreter: stdlib only, every supported Python version.
BOOTSTRAP = (
    f"RESULT_MARK = {RESULT_MARK!r}\n"
    + r"""
import json, os, sys, time
task, opt = sys.argv[1], sys.argv[2]
sys.path[:0] = [task, os.path.join(opt, "python")]
missing = []


class RecordMissing:
    # Last on sys.meta_path: asked only about imports nothing else could find.
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        missing.append(name)
        return None


sys.meta_path.append(RecordMissing)


class Context:
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
    memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"))
    aws_request_id = "local"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:local"

    def get_remaining_time_in_millis(self):
        return 30000


module_name, _, attribute = os.environ["_HANDLER"].rpartition(".")
module = __import__(module_name, fromlist=[attribute])
handler = getattr(module, attribute)
for line in sys.stdin:
    result = handler(json.loads(line), Context())
    loaded = sorted(
        name for name, mod in list(sys.modules.items())
        if (getattr(mod, "__file__", None) or "").startswith(opt)
    )
    print(RESULT_MARK + json.dumps({"result": result, "missing": missing, "loaded": loaded}),
          flush=True)
"""
)


@dataclass(frozen=True)
class LambdaTree:
    root: Path

    @property
    def task(self) -> Path:
        return self.root / "var" / "task"

    @property
    def opt(self) -> Path:
        return self.root / "opt"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @classmethod
    def extract(cls, root: Path, function_zip: Path, layer_zips: Iterable[Path]) -> LambdaTree:
        """Lay out a fresh tree: the function in var/task, each layer (in order) in opt."""
        tree = cls(root)
        shutil.rmtree(root, ignore_errors=True)
        for directory in (tree.task, tree.opt, tree.home, tree.tmp):
            directory.mkdir(parents=True)
        _extract(function_zip, tree.task)
        for layer in layer_zips:
            _extract(layer, tree.opt)
        tree.home.chmod(0o555)
        return tree

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """Every path outside tmp with (size, mtime_ns): to prove nothing was written."""
        found = {}
        for top in (self.task, self.opt, self.home):
            for path in top.rglob("*"):
                stat = path.lstat()
                found[str(path)] = (stat.st_size, stat.st_mtime_ns)
        return found


@dataclass(frozen=True)
class Invocation:
    responses: list[dict[str, Any]]
    # Seconds from process spawn to the first response: the cold start.
    cold_start_s: float
    # Imports that found no module anywhere (optional dependencies probed, ...).
    missing_imports: list[str]
    # Modules loaded from the layers (opt/).
    loaded_from_opt: list[str]
    read_only_mounts: bool
    stderr: str
    # The handler's own stdout lines (its log and EMF lines), in order.
    log_lines: list[str]


class LambdaInvocationError(RuntimeError):
    pass


def invoke(
    tree: LambdaTree,
    interpreter: Path,
    events: list[dict[str, Any]],
    env: Mapping[str, str],
    *,
    handler: str = HANDLER,
    timeout_s: float = 120.0,
) -> Invocation:
    """Start a fresh environment, send `events` one by one, return the responses."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(tree.home),
        "TMPDIR": str(tree.tmp),
        "LAMBDA_TASK_ROOT": str(tree.task),
        "_HANDLER": handler,
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "inferstack-local",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048",
        **env,
    }
    command = [str(interpreter), "-I", "-S", "-c", BOOTSTRAP, str(tree.task), str(tree.opt)]
    read_only = _can_mount_read_only()
    if read_only:
        command = _read_only_wrapper([tree.task, tree.opt, tree.home]) + command
    before = tree.snapshot()
    payload = "".join(json.dumps(event) + "\n" for event in events)
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        cwd=tree.task,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(payload)
    process.stdin.close()
    first = ""
    logged = []
    while not first.startswith(RESULT_MARK) and (line := process.stdout.readline()):
        first = line
        logged.append(line.rstrip("\n"))
    cold_start = time.perf_counter() - started
    rest = process.stdout.read()
    try:
        process.wait(timeout=timeout_s)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read() if process.stderr else ""
    lines = [
        line.removeprefix(RESULT_MARK)
        for line in [first, *rest.splitlines()]
        if line.startswith(RESULT_MARK)
    ]
    if process.returncode != 0 or len(lines) != len(events):
        raise LambdaInvocationError(
            f"the handler exited {process.returncode} after {len(lines)} of {len(events)}"
            f" responses; stderr:\n{stderr[-4000:]}"
        )
    outputs = [json.loads(line) for line in lines]
    written = sorted(set(tree.snapshot().items()) - set(before.items()))
    if written:
        raise LambdaInvocationError(
            f"the handler wrote outside /tmp: {[path for path, _ in written][:10]}"
        )
    return Invocation(
        responses=[output["result"] for output in outputs],
        cold_start_s=cold_start,
        missing_imports=sorted(set(outputs[-1]["missing"])),
        loaded_from_opt=outputs[-1]["loaded"],
        read_only_mounts=read_only,
        stderr=stderr,
        log_lines=[
            line for line in [*logged, *rest.splitlines()] if not line.startswith(RESULT_MARK)
        ],
    )


def api_gateway_event(
    method: str, path: str, body: Any = None, *, base64_body: bool = True
) -> dict[str, Any]:
    """An API Gateway REST API (payload 1.0) Lambda-proxy event with a JSON body, base64
    encoded as for binary media types, or as plain text (API Gateway's default)."""
    raw = b"" if body is None else json.dumps(body).encode()
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json", "host": "local.execute-api"},
        "multiValueHeaders": {
            "content-type": ["application/json"],
            "host": ["local.execute-api"],
        },
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "local-request",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": (base64.b64encode(raw).decode() if base64_body else raw.decode()) if raw else None,
        "isBase64Encoded": bool(raw) and base64_body,
    }


def response_json(response: dict[str, Any]) -> Any:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)


def _extract(archive: Path, destination: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = destination / info.filename
            zf.extract(info, destination)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                target.chmod(mode)


def _can_mount_read_only() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None and _probe_unshare()


_PROBED: dict[str, bool] = {}


def _probe_unshare() -> bool:
    if "ok" not in _PROBED:
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "true"],
            capture_output=True,
            check=False,
        )
        _PROBED["ok"] = result.returncode == 0
    return _PROBED["ok"]


def _read_only_wrapper(paths: list[Path]) -> list[str]:
    mounts = []
    for path in paths:
        quoted = str(path).replace("'", "'\\''")
        mounts.append(f"mount --bind '{quoted}' '{quoted}'")
        mounts.append(f"mount -o remount,ro,bind '{quoted}' '{quoted}'")
    script = " && ".join([*mounts, 'exec "$@"'])
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
