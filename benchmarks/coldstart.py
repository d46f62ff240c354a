"""Lambda cold starts, spawn -> first response, with where the time goes.

Each cold start is a fresh process in a fresh Lambda-shaped tree (the packaged function
zip + layers extracted, the handler run by pyenv's python3.12 in isolated mode:
localdev.lambda_runner), answering one API Gateway event:

- digits, MiniLM fp32 and MiniLM int8 from layers (delivery "layer"), each with the
  handler's own init breakdown (its EMF line: imports, artifact = manifest and sha256
  verification, session = backend session + tokenizer + app, first inference) and a
  finer split by a probe in the same tree (each import group, manifest, verify,
  session creation, tokenizer, first inference);
- the same MiniLM app with the torch backend (`import torch` + model.pt2; the venv's
  Python, since torch is in no layer);
- an S3-delivered model (default: fp32 BERT-base, `inferstack build bert-base`) from
  LocalStack's S3 with MODEL_URI=s3://...: the download (parallel ranged GETs, hashed as
  they arrive) apart from session creation, and the sha256 pass delivery no longer
  repeats; the model's parity against its reference (torch) as its manifest records it.

Starts LocalStack (or reuses a running one) and stops what it started, by PID: run it
under the LocalStack lock. Prints tables and writes build/bench/coldstart.json.

    flock /tmp/localstack.lock .venv/bin/python -m benchmarks.coldstart [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from layers.bytecode import compile_tree, find_interpreter
from layers.package import PackageResult, package, project_root
from localdev.lambda_runner import Invocation, LambdaTree, api_gateway_event, invoke
from model_runtime.delivery import Ranges
from model_runtime.manifest import Manifest, verify_artifact

ROOT = project_root()
OUT = ROOT / "build" / "bench" / "coldstart.json"
MODELS = ROOT / "build" / "bench" / "models"
SDK_ZIP = ROOT / "build" / "bench" / "coldstart" / "aws-sdk-python3.12.zip"
BUCKET = "inferstack-bench-coldstart"
SHORT_TEXT = "How do I reset my password?"
TARGETS = {
    "int8_cold_start_s": 0.6,
    "torch_cold_start_ratio": 3.0,
    "runtime_layer_unzipped_mb": 150.0,
    "int8_package_unzipped_mb": 250.0,
}
LOWER_IS_BETTER = {"int8_cold_start_s", "runtime_layer_unzipped_mb", "int8_package_unzipped_mb"}
# What Lambda's Python runtime provides beside the layers (/var/runtime): boto3 and what
# it needs, the packages the runtime layer leaves out.
SDK_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")

# The torch-based handler: the very same app, with the torch backend.
TORCH_HANDLER = """
import json, sys, time
from mangum import Mangum
from model_runtime.app import create_app
from model_runtime.backends import BackendOptions
from model_runtime.settings import RuntimeSettings
settings = RuntimeSettings.from_env()
engines = settings.load_engines(BackendOptions(backend="torch", device="cpu"))
handler = Mangum(create_app(engines), lifespan="off")
for line in sys.stdin:
    print(json.dumps(handler(json.loads(line), None)), flush=True)
"""

# The handler's init, step by step, in a fresh interpreter of the tree (argv: task, opt,
# model directory): the import groups in the order the handler pays them, then the
# steps of loading one model. Prints {step: ms}.
PROBE = r"""
import json, os, sys, time
sys.path[:0] = [sys.argv[1], os.path.join(sys.argv[2], "python")]
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
marks, last = {}, time.perf_counter()
def mark(name):
    global last
    now = time.perf_counter()
    marks[name] = (now - last) * 1000
    last = now
import numpy as np; mark("import numpy")
import onnxruntime; mark("import onnxruntime")
import tokenizers; mark("import tokenizers")
import pydantic, starlette.responses, mangum; mark("import pydantic, starlette, mangum")
import model_runtime.events.entry, model_runtime.settings; mark("import model_runtime")
from pathlib import Path
from model_runtime.backends import BackendOptions, open_backend
from model_runtime.datatypes import to_numpy
from model_runtime.manifest import Manifest, verify_artifact
from model_runtime.preprocess import TextTokenizer
directory = Path(sys.argv[3])
manifest = Manifest.load(directory); mark("manifest")
verify_artifact(directory, manifest, manifest.files_for("onnxruntime")); mark("verify (sha256)")
session = open_backend(directory, manifest, BackendOptions(), None); mark("session creation")
stage = manifest.preprocessing
tokenizer = TextTokenizer.load(directory, stage) if stage is not None else None
mark("tokenizer")
if tokenizer is not None:
    feed, _ = tokenizer({stage.input: np.array([sys.argv[4]], dtype=object)})
