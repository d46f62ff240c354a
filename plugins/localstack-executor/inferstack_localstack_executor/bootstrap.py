"""The init of one execution environment: runs inside the function's own Python.

Standard library only, and valid on every Python the executor may start (3.9 and newer).
The executor starts it with the function code as the working directory and these
private variables (removed before user code runs):

- ``_INFERSTACK_SYS_PATH``: code and layer directories, ``os.pathsep``-separated, put at the
  front of ``sys.path`` once this module has imported what it needs;
- ``_INFERSTACK_PARENT_FD``: the read end of a pipe whose write end only LocalStack holds:
  end of file means LocalStack is gone, and the environment kills its process group.

Protocol (LocalStack's ``executor_endpoint``): after the handler module is imported it
POSTs ``{"port": N}`` to ``<LOCALSTACK_RUNTIME_ENDPOINT>/status/<id>/ready`` (or the error to
``.../error``); then each ``POST /invoke`` on that port runs the handler once and posts the
logs, then the response or the error, to ``.../invocations/<request id>/...``.
"""

from __future__ import annotations

import os
import sys

# Never let this package's directory shadow the function's modules.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _HERE:
    del sys.path[0]

import contextlib  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import queue  # noqa: E402
import resource  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import urllib.request  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from typing import Any  # noqa: E402

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_MARKER = b"\x00inferstack-flush:"


class Fault(Exception):
    """An error the Python runtime reports itself, with AWS's error type."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def error_body(error_type: str, message: str, request_id: str, trace: list[str]) -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": trace,
    }


def exception_body(exc: BaseException, request_id: str) -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)
    # Like AWS: the stack trace starts at the user's code, not at this bootstrap.
    while frames and os.path.abspath(frames[0].filename) == os.path.abspath(__file__):
        frames = traceback.StackSummary.from_list(frames[1:])
    return error_body(type(exc).__name__, str(exc), request_id, traceback.format_list(frames))


def error_log_line(body: dict[str, Any]) -> str:
    lines = [f"[ERROR] {body['errorType']}: {body['errorMessage']}"]
    if body["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(frame.rstrip("\n") for frame in body["stackTrace"])
    return "\n".join(lines) + "\n"


class OutputCapture:
    """Routes fds 1 and 2 through a pipe so that everything the function prints — Python,
    C extensions, subprocesses — is both forwarded to the environment's log file and
    collected for the current invocation's logs."""

    def __init__(self) -> None:
        self._forward = os.dup(2)
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        self._read_end = read_end
        self._lock = threading.Lock()
        self._collected: bytearray | None = None
        self._flushed: dict[bytes, threading.Event] = {}
        threading.Thread(target=self._pump, name="output", daemon=True).start()

    def write_direct(self, text: str) -> None:
        """Diagnostics of the bootstrap itself: into the log file, not the function's logs."""
        self._write_all(self._forward, text.encode())

    def begin(self) -> None:
        """Start collecting, unless already collecting (init output goes to the first
        invocation's logs, as on AWS)."""
        with self._lock:
            if self._collected is None:
                self._collected = bytearray()

    def end(self, wait_s: float = 2.0) -> str:
        for stream in (sys.stdout, sys.stderr):
            # A closed or replaced stream must not lose the response.
            with contextlib.suppress(Exception):
                stream.flush()
        token = uuid.uuid4().hex.encode()
        flushed = threading.Event()
        with self._lock:
            self._flushed[token] = flushed
        os.write(1, _MARKER + token + b"\n")
        flushed.wait(wait_s)
        with self._lock:
            self._flushed.pop(token, None)
            collected, self._collected = self._collected, None
        return bytes(collected or b"").decode("utf-8", "replace")

    def _pump(self) -> None:
        pending = b""
        while True:
            chunk = os.read(self._read_end, 65536)
            if not chunk:
                return
            data = pending + chunk
            while True:
                start = data.find(_MARKER)
                end = data.find(b"\n", start) if start >= 0 else -1
                if end < 0:
                    break
                self._emit(data[:start])
                token = data[start + len(_MARKER) : end]
                data = data[end + 1 :]
                with self._lock:
                    event = self._flushed.get(token)
                if event is not None:
                    event.set()
            keep = self._partial_marker_length(data)
            self._emit(data[: len(data) - keep])
            pending = data[len(data) - keep :]

    @staticmethod
    def _partial_marker_length(data: bytes) -> int:
        start = data.find(_MARKER)
        if start >= 0:
            return len(data) - start
        for size in range(min(len(_MARKER) - 1, len(data)), 0, -1):
            if _MARKER.startswith(data[-size:]):
                return size
        return 0

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        self._write_all(self._forward, data)
        with self._lock:
            if self._collected is not None:
                self._collected += data

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]


