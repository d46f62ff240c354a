"""`inferstack cost` through typer's CliRunner: the numbers of a hand computation, the
latency source and the price file's source and date in the output, the CloudWatch lookup
behind its seam, and the one-line errors. No network: CloudWatch is a stub."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner, Result

import layers.package
import pricing.plot
from cli import cost, deployment
from cli.app import app
from cli.console import console
from localdev.errors import DeployError
from pricing.latency import WarmLatency, from_cloudwatch
from pricing.prices import DEFAULT_PRICES

# 20 requests/s for 730 h
REQUESTS = 20 * 730 * 3600


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root with the runtime benchmark's digits row (4.2 ms) and no artifacts;
    the console wide enough that no table cell wraps."""
    monkeypatch.setattr(console, "width", 300)
    bench = tmp_path / "build" / "bench"
    bench.mkdir(parents=True)
    rows = [{"batch": 1, "path": "Lambda handler (API GW event)", "mean_ms": 4.2}]
    (bench / "runtime.json").write_text(json.dumps({"rows": rows}), encoding="utf-8")
    monkeypatch.setattr(layers.package, "project_root", lambda: tmp_path)
    return tmp_path


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> dict[str, WarmLatency]:
    """What CloudWatch answers: nothing (not deployed) unless a test adds a model."""
    found: dict[str, WarmLatency] = {}
    monkeypatch.setattr(cost, "deployed_latencies", lambda stack, models: dict(found))
    return found


def inferstack(*args: str) -> Result:
    return CliRunner().invoke(app, ["cost", *args], terminal_width=200)


def flat(text: str) -> str:
    """Output with rich's wrapping undone: cells and lines joined by single spaces."""
    return " ".join(text.replace("│", " ").split())


def assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_the_estimate_is_the_hand_computation(root: Path, deployed: dict[str, Any]) -> None:
    result = inferstack("--stack", "local", "--rps", "20", "--model", "digits")
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    # digits on the local stack: 1024 MB x86_64, no provisioned concurrency.
    requests_usd = REQUESTS / 1e6 * 0.20  # $10.512
    duration_usd = REQUESTS * 0.005 * 1 * 0.0000166667  # 4.2 ms bills 5 ms: $4.380
    api_usd = REQUESTS / 1e6 * 3.50  # $183.96
    assert f"${requests_usd:,.2f}" == "$10.51"
    assert f"${duration_usd:,.2f}" == "$4.38"
    assert f"${requests_usd + duration_usd + api_usd:,.2f}" == "$198.85"
    assert "Lambda requests 52,560,000 requests $10.51" in out
    assert "262,800 GB-s (5 ms billed x 1024 MB) $4.38" in out
    assert "API Gateway REST requests 52,560,000 requests $183.96" in out
    assert "not computed: artifact not built" in out
    assert "model total without what is not computed $198.85" in out
    assert "digits-int8" not in out


def test_every_estimate_prints_its_latency_source_and_the_price_files_source_and_date(
    root: Path, deployed: dict[str, Any]
) -> None:
    result = inferstack("--stack", "local", "--rps", "1")
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "build/bench/runtime.json: batch 1, 'Lambda handler (API GW event)', mean" in out
    assert "unknown: no CloudWatch data, and no benchmark result for digits-int8" in out
    assert "no GPU endpoint declared" in out
    assert f"prices: {DEFAULT_PRICES.relative_to(Path.cwd())}" in out
    assert "(us-east-1, USD, read 2026-12-01): AWS public on-demand prices" in out
    assert "https://aws.amazon.com/lambda/pricing/ (read 2026-12-01)" in out
    assert "https://aws.amazon.com/ec2/pricing/on-demand/ (read 2026-12-01)" in out


def test_a_deployed_stacks_latency_comes_from_cloudwatch(
    root: Path, deployed: dict[str, Any]
) -> None:
    deployed["digits"] = from_cloudwatch(12.5, "inferstack-local-digits", 24)
    result = inferstack("--stack", "local", "--rps", "20", "--model", "digits")
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    # 12.5 ms bills 13 ms
    assert f"${REQUESTS * 0.013 * 1 * 0.0000166667:,.2f}" == "$11.39"
    assert "683,280 GB-s (13 ms billed x 1024 MB) $11.39" in out
    assert "12.500 ms (billed 13 ms) CloudWatch AWS/Lambda Duration" in out