else:
    feed = {
        spec.name: np.zeros([1 if d == -1 else d for d in spec.shape], to_numpy(spec.datatype))
        for spec in manifest.inputs
    }
session.run([spec.name for spec in manifest.outputs], feed); mark("first inference")
# Not part of the init: what the first request the direct infer path leaves to the app
# (metadata, a malformed body) pays once.
from model_runtime.app import create_app; create_app([]); mark("later: FastAPI, app")
print(json.dumps(marks))
"""


def build_models() -> dict[str, Path]:
    """digits, minilm and minilm-int8 artifacts (built once into build/bench/models)."""
    from model_build.export import export_model
    from model_build.quantize import quantize_artifact
    from model_build.spec import resolve

    dirs = {name: MODELS / name for name in ("digits", "minilm", "minilm-int8")}
    for reference in ("digits", "minilm"):
        fp32, int8 = MODELS / reference, MODELS / f"{reference}-int8"
        if (fp32 / "manifest.json").is_file() and (int8 / "manifest.json").is_file():
            continue
        spec = resolve(reference).factory()
        export_model(spec, fp32)
        quantize_artifact(fp32, int8, spec)
    return dirs


def text_event(model: str, texts: list[str]) -> dict[str, Any]:
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}
    return api_gateway_event("POST", f"/v2/models/{model}/infer", body)


def digits_event() -> dict[str, Any]:
    from model_build.reference_models.digits import load_split

    image = load_split()[1][:1]
    body = {
        "inputs": [
            {
                "name": "image",
                "datatype": "FP32",
                "shape": [1, 1, 8, 8],
                "data": image.ravel().tolist(),
            }
        ]
    }
    return api_gateway_event("POST", "/v2/models/digits/infer", body)


def event_for(manifest: Manifest) -> dict[str, Any]:
    if manifest.preprocessing is not None:
        return text_event(manifest.name, [SHORT_TEXT])
    return digits_event()


def init_breakdown(invocation: Invocation) -> dict[str, float]:
    """The handler's `init_*` metrics from its first EMF line (model_runtime.telemetry)."""
    for line in invocation.log_lines:
        if '"init_total_ms"' in line:
            record = json.loads(line)
            return {key: float(value) for key, value in record.items() if key.startswith("init_")}
    raise SystemExit(f"no init breakdown in the handler's output: {invocation.log_lines[-5:]}")


def checked(invocation: Invocation, name: str) -> Invocation:
    status = invocation.responses[0]["statusCode"]
    if status != 200:
        raise SystemExit(f"{name}: status {status}: {invocation.responses[0]}")
    return invocation


def lambda_cold_starts(model_dir: Path, runs: int, python: Path, probe_runs: int) -> dict[str, Any]:
    """The model from its layer, as deployed with delivery="layer"."""
    result = package(model_dir)
    manifest = result.model
    samples, breakdowns, probes = [], [], []
    with tempfile.TemporaryDirectory(prefix="coldstart-") as tmp:
        for run in range(runs):
            # A fresh environment each time: new tree (empty /tmp), new process.
            tree = extract(result, Path(tmp) / f"run{run}")
            env = {"MODEL_URI": f"{tree.opt}/models/{manifest.name}"}
            invocation = checked(invoke(tree, python, [event_for(manifest)], env), manifest.name)
            samples.append(invocation.cold_start_s)
            breakdowns.append(init_breakdown(invocation))
        for run in range(probe_runs):
            tree = extract(result, Path(tmp) / f"probe{run}")
            probes.append(probe(tree, python, tree.opt / "models" / manifest.name))
    return {
        **summary(samples),
        "init_ms": medians(breakdowns),
        "probe_ms": medians(probes),
        "function_zip_bytes": result.function.zipped_bytes,
        "runtime_layer_unzipped_bytes": result.runtime_layer.unzipped_bytes,
        "model_layer_unzipped_bytes": result.model_layer.unzipped_bytes
        if result.model_layer
        else 0,
        "package_unzipped_bytes": result.budget.unzipped_bytes,
        "read_only_mounts": invocation.read_only_mounts,
    }


def extract(result: PackageResult, root: Path, extra_layers: tuple[Path, ...] = ()) -> LambdaTree:
    layers = [layer.path for layer in result.layers]
    return LambdaTree.extract(root, result.function.path, [*layers, *extra_layers])


