"""Lambda functions on LocalStack through the inferstack-process executor, via boto3 and
API Gateway, compared with what AWS does."""

from __future__ import annotations

import base64
import json
import textwrap
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import WaiterError

from layers.interpreters import override_variable
from localdev.localstack.environment import lambda_interpreters
from tests.support.localstack import ENDPOINT, REGION, CreateFunction, client, invoke, zip_bytes

ECHO = textwrap.dedent(
    """
    import logging
    import os
    import sys

    print("init ran")
    logging.getLogger().setLevel(logging.INFO)

    def handler(event, context):
        print("got", event["name"])
        logging.getLogger(__name__).info("from logging")
        os.system("echo from a subprocess")
        return {
            "hello": event["name"],
            "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "python": "%d.%d" % sys.version_info[:2],
        }
    """
)


def _has_python(runtime: str) -> bool:
    """Whether the manager handed LocalStack an interpreter for this runtime."""
    return override_variable(runtime.removeprefix("python")) in lambda_interpreters()


def test_invoke_returns_the_handler_result_and_tail_logs(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    name = create_function({"handler.py": ECHO})
    response = invoke(lambda_client, name, {"name": "ada"}, LogType="Tail")

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    result = response["Payload"]
    assert result["hello"] == "ada"
    assert result["python"] == "3.12"
    assert 0 < result["remaining_ms"] <= 3000
    logs = base64.b64decode(response["LogResult"]).decode()
    assert f"START RequestId: {result['request_id']}" in logs
    assert "init ran" in logs  # init output lands in the first invocation's logs, as on AWS
    assert "got ada" in logs
    assert "from a subprocess" in logs  # fd-level output is captured, not just print()
    assert "[INFO]\t" in logs and f"{result['request_id']}\tfrom logging" in logs
    assert f"REPORT RequestId: {result['request_id']}" in logs

    warm = invoke(lambda_client, name, {"name": "bob"}, LogType="Tail")
    warm_logs = base64.b64decode(warm["LogResult"]).decode()
    assert warm["Payload"]["hello"] == "bob"
    assert "got bob" in warm_logs and "got ada" not in warm_logs and "init ran" not in warm_logs


@pytest.mark.parametrize("runtime", ["python3.9", "python3.10", "python3.11", "python3.13"])
def test_other_python_runtimes(
    lambda_client: Any, create_function: CreateFunction, runtime: str
) -> None:
    if not _has_python(runtime):
        pytest.skip(f"no {runtime} interpreter on this machine")
    name = create_function({"handler.py": ECHO}, runtime=runtime)
    assert invoke(lambda_client, name, {"name": "x"})["Payload"]["python"] == runtime[6:]


def test_environment_variables_and_private_directories(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    source = textwrap.dedent(
        """
        import os, tempfile

        def handler(event, context):
            path = os.path.join(tempfile.gettempdir(), "scratch.txt")
            with open(path, "w") as f:
                f.write("ok")
            keys = ["GREETING", "MODEL_NAME", "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION",
                    "AWS_LAMBDA_FUNCTION_TIMEOUT", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                    "LAMBDA_TASK_ROOT", "INFERSTACK_OPT_DIR", "TMPDIR", "AWS_EXECUTION_ENV",
                    "AWS_ENDPOINT_URL", "OPT_ROOT", "MODEL_DIR", "NOT_OPT"]
            return {"env": {k: os.environ.get(k) for k in keys}, "cwd": os.getcwd(),
                    "tmp_file": path, "private": sorted(k for k in os.environ
                                                        if k.startswith("_INFERSTACK"))}
        """
    )
    name = create_function(
        {"handler.py": source},
        env={
            "GREETING": "hello",
            "MODEL_NAME": "digits",
            "OPT_ROOT": "/opt",
            "MODEL_DIR": "/opt/models/a:/opt/models/b",
            "NOT_OPT": "/optional",
        },
        timeout=7,
    )
    result = invoke(lambda_client, name)["Payload"]
    env = result["env"]

    assert env["GREETING"] == "hello" and env["MODEL_NAME"] == "digits"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_REGION"] == REGION
    assert env["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "7"  # ints from LocalStack arrive as str
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_ENDPOINT_URL"] == ENDPOINT
    assert env["LAMBDA_TASK_ROOT"] == result["cwd"]
    assert Path(env["LAMBDA_TASK_ROOT"], "handler.py").is_file()
    # /opt paths in the function's variables point at its merged layers; nothing else
    # tells the function where they are.
    opt_root = env["OPT_ROOT"]
    assert opt_root != "/opt" and Path(opt_root).is_dir()
    assert env["MODEL_DIR"] == f"{opt_root}/models/a:{opt_root}/models/b"
    assert env["NOT_OPT"] == "/optional"
    assert env["INFERSTACK_OPT_DIR"] is None
    assert result["tmp_file"].startswith(env["TMPDIR"])
    assert env["TMPDIR"] != "/tmp" and Path(env["TMPDIR"]).parent.name != "tmp"
    assert result["private"] == []


def test_layers_are_merged_in_order_like_opt(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    first = zip_bytes(
        {
            "python/shared.py": "ORIGIN = 'first'\n",
            "python/only_first.py": "VALUE = 1\n",
            "python/lib/python3.12/site-packages/sitepkg.py": "VALUE = 'site'\n",
            "models/demo/weights.txt": "first",
            "models/demo/first-only.txt": "kept",
        }
    )
    second = zip_bytes(
        {
            "python/shared.py": "ORIGIN = 'second'\n",
            "models/demo/weights.txt": "second",
        }
    )
    arns = [
        lambda_client.publish_layer_version(
            LayerName=f"layer-{index}",
            Content={"ZipFile": content},
            CompatibleRuntimes=["python3.12"],
        )["LayerVersionArn"]
        for index, content in enumerate([first, second])
    ]
    source = textwrap.dedent(
        """
        import os
        import only_first, shared, sitepkg

        def handler(event, context):
            # Code written against Lambda's /opt, configured through its environment.
            read = lambda p: open(os.path.join(os.environ["MODEL_DIR"], p)).read()
            return {"shared": shared.ORIGIN, "only_first": only_first.VALUE,
                    "site": sitepkg.VALUE, "weights": read("weights.txt"),
                    "first_only": read("first-only.txt")}
        """
    )
    name = create_function(
        {"handler.py": source}, layers=arns, env={"MODEL_DIR": "/opt/models/demo"}
    )
    result = invoke(lambda_client, name)["Payload"]
    # A later layer replaces the same path from an earlier one, as when AWS fills /opt.
    assert result == {
        "shared": "second",
        "only_first": 1,
        "site": "site",
        "weights": "second",
        "first_only": "kept",
    }


def test_handler_exception_comes_back_in_aws_error_shape(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    source = textwrap.dedent(
        """
        def check(event):
            raise ValueError("bad input: " + event["x"])

        def handler(event, context):
            check(event)
        """
    )
    name = create_function({"handler.py": source})
    response = invoke(lambda_client, name, {"x": "42"}, LogType="Tail")

    assert response["FunctionError"] == "Unhandled"
    error = response["Payload"]
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "bad input: 42"
    assert len(error["stackTrace"]) == 2  # the user's frames only, as on AWS
    assert 'handler.py", line 6, in handler' in error["stackTrace"][0]
    assert "in check" in error["stackTrace"][1]
    logs = base64.b64decode(response["LogResult"]).decode()
    assert "[ERROR] ValueError: bad input: 42" in logs
    # The environment survives a handler exception.
    assert invoke(lambda_client, name, {"x": "7"})["Payload"]["errorMessage"] == "bad input: 7"


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"handler.py": "import not_installed_anywhere\n"},
            "handler.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'handler': No module named 'not_installed_anywhere'",
        ),
        (
            {"handler.py": "def handler(e, c):\n    return 1\n"},
            "nomodule.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'nomodule': No module named",
        ),
        (
            {"handler.py": "def handler(e, c) return 1\n"},
            "handler.handler",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'handler'",
        ),
        (
            {"handler.py": "raise RuntimeError('config missing')\n"},
            "handler.handler",
            "RuntimeError",
            "config missing",
        ),
        (
            {"handler.py": "def other(e, c):\n    return 1\n"},
            "handler.handler",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'handler'",
        ),
    ],
    ids=["missing-import", "missing-module", "syntax-error", "init-exception", "no-handler"],
)
def test_init_errors_in_aws_error_shape(
    lambda_client: Any,
    create_function: CreateFunction,
    files: dict[str, str],
    handler: str,
    error_type: str,
    message: str,
) -> None:
    name = create_function(files, handler=handler)
    response = invoke(lambda_client, name)

    assert response["FunctionError"] == "Unhandled"
    error = response["Payload"]
    assert error["errorType"] == error_type
    assert error["errorMessage"].startswith(message)
    assert isinstance(error["stackTrace"], list)


def test_timeout_is_sandbox_timedout_and_the_next_invocation_works(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    source = textwrap.dedent(
        """
        import os, time

        def handler(event, context):
            print("working")
            if event.get("sleep"):
                time.sleep(event["sleep"])
            return os.getpid()
        """
    )
    name = create_function({"handler.py": source}, timeout=1)
    first_pid = invoke(lambda_client, name)["Payload"]

    started = time.monotonic()
    response = invoke(lambda_client, name, {"sleep": 30}, LogType="Tail")
    elapsed = time.monotonic() - started

    assert response["FunctionError"] == "Unhandled"
    error = response["Payload"]
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert elapsed < 4
    logs = base64.b64decode(response["LogResult"]).decode()
    assert "working" in logs and "Task timed out after 1.00 seconds" in logs
    # The timed-out process is gone; the next invocation gets a fresh one.
    again = invoke(lambda_client, name)
    assert "FunctionError" not in again
    assert again["Payload"] != first_pid


def test_a_stuck_environment_is_timed_out_from_outside(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    """A process that cannot report its own timeout (stopped here; a handler holding the
    GIL in C code, say) is ended by the executor shortly after the function's timeout."""
    source = textwrap.dedent(
        """
        import os, signal

        def handler(event, context):
            if event:
                os.kill(os.getpid(), signal.SIGSTOP)
            return "ok"
        """
    )
    name = create_function({"handler.py": source}, timeout=1)
    started = time.monotonic()
    response = invoke(lambda_client, name, {"stop": True})

    assert response["FunctionError"] == "Unhandled"
    assert response["Payload"]["errorType"] == "Sandbox.Timedout"
    assert time.monotonic() - started < 5
    assert invoke(lambda_client, name)["Payload"] == "ok"


def test_process_exit_is_runtime_exit_error(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    source = textwrap.dedent(
        """
        import os

        def handler(event, context):
            if event:
                os._exit(3)
            return "alive"
        """
    )
    name = create_function({"handler.py": source})
    response = invoke(lambda_client, name, {"exit": True})

    assert response["FunctionError"] == "Unhandled"
    assert response["Payload"]["errorType"] == "Runtime.ExitError"
    assert response["Payload"]["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert invoke(lambda_client, name)["Payload"] == "alive"


def test_concurrent_invocations_get_separate_environments(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    source = textwrap.dedent(
        """
        import os, time

        def handler(event, context):
            time.sleep(1.5)
            return os.getpid()
        """
    )
    name = create_function({"handler.py": source}, timeout=10)

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: invoke(client("lambda"), name), range(4)))
    elapsed = time.monotonic() - started

    assert all("FunctionError" not in r for r in results)
    assert len({r["Payload"] for r in results}) == 4
    assert elapsed < 4.5  # one after another would take 6 s


def test_missing_interpreter_fails_the_function_with_a_clear_reason(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    if _has_python("python3.14"):
        pytest.skip("python3.14 is installed here")
    name = create_function({"handler.py": ECHO}, runtime="python3.14", wait=False)
    with pytest.raises(WaiterError):
        lambda_client.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50}
        )
    configuration = lambda_client.get_function(FunctionName=name)["Configuration"]
    assert configuration["State"] == "Failed"
    assert "no python3.14 interpreter found" in configuration["StateReason"]
    assert "INFERSTACK_PYTHON3_14 is not set" in configuration["StateReason"]
    assert "`inferstack localstack start`" in configuration["StateReason"]


def test_api_gateway_rest_proxy_calls_the_function(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    source = textwrap.dedent(
        """
        import json

        def handler(event, context):
            return {"statusCode": 201, "headers": {"Content-Type": "application/json"},
                    "body": json.dumps({"path": event["path"], "method": event["httpMethod"],
                                        "query": event["queryStringParameters"],
                                        "body": json.loads(event["body"])})}
        """
    )
    name = create_function({"handler.py": source})
    arn = lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    apigateway = client("apigateway")
    api_id = apigateway.create_rest_api(name=f"api-{name}")["id"]
    try:
        root = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
        proxy = apigateway.create_resource(restApiId=api_id, parentId=root, pathPart="{proxy+}")
        apigateway.put_method(
            restApiId=api_id, resourceId=proxy["id"], httpMethod="ANY", authorizationType="NONE"
        )
        apigateway.put_integration(
            restApiId=api_id,
            resourceId=proxy["id"],
            httpMethod="ANY",
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}/invocations",
        )
        apigateway.create_deployment(restApiId=api_id, stageName="test")

        url = f"{ENDPOINT}/restapis/{api_id}/test/_user_request_/models/digits/infer?v=2"
        request = urllib.request.Request(
            url,
            data=json.dumps({"inputs": [1, 2]}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            status, body = response.status, json.loads(response.read())
    finally:
        apigateway.delete_rest_api(restApiId=api_id)

    assert status == 201
    assert body == {
        "path": "/models/digits/infer",
        "method": "POST",
        "query": {"v": "2"},
        "body": {"inputs": [1, 2]},
    }
