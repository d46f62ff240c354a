"""Lambda execution environments as local processes, for LocalStack without Docker.

One ``ProcessRuntimeExecutor`` is one execution environment: a process of the function's
declared Python running ``bootstrap.py``, in its own session (so the environment and
whatever it spawns are one process group), with

- the working directory and ``LAMBDA_TASK_ROOT``: the unzipped function code;
- the environment's ``/opt``: the function's layers merged in order (see ``opt.py``); every
  ``/opt`` path in the environment variables (``MODEL_DIR=/opt/models/digits``) points
  there instead;
- ``TMPDIR``: a private writable directory, removed with the environment;
- ``sys.path``: code, then ``<opt>/python/lib/pythonX.Y/site-packages``, then ``<opt>/python``.

Timeouts are the runtime's job in Lambda: the bootstrap reports ``Sandbox.Timedout`` and
ends itself, and we end its process group and start a fresh environment process on the
next invocation (AWS re-initialises a timed-out sandbox the same way). If the bootstrap
cannot report (a handler holding the GIL), we time it out from here after a short grace.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from http import HTTPStatus
from pathlib import Path
from typing import Any

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.http import Response
from localstack.services.lambda_.invocation.executor_endpoint import (
    ExecutorEndpoint,
    InvokeSendError,
    StatusErrorException,
)
from localstack.services.lambda_.invocation.lambda_models import (
    FunctionVersion,
    InvocationResult,
)
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)
from werkzeug import Request

from inferstack_localstack_executor.emf import Publisher
from inferstack_localstack_executor.interpreters import InterpreterNotFound, find_python
from inferstack_localstack_executor.opt import merged_opt_dir, python_paths, rewrite_opt_paths

LOG = logging.getLogger(__name__)

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
# How long past the function's timeout we wait for the bootstrap's own timeout report.
TIMEOUT_GRACE_S = 2.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# What CloudWatch does with EMF lines on AWS, for every environment (see emf.py).
EMF = Publisher()


def executor_root() -> Path:
    """Where environments keep their files; the manager points it under build/localstack."""
    configured = os.environ.get("INFERSTACK_EXECUTOR_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "inferstack-lambda"


def _python_version(runtime: str) -> str:
    return runtime.removeprefix("python")


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def _error_type(payload: bytes | None) -> str | None:
    try:
        body = json.loads(payload or b"")
    except ValueError:
        return None
    return body.get("errorType") if isinstance(body, dict) else None


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name.removeprefix("SIG").lower()
        except ValueError:
            name = str(-returncode)
        return f"signal: {'killed' if name == 'kill' else name}"
    return f"exit status {returncode}"


class _Endpoint(ExecutorEndpoint):
    """LocalStack's callback endpoint for one environment, plus two things: the bootstrap
    reports the port it listens on with ``ready``, and a result for a request that is no
    longer awaited (already timed out here, say) is dropped instead of failing."""

    def __init__(self, executor_id: str) -> None:
        super().__init__(executor_id, container_address="127.0.0.1", container_port=None)
        self.lock = threading.Lock()
        self.request_id: str | None = None

    def status_ready(self, request: Request, executor_id: str) -> Response:
        body = request.get_json(silent=True) or {}
        self.container_port = int(body["port"])
        future = self.startup_future
        if future is not None and not future.done():
            future.set_result(True)
        return Response(status=HTTPStatus.ACCEPTED)

    def status_error(self, request: Request, executor_id: str) -> Response:
        future = self.startup_future
        if future is None or future.done():
            return Response(status=HTTPStatus.BAD_REQUEST)
        LOG.warning("Execution environment %s failed to start: %s", executor_id, request.data)
        future.set_exception(StatusErrorException("Environment startup failed", request.data))
        return Response(status=HTTPStatus.ACCEPTED)

    def invocation_response(self, request: Request, req_id: str) -> Response:
        self.complete(req_id, request.data, is_error=False, logs=self.logs)
        return Response(status=HTTPStatus.ACCEPTED)

    def invocation_error(self, request: Request, req_id: str) -> Response:
        self.complete(req_id, request.data, is_error=True, logs=self.logs)
        return Response(status=HTTPStatus.ACCEPTED)

    def await_request(self, request_id: str) -> Future[InvocationResult]:
        future: Future[InvocationResult] = Future()
        with self.lock:
            self.invocation_future = future
            self.request_id = request_id
            self.logs = None
        return future

    def complete(
        self, request_id: str, payload: bytes, *, is_error: bool, logs: str | None
    ) -> bool:
        with self.lock:
            future = self.invocation_future
            if future is None or future.done() or request_id != self.request_id:
                return False
            future.set_result(InvocationResult(request_id, payload, is_error=is_error, logs=logs))
            return True


class ProcessRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = _Endpoint(id)
        self._lock = threading.RLock()
        self._process: subprocess.Popen[bytes] | None = None
        self._parent_pipe: int | None = None
        self._env_vars: dict[str, str] = {}
        self._stopped = False
        self._dir = executor_root() / "envs" / id
        self._output = self._dir / "output.log"
        self._invoke_offset = 0  # where the current invocation's output starts in it

    # -- lifecycle -------------------------------------------------------------------

    def start(self, env_vars: dict[str, Any]) -> None:
        # LocalStack passes some values as ints (memory size, timeout).
        self._env_vars = {key: str(value) for key, value in env_vars.items()}
        (self._dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.executor_endpoint.start()
        self._spawn()
        # Inherited from LocalStack without annotations (untyped_calls_exclude does not
        # reach methods called through our subclass).
        self.executor_endpoint.wait_for_startup()  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            process, self._process = self._process, None
        if process is not None:
            self._kill(process)
        self._close_parent_pipe()
        try:
            self.executor_endpoint.shutdown()
        except Exception as exc:  # never started, or already shut down
            LOG.debug("Shutting down endpoint of environment %s: %s", self.id, exc)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _spawn(self) -> None:
        runtime = str(self.function_version.config.runtime)
        try:
            python = find_python(runtime)
        except InterpreterNotFound as exc:
            raise StatusErrorException(
                "Environment startup failed",
                _error_payload("Runtime.InterpreterNotFound", str(exc)),
            ) from exc
        version = _python_version(runtime)
        code = self.function_version.config.code
        assert code is not None, "prepare_version accepts functions with code only"
        code_dir = Path(code.get_unzipped_code_location())
        opt_dir = _prepare_layers(self.function_version)
        flags = ["-s", "-u"] + (["-P"] if tuple(map(int, version.split("."))) >= (3, 11) else [])
        self._dir.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self._output, "ab") as output:
            if self._stopped:
                raise LambdaRuntimeException(f"environment {self.id} was stopped while starting")
            # Only this process holds the write end (pipes are not inheritable), so the
            # environment reads end-of-file exactly when LocalStack is gone.
            read_end, write_end = os.pipe()
            try:
                process = subprocess.Popen(
                    [str(python), *flags, str(BOOTSTRAP)],
                    cwd=code_dir,
                    env=self._child_env(python, code_dir, opt_dir, version, read_end),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    pass_fds=(read_end,),
                    start_new_session=True,
                )
            except BaseException:
                os.close(write_end)
                raise
            finally:
                os.close(read_end)
            self._close_parent_pipe()
            self._process, self._parent_pipe = process, write_end
        LOG.debug("Environment %s of %s: pid %d (%s)", self.id,
                  self.function_version.qualified_arn, process.pid, python)
        threading.Thread(
            target=self._watch, args=(process,), name=f"lambda-env-{self.id[:8]}", daemon=True
        ).start()

    def _child_env(
        self, python: Path, code_dir: Path, opt_dir: Path, version: str, parent_fd: int
    ) -> dict[str, str]:
        localstack_bin = str(Path(sys.executable).parent)
        path = [str(python.parent)] + [
            entry for entry in os.environ.get("PATH", "").split(os.pathsep)
            if entry and entry != localstack_bin
        ]
        env = {"PATH": os.pathsep.join(dict.fromkeys(path)), "LANG": "C.UTF-8"}
        for key in ("LD_LIBRARY_PATH", "PYENV_ROOT"):
            if key in os.environ:
                env[key] = os.environ[key]
        env["TMPDIR"] = str(self._dir / "tmp")
        # LocalStack's, ending with the function's own variables.
        env.update(rewrite_opt_paths(self._env_vars, opt_dir))
        sys_path = [code_dir, *python_paths(opt_dir, version), runtime_packages_dir()]
        env.update({
            # Reserved in AWS (a function cannot set them); made true for this machine.
            "LAMBDA_TASK_ROOT": str(code_dir),
            "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.function_version.config.runtime}",
            "_INFERSTACK_SYS_PATH": os.pathsep.join(str(p) for p in sys_path),
            "_INFERSTACK_PARENT_FD": str(parent_fd),
        })
        return env

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        """Turn an environment process that ends on its own into an error for whoever waits."""
        returncode = process.wait()
        with self._lock:
            if self._stopped or process is not self._process:
                return
        reason = _exit_reason(returncode)
        endpoint = self.executor_endpoint
        startup = endpoint.startup_future
        if startup is not None and not startup.done():
            LOG.warning("Environment %s exited during init (%s); output:\n%s", self.id, reason,
                        self._output_since(0)[-4000:])
            payload = _error_payload(
                "Runtime.ExitError", f"Error: Runtime exited with error: {reason}"
            )
            with contextlib.suppress(InvalidStateError):  # resolved concurrently
                startup.set_exception(StatusErrorException("Environment startup failed", payload))
            return
        request_id = endpoint.request_id
        if request_id is not None:
            endpoint.complete(
                request_id,
                _error_payload(
                    "Runtime.ExitError",
                    f"RequestId: {request_id} Error: Runtime exited with error: {reason}",
                ),
                is_error=True,
                logs=self._output_since(self._invoke_offset),
            )

    def _kill(self, process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            LOG.warning("Environment %s (pid %d) did not end after SIGKILL", self.id, process.pid)

    def _close_parent_pipe(self) -> None:
        if self._parent_pipe is not None:
            os.close(self._parent_pipe)
            self._parent_pipe = None

    def _restart(self) -> None:
        self._discard_process()
        self.executor_endpoint.start()
        self._spawn()
        startup = self.executor_endpoint.startup_future
        assert startup is not None, "the endpoint's start() creates it"
        try:
            startup.result(timeout=config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT)
        except FutureTimeout:
            self._discard_process()
            raise StatusErrorException(
                "Environment startup failed",
                _error_payload(
                    "Runtime.InitTimeout",
                    f"Init did not finish in {config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT} s",
                ),
            ) from None

    def _discard_process(self) -> None:
        """End the environment process on purpose: its watcher then reports nothing."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            self._kill(process)

    # -- invocations -----------------------------------------------------------------

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        with self._lock:
            process = self._process
        if process is None or process.poll() is not None:
            try:
                self._restart()
            except StatusErrorException as exc:
                return InvocationResult(request_id, exc.payload, is_error=True, logs="")
        endpoint = self.executor_endpoint
        self._invoke_offset = self._output_size()
        future = endpoint.await_request(request_id)
        self._send(payload)
        timeout_s = float(self.function_version.config.timeout)
        try:
            result: InvocationResult = future.result(timeout=timeout_s + TIMEOUT_GRACE_S)
        except FutureTimeout:
            self._discard_process()
            seconds = f"{timeout_s:.2f}"
            logs = self._output_since(self._invoke_offset)
            logs += f"{request_id} Task timed out after {seconds} seconds\n"
            endpoint.complete(
                request_id,
                _error_payload(
                    "Sandbox.Timedout",
                    f"RequestId: {request_id} Error: Task timed out after {seconds} seconds",
                ),
                is_error=True,
                logs=logs,
            )
            result = future.result()
        if result.is_error and _error_type(result.payload) == "Sandbox.Timedout":
            self._discard_process()  # the next invocation gets a freshly initialised process
        function_id = self.function_version.id
        EMF.submit(result.logs, function_id.account, function_id.region)
        return result

    def _send(self, payload: dict[str, str]) -> None:
        url = (f"http://{self.executor_endpoint.container_address}:"
               f"{self.executor_endpoint.container_port}/invoke")
        request = urllib.request.Request(
            url, data=json.dumps(payload).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )
        for attempt in range(5):
            try:
                with _OPENER.open(request, timeout=10) as response:
                    response.read()
                return
            except urllib.error.URLError as exc:
                if attempt == 4:
                    raise InvokeSendError(f"could not send invocation to {url}: {exc}") from exc
                time.sleep(0.05 * 2**attempt)

    def _output_size(self) -> int:
        try:
            return self._output.stat().st_size
        except OSError:
            return 0

    def _output_since(self, offset: int) -> str:
        try:
            with open(self._output, "rb") as output:
                output.seek(offset)
                return output.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- what LocalStack asks of every executor ----------------------------------------

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        host = config.GATEWAY_LISTEN[0].host
        return "127.0.0.1" if host in ("", "0.0.0.0", "::") else str(host)

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        prefix = self.executor_endpoint.get_endpoint_prefix()  # type: ignore[no-untyped-call]
        return f"http://{self.get_endpoint_from_executor()}:{port}{prefix}"

    def get_logs(self) -> str:
        return self._output_since(max(0, self._output_size() - 65536))

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        function_config = function_version.config
        if (function_config.package_type != PackageType.Zip or not function_config.runtime
                or function_config.code is None):
            raise LambdaRuntimeException(
                "the inferstack-process executor runs zip-packaged Python functions only"
            )
        try:
            find_python(str(function_config.runtime))
        except InterpreterNotFound as exc:
            raise LambdaRuntimeException(f"inferstack-process executor: {exc}") from exc
        function_config.code.prepare_for_execution()
        _prepare_layers(function_version)

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        # Merged /opt trees are shared by every version with the same layers; they live
        # under the executor directory, which the manager clears when LocalStack starts.
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        if not BOOTSTRAP.is_file():
            LOG.error("inferstack-process executor: %s is missing", BOOTSTRAP)
            return False
        return True


# What AWS's Python runtimes ship besides the standard library, on sys.path after the
# layers (/var/runtime there): the AWS SDK. Handlers import boto3 without packaging it.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")


def runtime_packages_dir() -> Path:
    """A directory with only the SDK, linked from LocalStack's own virtualenv (pure Python,
    so any runtime version can import it) without LocalStack's other packages."""
    target = executor_root() / "runtime"
    if target.is_dir():
        return target
    import boto3  # LocalStack depends on it

    site = Path(boto3.__file__).resolve().parents[1]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".runtime-", dir=target.parent))
    for name in RUNTIME_PACKAGES:
        if (site / name).exists():
            (staging / name).symlink_to(site / name)
    try:
        staging.rename(target)
    except OSError:  # a concurrent environment made it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _prepare_layers(function_version: FunctionVersion) -> Path:
    """LocalStack community stores layers but never applies them: we do, in order."""
    layer_dirs = []
    for layer in function_version.config.layers:
        if layer.code is None:
            continue
        layer.code.prepare_for_execution()
        layer_dirs.append(Path(layer.code.get_unzipped_code_location()))
    opt_dir: Path = merged_opt_dir(layer_dirs, executor_root() / "opt")
    return opt_dir