def probe(tree: LambdaTree, python: Path, model_dir: Path) -> dict[str, float]:
    """The PROBE's step times in a fresh interpreter of `tree` (read-only mounts aside)."""
    command = [str(python), "-I", "-S", "-c", PROBE, str(tree.task), str(tree.opt)]
    environment = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(tree.home),
        "TMPDIR": str(tree.tmp),
    }
    marks = _marks([*command, str(model_dir), SHORT_TEXT], environment, tree.task, "probe")
    started = time.perf_counter()
    subprocess.run([str(python), "-I", "-S", "-c", "pass"], check=True, env=environment)
    marks["interpreter start (python -I -S -c pass)"] = (time.perf_counter() - started) * 1000
    return marks


def sdk_probe(tree: LambdaTree, python: Path, env: dict[str, str]) -> dict[str, float]:
    """What S3 delivery pays before its first byte: importing boto3, making the client."""
    script = (
        "import os, sys, time, json\n"
        "sys.path[:0] = [sys.argv[1], os.path.join(sys.argv[2], 'python')]\n"
        "t0 = time.perf_counter(); import boto3; t1 = time.perf_counter()\n"
        "from model_runtime.s3_reader import default_client; default_client(8)\n"
        "t2 = time.perf_counter()\n"
        "print(json.dumps({'import boto3': (t1 - t0) * 1000, 's3 client': (t2 - t1) * 1000}))"
    )
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tree.home), **env}
    command = [str(python), "-I", "-S", "-c", script, str(tree.task), str(tree.opt)]
    return _marks(command, environment, tree.task, "sdk probe")


def _marks(command: list[str], env: dict[str, str], cwd: Path, what: str) -> dict[str, float]:
    """Run a probe script; its last stdout line is a JSON object of step times."""
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed: {done.stderr[-3000:]}")
    marks: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return marks


def torch_cold_starts(model_dir: Path, event: dict[str, Any], runs: int) -> dict[str, Any]:
    samples = []
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": tempfile.gettempdir(),
        "MODEL_URI": str(model_dir),
    }
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", TORCH_HANDLER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert process.stdin and process.stdout
        process.stdin.write(json.dumps(event) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        elapsed = time.perf_counter() - started
        process.stdin.close()
        process.wait(timeout=60)
        if not line or json.loads(line)["statusCode"] != 200:
            stderr = process.stderr.read() if process.stderr else ""
            raise SystemExit(f"torch handler failed: {line[:300]} {stderr[-2000:]}")
        samples.append(elapsed)
    return {**summary(samples), "python": platform.python_version()}


# --- the S3-delivered model -------------------------------------------------------------


def sdk_layer(python: Path) -> Path:
    """boto3 and what it needs, compiled for the tree's Python: what Lambda's runtime
    provides in /var/runtime (the runtime layer leaves them out), as one more zip."""
    if SDK_ZIP.is_file():
        return SDK_ZIP
    import importlib.util

    staging = SDK_ZIP.parent / "sdk"
    shutil.rmtree(staging, ignore_errors=True)
    target = staging / "python"
    target.mkdir(parents=True)
    for name in SDK_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, target / name, ignore=shutil.ignore_patterns("*.pyc"))
        else:
            shutil.copy2(origin, target / origin.name)
    compile_tree(target, python, "/var/runtime")
    with zipfile.ZipFile(SDK_ZIP, "w") as archive:
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(staging).as_posix())
    shutil.rmtree(staging)
    return SDK_ZIP


@contextmanager
def localstack_s3() -> Iterator[tuple[Any, str]]:
    """An S3 client on LocalStack (started unless running; stopped after, if started)."""
    from localdev.localstack import manager

    status = manager.start(echo=lambda message: print(message, file=sys.stderr))
    try:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=status.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        yield client, status.endpoint
    finally:
        if not status.reused:
            manager.stop()