def test_prices_from_another_file(root: Path, deployed: dict[str, Any], tmp_path: Path) -> None:
    data = json.loads(DEFAULT_PRICES.read_text(encoding="utf-8"))
    data["prices"]["lambda_requests_per_million"]["usd"] = 0.40
    data["source"] = "our negotiated prices"
    path = tmp_path / "ours.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = inferstack(
        "--stack", "local", "--rps", "20", "--model", "digits", "--prices", str(path)
    )
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "Lambda requests 52,560,000 requests $21.02" in out
    assert f"prices: {path}" in out
    assert "our negotiated prices" in out


def test_plot_gets_every_model_and_says_what_it_left_out(
    root: Path, deployed: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The PNG itself: tests/unit/pricing/test_plot.py (matplotlib takes seconds to load).
    drawn: list[Any] = []

    def plot_costs(
        models: list[Any], rps: float, hours: float, prices: Any, path: Path
    ) -> list[str]:
        drawn.append(([m.name for m in models], rps, hours, path))
        return ["digits-int8 (latency unknown)"]

    monkeypatch.setattr(pricing.plot, "plot_costs", plot_costs)
    path = tmp_path / "plots" / "cost.png"
    result = inferstack("--stack", "local", "--rps", "20", "--plot", str(path))
    assert result.exit_code == 0, result.output
    assert drawn == [(["digits", "digits-int8", "minilm-int8", "digits-gpu"], 20.0, 730.0, path)]
    assert path.parent.is_dir()
    assert f"plot: {path} (not drawn: digits-int8 (latency unknown))" in flat(result.stdout)


def test_an_unknown_stack_lists_the_known_ones(root: Path, deployed: dict[str, Any]) -> None:
    assert_one_line_error(
        inferstack("--stack", "nope", "--rps", "20"),
        "no stack named 'nope'",
        "available stacks: dev, local, prod",
    )


def test_an_unknown_model_lists_the_stacks_models(root: Path, deployed: dict[str, Any]) -> None:
    assert_one_line_error(
        inferstack("--stack", "local", "--rps", "20", "--model", "resnet"),
        "no model named 'resnet' in stack 'local'; known models: digits, digits-int8, minilm-int8",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rps", "-5"], "--rps has value '-5'; allowed: a number ≥ 0"),
        (["--rps=-0.5"], "--rps has value '-0.5'; allowed: a number ≥ 0"),
        (["--rps", "lots"], "--rps has value 'lots'; allowed: a number ≥ 0"),
        (["--rps", "nan"], "--rps has value 'nan'; allowed: a number ≥ 0"),
        (["--rps", "inf"], "--rps has value 'inf'; allowed: a number ≥ 0"),
        (["--rps", "1", "--hours", "0"], "--hours has value '0'; allowed: a number > 0"),
        (["--rps", "1", "--hours", "a month"], "--hours has value 'a month'; allowed"),
        (["--rps", "1", "--plot", "cost.svg"], "--plot has value 'cost.svg'; allowed: a path"),
    ],
)
def test_a_bad_number_or_path_is_one_line(
    root: Path, deployed: dict[str, Any], args: list[str], message: str
) -> None:
    assert_one_line_error(inferstack("--stack", "local", *args), message)


def test_a_bad_price_file_is_one_line_naming_the_field(
    root: Path, deployed: dict[str, Any], tmp_path: Path
) -> None:
    data = json.loads(DEFAULT_PRICES.read_text(encoding="utf-8"))
    data["prices"]["api_gateway_rest_per_million"]["usd"] = -3.5
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert_one_line_error(
        inferstack("--stack", "local", "--rps", "1", "--prices", str(path)),
        f"price file {path}: prices.api_gateway_rest_per_million.usd:",
    )
    assert_one_line_error(
        inferstack("--stack", "local", "--rps", "1", "--prices", str(tmp_path / "none.json")),
        "cannot read price file",
    )