class LambdaContext:
    def __init__(self, request_id: str, invoked_arn: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _RequestIdFilter.request_id
        return True


def install_logging() -> None:
    """The root logger handler of AWS's Python runtime: level and format alike."""
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        root.setLevel(level)


def load_handler(spec: str) -> Callable[..., Any]:
    """Import the handler the way AWS's runtime does, with its error types."""
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as exc:
        raise Fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {exc}") from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise Fault(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {module_name} as a handler module",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise Fault(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", trace
        ) from None
    handler = getattr(module, function_name, None)
    if handler is None:
        # AWS's runtime starts anyway and fails every invocation with this error.
        fault = Fault(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )

        def missing(event: Any, context: Any) -> Any:
            raise fault

        return missing
    return handler  # type: ignore[no-any-return]


class Runtime:
    def __init__(self, capture: OutputCapture) -> None:
        self.capture = capture
        self.endpoint = os.environ["LOCALSTACK_RUNTIME_ENDPOINT"].rstrip("/")
        self.runtime_id = os.environ["LOCALSTACK_RUNTIME_ID"]
        self.timeout_s = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
        self.version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.invocations: queue.Queue[dict[str, Any]] = queue.Queue()
        self.init_ms: float | None = None
        self._finish_lock = threading.Lock()

    def post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(
            self.endpoint + path, data=body, method="POST",
            headers={"Content-Type": "application/json"},
        )
        with _OPENER.open(request, timeout=30) as response:
            response.read()

    def post_json(self, path: str, body: Any) -> None:
        self.post(path, json.dumps(body).encode())

    def serve(self) -> ThreadingHTTPServer:
        runtime = self

        class InvokeHandler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path.rstrip("/") != "/invoke":
                    self.send_response(404)
                    self.end_headers()
                    return
                runtime.invocations.put(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # request logs would end up in the function's logs

        server = ThreadingHTTPServer(("127.0.0.1", 0), InvokeHandler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="invoke-server", daemon=True).start()
        return server

    def run_forever(self, handler: Callable[..., Any]) -> None:
        while True:
            self.invoke(handler, self.invocations.get())

    def invoke(self, handler: Callable[..., Any], invocation: dict[str, Any]) -> None:
        request_id = str(invocation["invoke-id"])
        started = time.monotonic()
        finished = threading.Event()
        os.environ["_X_AMZN_TRACE_ID"] = str(invocation.get("trace-id") or "")
        _RequestIdFilter.request_id = request_id
        self.capture.begin()
        timer = threading.Timer(
            self.timeout_s, self.time_out, args=(request_id, started, finished)
        )
        timer.daemon = True
        timer.start()
        is_error = False
        try:
            raw = invocation.get("payload") or "{}"
            event = json.loads(raw)
            context = LambdaContext(
                request_id, str(invocation.get("invoked-function-arn", "")),
                started + self.timeout_s,
            )
            result = handler(event, context)
            try:
                body = json.dumps(result).encode()
            except (TypeError, ValueError) as exc:
                raise Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None
        except Fault as fault:
            is_error = True
            error = error_body(fault.error_type, fault.message, request_id, fault.trace)
        except Exception as exc:
            is_error = True
            error = exception_body(exc, request_id)
        with self._finish_lock:
            if finished.is_set():
                return  # timed out: the timer thread reported it and the process is ending
            finished.set()
        timer.cancel()
        if is_error:
            sys.stderr.write(error_log_line(error))
            body = json.dumps(error).encode()
        logs = self.capture.end()
        self.post_json(f"/invocations/{request_id}/logs", {"logs": self.log_text(
            request_id, logs, started, status=None)})
        kind = "error" if is_error else "response"
        self.post(f"/invocations/{request_id}/{kind}", body)

    def time_out(self, request_id: str, started: float, finished: threading.Event) -> None:
        with self._finish_lock:
            if finished.is_set():
                return
            finished.set()
        seconds = f"{self.timeout_s:.2f}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        logs = self.capture.end(wait_s=0.5)
        logs += f"{stamp}Z {request_id} Task timed out after {seconds} seconds\n"
        message = f"RequestId: {request_id} Error: Task timed out after {seconds} seconds"
        error = {"errorMessage": message, "errorType": "Sandbox.Timedout"}
        try:
            self.post_json(f"/invocations/{request_id}/logs", {"logs": self.log_text(
                request_id, logs, started, status="timeout")})
            self.post_json(f"/invocations/{request_id}/error", error)
        finally:
            # The handler is still running and cannot be stopped: end the environment,
            # as AWS does; the executor starts a fresh one for the next invocation.
            os.killpg(0, signal.SIGKILL)

    def log_text(self, request_id: str, output: str, started: float, status: str | None) -> str:
        duration_ms = (time.monotonic() - started) * 1000
        max_memory_mb = peak_memory_mb()
        if output and not output.endswith("\n"):
            output += "\n"
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {self.memory_mb} MB\t"
            f"Max Memory Used: {max_memory_mb} MB\t"
        )
        if self.init_ms is not None:
            report += f"Init Duration: {self.init_ms:.2f} ms\t"
            self.init_ms = None
        if status:
            report += f"Status: {status}"
        return (
            f"START RequestId: {request_id} Version: {self.version}\n{output}"
            f"END RequestId: {request_id}\n{report}\n"
        )


def peak_memory_mb() -> int:
    # ru_maxrss would include the memory of the LocalStack process this one was forked from.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def watch_parent(fd: int, parent_pid: int) -> None:
    """End the whole environment as soon as LocalStack is gone, however it ended."""
    while True:
        readable, _, _ = select.select([fd], [], [], 1.0)
        if (readable and not os.read(fd, 1)) or os.getppid() != parent_pid:
            os.killpg(0, signal.SIGKILL)


def main() -> None:
    init_started = time.monotonic()
    parent_fd = int(os.environ.pop("_INFERSTACK_PARENT_FD", "-1"))
    if parent_fd >= 0:
        os.set_inheritable(parent_fd, False)
        threading.Thread(
            target=watch_parent, args=(parent_fd, os.getppid()), name="parent", daemon=True
        ).start()
    extra_path = [p for p in os.environ.pop("_INFERSTACK_SYS_PATH", "").split(os.pathsep) if p]
    capture = OutputCapture()
    capture.begin()
    runtime = Runtime(capture)
    server = runtime.serve()

    sys.path[0:0] = [p for p in extra_path if p not in sys.path]
    pythonpath = [*extra_path, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(pythonpath))
    install_logging()

    status = f"/status/{runtime.runtime_id}"
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except Fault as fault:
        body = error_body(fault.error_type, fault.message, "", fault.trace)
        sys.stderr.write(error_log_line(body))
        capture.end(wait_s=0.5)
        runtime.post_json(f"{status}/error", body)
        sys.exit(1)
    except Exception as exc:
        body = exception_body(exc, "")
        sys.stderr.write(error_log_line(body))
        capture.end(wait_s=0.5)
        runtime.post_json(f"{status}/error", body)
        sys.exit(1)
    runtime.init_ms = (time.monotonic() - init_started) * 1000
    runtime.post_json(f"{status}/ready", {"port": server.server_address[1]})
    runtime.run_forever(handler)


if __name__ == "__main__":
    main()