def s3_cold_starts(model_dir: Path, runs: int, python: Path) -> dict[str, Any]:
    """The model as deployed with delivery="s3": objects uploaded, MODEL_URI=s3://..."""
    result = package(model_dir, delivery="s3")
    assert result.s3_objects is not None
    manifest = result.model
    names = manifest.files_for("onnxruntime")
    download_bytes = sum(manifest.files[name].size for name in names)
    ranges = Ranges()
    samples, breakdowns, verify_ms, probes, sdk = [], [], [], [], []
    sdk_zip = sdk_layer(python)
    with localstack_s3() as (client, endpoint), tempfile.TemporaryDirectory(prefix="s3cs-") as tmp:
        with suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=BUCKET)
        for key, path in result.s3_objects.items():
            client.upload_file(str(path), BUCKET, key)
        uri = result.model_uri.replace("<bucket>", BUCKET)
        env = {
            "MODEL_URI": uri,
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        for run in range(runs):
            tree = extract(result, Path(tmp) / f"run{run}", (sdk_zip,))
            invocation = checked(invoke(tree, python, [event_for(manifest)], env), manifest.name)
            samples.append(invocation.cold_start_s)
            breakdowns.append(init_breakdown(invocation))
            (downloaded,) = [p.parent for p in tree.tmp.rglob(".complete")]
            # The pass delivery no longer repeats: every file hashed again after download.
            started = time.perf_counter()
            verify_artifact(downloaded, Manifest.load(downloaded), names)
            verify_ms.append((time.perf_counter() - started) * 1000)
            if run == 0:
                probes.append(probe(tree, python, downloaded))
                sdk.append(sdk_probe(tree, python, env))
            shutil.rmtree(tree.root, ignore_errors=True)
    init = medians(breakdowns)
    before_download = sum(medians(sdk).values())
    return {
        **summary(samples),
        "model": manifest.name,
        "download_bytes": download_bytes,
        "files": len(names) + 1,
        "ranges": {"range_bytes": ranges.range_bytes, "threads": ranges.threads},
        "init_ms": init,
        # The artifact phase is boto3's import and client, then the download itself.
        "sdk_ms": medians(sdk),
        "download_ms": init["init_artifact_ms"] - before_download,
        "download_mb_per_s": download_bytes
        / 1e6
        / ((init["init_artifact_ms"] - before_download) / 1000),
        "second_verify_ms_removed": statistics.median(verify_ms),
        "probe_ms": medians(probes),
        "parity": manifest.parity.model_dump(),
        "quantized": manifest.quantization is not None,
        "planned_ephemeral_storage_mb": result.ephemeral_storage_mb,
    }


# --- report -------------------------------------------------------------------------------


def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "runs": len(samples),
        "samples_s": samples,
    }