class FakeCloudWatch:
    """get_metric_statistics answered from a dict of function -> datapoints."""

    def __init__(self, points: dict[str, list[dict[str, float]]]) -> None:
        self.points = points
        self.calls: list[dict[str, Any]] = []

    def get_metric_statistics(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        function = kwargs["Dimensions"][0]["Value"]
        if function not in self.points:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "Get")
        return {"Datapoints": self.points[function]}


def test_cloudwatch_average_is_weighted_by_sample_count_on_the_live_alias(
    outputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCloudWatch(
        {
            "inferstack-local-digits": [
                {"Average": 10.0, "SampleCount": 3.0},
                {"Average": 2.0, "SampleCount": 1.0},
            ],
            "inferstack-local-d8": [],  # LocalStack: no data
        }
    )
    monkeypatch.setattr(cost, "_cloudwatch", lambda stack: fake)
    found = cost.deployed_latencies("local", ["digits", "digits-int8", "minilm-int8"])
    assert list(found) == ["digits"]
    assert found["digits"].ms == pytest.approx((10.0 * 3 + 2.0 * 1) / 4)
    assert "inferstack-local-digits:live" in found["digits"].source
    call = fake.calls[0]
    assert (call["Namespace"], call["MetricName"]) == ("AWS/Lambda", "Duration")
    assert call["Dimensions"] == [
        {"Name": "FunctionName", "Value": "inferstack-local-digits"},
        {"Name": "Resource", "Value": "inferstack-local-digits:live"},
    ]
    assert call["EndTime"] - call["StartTime"] == cost.timedelta(hours=cost.CLOUDWATCH_HOURS)
    # minilm-int8 has no function in the outputs: not asked for.
    assert len(fake.calls) == 2


def test_cloudwatch_failing_falls_back_with_a_note(
    outputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeCloudWatch({"inferstack-local-digits": [{"Average": 4.0, "SampleCount": 1.0}]})
    monkeypatch.setattr(cost, "_cloudwatch", lambda stack: fake)
    found = cost.deployed_latencies("local", ["digits", "digits-int8"])
    assert list(found) == ["digits"]  # digits-int8's call was throttled
    assert "latency: CloudWatch did not answer" in capsys.readouterr().err


def test_a_stack_whose_outputs_cannot_be_read_asks_cloudwatch_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_outputs(stack: str) -> dict[str, Any]:
        raise DeployError("this stack deploys to AWS (us-east-1), which needs the Pulumi CLI")

    monkeypatch.setattr(deployment, "outputs", no_outputs)
    monkeypatch.setattr(cost, "_cloudwatch", lambda stack: pytest.fail("asked CloudWatch"))
    assert cost.deployed_latencies("prod", ["digits"]) == {}
    assert "needs the Pulumi CLI" in capsys.readouterr().err


def test_a_stack_not_deployed_asks_cloudwatch_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deployment, "outputs", lambda stack: {})
    monkeypatch.setattr(cost, "_cloudwatch", lambda stack: pytest.fail("asked CloudWatch"))
    assert cost.deployed_latencies("local", ["digits"]) == {}


def test_localstack_not_running_asks_cloudwatch_nothing(
    outputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cost, "_cloudwatch", lambda stack: None)
    assert cost.deployed_latencies("local", ["digits"]) == {}
    assert "latency: LocalStack is not running" in capsys.readouterr().err


def test_no_cloudwatch_client_for_a_localstack_that_is_not_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import localdev.deploy.aws

    asked: list[str] = []
    monkeypatch.setattr(localdev.deploy.aws, "reachable", lambda endpoint: asked.append(endpoint))
    assert cost._cloudwatch("local") is None
    assert asked == ["http://127.0.0.1:4566"]


def test_the_cloudwatch_client_is_the_stacks(monkeypatch: pytest.MonkeyPatch) -> None:
    import localdev.deploy.aws

    monkeypatch.setattr(localdev.deploy.aws, "reachable", lambda endpoint: True)
    monkeypatch.setattr(deployment, "aws_client", lambda stack, service: (stack, service))
    assert cost._cloudwatch("local") == ("local", "cloudwatch")
    assert cost._cloudwatch("prod") == ("prod", "cloudwatch")