def medians(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]} if rows else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="cold starts per model")
    parser.add_argument("--probe-runs", type=int, default=3, help="step-by-step probes")
    parser.add_argument(
        "--s3-model",
        type=Path,
        default=ROOT / "build" / "models" / "bert-base",
        help="the artifact delivered from S3 (default: `inferstack build bert-base`)",
    )
    parser.add_argument("--skip-s3", action="store_true", help="no LocalStack, no S3 model")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    console = Console()
    python = find_interpreter("3.12")
    if python is None:
        raise SystemExit("no python3.12 (pyenv versions or PATH): needed for the Lambda tree")
    if not args.skip_s3 and not (args.s3_model / "manifest.json").is_file():
        raise SystemExit(
            f"no artifact in {args.s3_model}: build it with `inferstack build bert-base`"
            " (or pass --s3-model DIR, or --skip-s3)"
        )
    with console.status("building models and packages"):
        dirs = build_models()
    cold: dict[str, Any] = {}
    for name, label in (
        ("digits", "digits"),
        ("minilm", "minilm fp32"),
        ("minilm-int8", "minilm int8"),
    ):
        with console.status(f"{label}: cold starts"):
            cold[label] = lambda_cold_starts(dirs[name], args.runs, python, args.probe_runs)
    with console.status("torch-based handler cold starts"):
        cold["minilm torch handler"] = torch_cold_starts(
            dirs["minilm"], text_event("minilm", [SHORT_TEXT]), max(3, args.runs // 2)
        )
    s3 = None
    if not args.skip_s3:
        with console.status(f"{args.s3_model.name} from LocalStack's S3: cold starts"):
            s3 = s3_cold_starts(args.s3_model, max(3, args.runs // 2), python)
    report = assemble(cold, s3, python)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    render(console, report)
    console.print(f"wrote {OUT.relative_to(ROOT)}")


def assemble(cold: dict[str, Any], s3: dict[str, Any] | None, python: Path) -> dict[str, Any]:
    int8 = cold["minilm int8"]
    measured = {
        "int8_cold_start_s": int8["median_s"],
        "torch_cold_start_ratio": cold["minilm torch handler"]["median_s"] / int8["median_s"],
        "runtime_layer_unzipped_mb": int8["runtime_layer_unzipped_bytes"] / 2**20,
        "int8_package_unzipped_mb": int8["package_unzipped_bytes"] / 2**20,
    }
    return {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "lambda_python": str(python),
        },
        "cold_start": cold,
        "s3_cold_start": s3,
        "targets": {
            name: {
                "target": target,
                "measured": measured[name],
                "met": measured[name] <= target
                if name in LOWER_IS_BETTER
                else measured[name] >= target,
            }
            for name, target in TARGETS.items()
        },
    }


def render(console: Console, report: dict[str, Any]) -> None:
    cold = Table(title="Cold start: spawn -> first response (isolated python3.12 Lambda tree)")
    for column in ("model", "median s", "min s", "max s", "runs", "package unzipped"):
        cold.add_column(column)
    for name, row in report["cold_start"].items():
        size = row.get("package_unzipped_bytes")
        cold.add_row(
            name,
            f"{row['median_s']:.3f}",
            f"{row['min_s']:.3f}",
            f"{row['max_s']:.3f}",
            str(row["runs"]),
            f"{size / 2**20:.1f} MB" if size else "torch (not a Lambda package)",
        )
    console.print(cold)
    layered = {name: row for name, row in report["cold_start"].items() if "init_ms" in row}
    init = Table(title="The handler's init breakdown (its EMF init_* metrics, median ms)")
    keys = ["init_imports_ms", "init_artifact_ms", "init_session_ms", "init_first_inference_ms"]
    for column in ("model", "imports", "artifact", "session", "first inference", "total"):
        init.add_column(column, justify="right")
    for name, row in layered.items():
        phases = row["init_ms"]
        init.add_row(name, *(f"{phases[key]:.0f}" for key in [*keys, "init_total_ms"]))
    console.print(init)
    steps = Table(title="Step by step (a probe in the same tree, median ms)")
    steps.add_column("step")
    for name in layered:
        steps.add_column(name, justify="right")
    for step in next(iter(layered.values()))["probe_ms"]:
        steps.add_row(step, *(f"{row['probe_ms'][step]:.0f}" for row in layered.values()))
    console.print(steps)
    s3 = report["s3_cold_start"]
    if s3 is not None:
        phases = s3["init_ms"]
        table = Table(title=f"{s3['model']} from LocalStack's S3 (MODEL_URI=s3://..., median)")
        for column in ("measure", "value"):
            table.add_column(column)
        parity = s3["parity"]
        rows = [
            ("cold start, spawn -> first response", f"{s3['median_s']:.2f} s ({s3['runs']} runs)"),
            ("artifact phase (boto3, client, download)", f"{phases['init_artifact_ms']:.0f} ms"),
            ("  import boto3 + S3 client (probe)", f"{sum(s3['sdk_ms'].values()):.0f} ms"),
            ("  download, hashed as it arrives", f"{s3['download_ms']:.0f} ms"),
            ("  download rate", f"{s3['download_mb_per_s']:.0f} MB/s"),
            ("downloaded", f"{s3['download_bytes'] / 1e6:.1f} MB in {s3['files']} files"),
            (
                "ranges",
                f"{s3['ranges']['range_bytes'] // 2**20} MB each,"
                f" {s3['ranges']['threads']} threads",
            ),
            (
                "verify (the second sha256 pass, removed)",
                f"{s3['second_verify_ms_removed']:.0f} ms",
            ),
            ("session creation", f"{s3['probe_ms'].get('session creation', 0):.0f} ms"),
            ("session + tokenizer", f"{phases['init_session_ms']:.0f} ms"),
            ("imports", f"{phases['init_imports_ms']:.0f} ms"),
            ("first inference", f"{phases['init_first_inference_ms']:.0f} ms"),
            ("planned ephemeral storage", f"{s3['planned_ephemeral_storage_mb']} MB"),
            (
                f"parity vs {parity['reference']}",
                f"max abs {parity['max_abs_error']:.2e}, max rel {parity['max_rel_error']:.2e}"
                f" ({'passed' if parity['passed'] else 'FAILED'})",
            ),
        ]
        for measure, value in rows:
            table.add_row(measure, value)
        console.print(table)
    targets = Table(title="Targets")
    for column in ("target", "wanted", "measured", "met"):
        targets.add_column(column)
    for name, row in report["targets"].items():
        wanted = f"<= {row['target']}" if name in LOWER_IS_BETTER else f">= {row['target']}"
        targets.add_row(name, wanted, f"{row['measured']:.2f}", "yes" if row["met"] else "NO")
    console.print(targets)
    console.print(f"load average during the run: {report['machine']['load_average']}")


if __name__ == "__main__":
    main()
