"""The typed schema every `stacks/<name>.py` uses to declare one stack.

Only pydantic and the standard library: a stack file must be importable without
Pulumi or any cloud SDK. Each nested config sets its `title` to the field path it is
used under (`lambda`, `gpu`, `api`, ...), so that an error raised while a stack file is
being evaluated already names the field, e.g. `lambda.memory_mb: 64 is out of range;
allowed 128-10240 MB`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

LOCALSTACK_ENDPOINT = "http://127.0.0.1:4566"
# API Gateway's default integration timeout; more needs an AWS service-quota increase.
API_GATEWAY_TIMEOUT_S = 29
# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
# Names end up in Lambda function names, IAM role names (64 chars with Pulumi's
# 8-character suffix) and Kubernetes object names (DNS labels), hence the limits.
MODEL_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,23}$"
STACK_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,11}$"


def _in_range(low: float, high: float, unit: str = "") -> AfterValidator:
    suffix = f" {unit}" if unit else ""

    def check(value: Any) -> Any:
        if not low <= value <= high:
            raise PydanticCustomError(
                "out_of_range",
                # \u2013: an en dash, as in a printed range.
                "{value} is out of range; allowed {low}\u2013{high}{suffix}",
                {"value": value, "low": low, "high": high, "suffix": suffix},
            )
        return value

    return AfterValidator(check)


def _at_least(low: int, unit: str = "") -> AfterValidator:
    suffix = f" {unit}" if unit else ""

    def check(value: int) -> int:
        if value < low:
            raise PydanticCustomError(
                "too_small",
                "{value} is too small; allowed ≥ {low}{suffix}",
                {"value": value, "low": low, "suffix": suffix},
            )
        return value

    return AfterValidator(check)


def _one_of(allowed: tuple[int, ...], unit: str = "") -> AfterValidator:
    def check(value: int) -> int:
        if value not in allowed:
            raise PydanticCustomError(
                "not_allowed",
                "{value} is not allowed; allowed {allowed}{suffix}",
                {
                    "value": value,
                    "allowed": ", ".join(map(str, allowed)),
                    "suffix": f" {unit}" if unit else "",
                },
            )
        return value

    return AfterValidator(check)


def _matches(pattern: str, what: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise PydanticCustomError(
                "bad_format",
                "{value} is not a valid {what} (must match {pattern})",
                {"value": repr(value), "what": what, "pattern": pattern},
            )
        return value

    return check


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_stack", message)


def _config(title: str) -> ConfigDict:
    return ConfigDict(extra="forbid", frozen=True, strict=True, title=title)


ModelName = Annotated[str, AfterValidator(_matches(MODEL_NAME_PATTERN, "model name"))]


# --- where the stack deploys to ------------------------------------------------------


class LocalStackTarget(BaseModel):
    model_config = _config("target")

    kind: Literal["localstack"] = "localstack"
    endpoint: Annotated[str, AfterValidator(_matches(r"^https?://[^/\s]+/?$", "endpoint URL"))] = (
        LOCALSTACK_ENDPOINT
    )
    region: str = "us-east-1"


# Pulumi state backends allowed for an AWS stack; a local file only when asked for.
STATE_BACKENDS = ("s3://<bucket>/<prefix>?region=<region>", "https://api.pulumi.com")
# Secrets providers for an AWS stack's secrets (its API keys): a KMS key, Pulumi Cloud's
# own ("default"), or a passphrase the deployer supplies (never generated for AWS).
SECRETS_PROVIDERS = ("awskms://alias/<name>?region=<region>", "default", "passphrase")


def _backend_url(value: str | None) -> str | None:
    if value is None or value.startswith("file://"):
        return value  # file:// is checked with allow_local_state below
    if re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^?\s]*)?(\?\S*)?", value) or (
        re.fullmatch(r"https://[^/\s]+/?", value)
    ):
        return value
    raise PydanticCustomError(
        "not_allowed",
        "{value} is not an allowed state backend; allowed {allowed}",
        {"value": repr(value), "allowed": ", ".join(STATE_BACKENDS)},
    )


def _secrets_provider(value: str | None) -> str | None:
    if value is None or value in ("default", "passphrase") or value.startswith("awskms://"):
        return value
    raise PydanticCustomError(
        "not_allowed",
        "{value} is not an allowed secrets provider; allowed {allowed}",
        {"value": repr(value), "allowed": ", ".join(SECRETS_PROVIDERS)},
    )


class StateConfig(BaseModel):
    """Where Pulumi keeps an AWS stack's state, and what encrypts the stack's secrets.

    None means not set yet: the stack still loads (and evaluates under mocks), but a
    deploy refuses it and names the field (infra/automation.py).
    """

    model_config = _config("target.state")

    backend_url: Annotated[str | None, AfterValidator(_backend_url)] = None
    secrets_provider: Annotated[str | None, AfterValidator(_secrets_provider)] = None
    # A file backend keeps the only copy of the state on one machine: for an AWS stack
    # only when asked for explicitly (e.g. a throwaway acceptance stack).
    allow_local_state: bool = False

    @model_validator(mode="after")
    def _local_state_explicit(self) -> StateConfig:
        url = self.backend_url or ""
        if url.startswith("file://") and not self.allow_local_state:
            raise _fail(
                f"target.state.backend_url {url!r} is a local file backend: the stack's only "
                f"state would live on this machine; allowed {', '.join(STATE_BACKENDS)} "
                "(or set target.state.allow_local_state=True)"
            )
        if self.secrets_provider == "default" and not url.startswith("https://"):
            raise _fail(
                "target.state.secrets_provider 'default' is Pulumi Cloud's and needs an "
                "https:// backend_url; allowed with this backend: awskms://..., passphrase"
            )
        return self


class AwsTarget(BaseModel):
    model_config = _config("target")

    kind: Literal["aws"] = "aws"
    region: Annotated[str, AfterValidator(_matches(r"^[a-z]{2}(-[a-z]+)+-\d$", "AWS region"))]
    # A named profile from ~/.aws/config; None uses the default credential chain.
    profile: str | None = None
    # Refuse to deploy into any other account (a guard against the wrong credentials).
    allowed_account_ids: (
        list[Annotated[str, AfterValidator(_matches(r"^\d{12}$", "AWS account id"))]] | None
    ) = None
    # Pulumi's state backend and secrets provider for this stack: a deploy needs both.
    state: StateConfig = StateConfig()


# --- the artifact bucket -------------------------------------------------------------


class ArtifactStoreConfig(BaseModel):
    model_config = _config("artifact_store")

    # "aws:kms" without a key ARN uses the AWS-managed key aws/s3.
    encryption: Literal["AES256", "aws:kms"] = "AES256"
    kms_key_arn: (
        Annotated[
            str,
            AfterValidator(
                _matches(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/.+$", "KMS key ARN")
            ),
        ]
        | None
    ) = None
    noncurrent_version_expiry_days: Annotated[int, _in_range(1, 3650, "days")] = 30
    # Let `pulumi destroy` delete a bucket that still holds objects (local/dev only).
    force_destroy: bool = False

    @model_validator(mode="after")
    def _key_needs_kms(self) -> ArtifactStoreConfig:
        if self.kms_key_arn is not None and self.encryption != "aws:kms":
            raise _fail(
                "artifact_store.kms_key_arn is set but encryption is 'AES256'; "
                "set encryption='aws:kms' or drop the key"
            )
        return self


# --- Lambda serving ------------------------------------------------------------------


class ScheduledScaling(BaseModel):
    """A scheduled change of the provisioned-concurrency bounds (Application Auto Scaling)."""

    model_config = _config("lambda.provisioned.schedules[]")

    name: Annotated[str, AfterValidator(_matches(r"^[a-z][a-z0-9-]{0,31}$", "schedule name"))]
    # cron(...), rate(...) or at(...), as Application Auto Scaling accepts them.
    schedule: Annotated[
        str, AfterValidator(_matches(r"^(cron|rate|at)\(.+\)$", "schedule expression"))
    ]
    min: Annotated[int, _at_least(0)]
    max: Annotated[int, _at_least(1)]
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _ordered(self) -> ScheduledScaling:
        if self.min > self.max:
            raise _fail(f"schedule {self.name!r}: min {self.min} is greater than max {self.max}")
        return self


class ProvisionedConcurrency(BaseModel):
    """Provisioned concurrency on the `live` alias. min == max with no schedules is a fixed
    amount; otherwise Application Auto Scaling tracks utilization between min and max."""

    model_config = _config("lambda.provisioned")

    min: Annotated[int, _at_least(1)]
    max: Annotated[int, _at_least(1)]
    target_utilization: Annotated[float, _in_range(0.1, 0.9)] = 0.7
    schedules: list[ScheduledScaling] = []

    @model_validator(mode="after")
    def _ordered(self) -> ProvisionedConcurrency:
        if self.min > self.max:
            raise _fail(f"lambda.provisioned: min {self.min} is greater than max {self.max}")
        return self

    @property
    def autoscaled(self) -> bool:
        return self.max > self.min or bool(self.schedules)


class LambdaConfig(BaseModel):
    model_config = _config("lambda")

    memory_mb: Annotated[int, _in_range(128, 10240, "MB")] = 1024
    timeout_s: Annotated[int, _in_range(1, 900, "s")] = 10
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    runtime: Literal["python3.11", "python3.12", "python3.13"] = "python3.12"
    # /tmp. None: Lambda's 512 MB for a model in a layer; for one delivered from S3, sized
    # from its files (with headroom) when it is packaged. A set value too small for an
    # S3-delivered model is refused, naming this field and the size it needs.
    ephemeral_storage_mb: Annotated[int, _in_range(512, 10240, "MB")] | None = None
    # None leaves the function on the account's unreserved pool.
    reserved_concurrency: Annotated[int, _at_least(1)] | None = None
    provisioned: ProvisionedConcurrency | None = None
    # The latency objective of the function's requests (the app's `latency_ms`): its p99
    # alarm fires above it. None: no latency alarm.
    p99_ms: Annotated[int, _in_range(1, 900000, "ms")] | None = None

    @model_validator(mode="after")
    def _objective_inside_timeout(self) -> LambdaConfig:
        if self.p99_ms is not None and self.p99_ms > self.timeout_s * 1000:
            raise _fail(
                f"lambda.p99_ms: {self.p99_ms} ms exceeds the function's timeout of "
                f"{self.timeout_s} s; allowed ≤ {self.timeout_s * 1000} ms"
            )
        return self

    @model_validator(mode="after")
    def _provisioned_fits_reserved(self) -> LambdaConfig:
        if self.provisioned is None:
            return self
        if self.reserved_concurrency is None:
            raise _fail(
                "lambda.provisioned needs lambda.reserved_concurrency: provisioned "
                "concurrency must fit inside a reservation"
            )
        ceiling = max([self.provisioned.max] + [s.max for s in self.provisioned.schedules])
        if ceiling > self.reserved_concurrency:
            raise _fail(
                f"lambda.provisioned: up to {ceiling} provisioned exceeds "
                f"reserved_concurrency {self.reserved_concurrency}; allowed ≤ "
                f"{self.reserved_concurrency}"
            )
        return self


# --- versions --------------------------------------------------------------------------


class CanaryConfig(BaseModel):
    """A deploy that tries its new version on a slice of traffic: the `live` alias keeps
    `live_version` (a published Lambda version: `inferstack versions` lists them) and sends
    `weight` % of invocations to the version this deploy publishes (the alias's weighted
    routing). `inferstack promote` or `rollback` ends the canary."""

    model_config = _config("canary")

    live_version: Annotated[int, _at_least(1)]
    weight: Annotated[float, _in_range(0, 100, "%")]

    @model_validator(mode="after")
    def _a_slice(self) -> CanaryConfig:
        if not 0 < self.weight < 100:
            raise _fail(
                f"canary.weight {self.weight:g} % is no canary: allowed above 0 and below 100 %"
                " (remove `canary` to move all traffic with the deploy)"
            )
        return self


class AlarmRollbackConfig(BaseModel):
    """Traffic moves through CodeDeploy (AWS only): a deployment shifts the `live` alias
    to the new version in steps (`traffic`: "canary" sends `percent` % first, the rest
    after `interval_minutes`; "linear" adds `percent` % every `interval_minutes`;
    "all_at_once") while the model's 5xx-rate and p99-latency alarms watch it, and
    CodeDeploy moves the alias back when one goes to ALARM or the deployment fails.
    Deploys then publish versions without moving `live`: `inferstack promote` starts
    the deployment."""

    model_config = _config("alarm_rollback")

    traffic: Literal["canary", "linear", "all_at_once"] = "canary"
    percent: Annotated[int, _in_range(1, 99, "%")] = 10
    interval_minutes: Annotated[int, _at_least(1, "minutes")] = 5


# --- jobs and batches (event-driven inference) ---------------------------------------


class AsyncConfig(BaseModel):
    """Jobs through a queue: an SQS queue with a dead-letter queue, polled by the model's
    function through an event source mapping. The fields are the mapping's and the
    redrive policy's; their ranges are AWS's."""

    model_config = _config("async")

    # SQS allows up to 10,000 messages a batch from a standard queue.
    batch_size: Annotated[int, _in_range(1, 10000, "messages")] = 10
    max_batching_window_s: Annotated[int, _in_range(0, 300, "s")] = 0
    # Receives before SQS moves a message to the dead-letter queue (maxReceiveCount).
    max_receives: Annotated[int, _in_range(1, 1000)] = 3
    result_retention_days: Annotated[int, _in_range(1, 3650, "days")] = 7
    # The mapping's ScalingConfig.MaximumConcurrency; None: Lambda scales the pollers alone.
    max_concurrency: Annotated[int, _in_range(2, 1000)] | None = None

    @model_validator(mode="after")
    def _window_for_large_batches(self) -> AsyncConfig:
        if self.batch_size > 10 and self.max_batching_window_s < 1:
            raise _fail(
                f"async.batch_size {self.batch_size} needs async.max_batching_window_s ≥ 1 s: "
                "AWS gathers SQS batches of more than 10 messages over a batching window"
            )
        return self

    def visibility_timeout_s(self, function_timeout_s: int) -> int:
        # AWS (Lambda's SQS guide): at least six times the function timeout plus
        # MaximumBatchingWindowInSeconds, so that a batch whose invocation is throttled and
        # retried stays invisible. At most 6 * 900 + 300 s: inside SQS's 43,200 s.
        return 6 * function_timeout_s + self.max_batching_window_s


class BatchConfig(BaseModel):
    """Batches in the data bucket: a JSONL file under `<prefix>/<model>/in/` becomes
    `<prefix>/<model>/out/<file>`; chunks of a large file go through the model's queue."""

    model_config = _config("batch")

    prefix: Annotated[str, AfterValidator(_matches(r"^[a-z0-9-]+$", "batch prefix"))] = "batches"
    chunk_lines: Annotated[int, _in_range(1, 100000, "lines")] = 1000

    @model_validator(mode="after")
    def _apart_from_jobs(self) -> BatchConfig:
        if self.prefix == "jobs":
            raise _fail("batch.prefix 'jobs' is where jobs are kept; choose another prefix")
        return self


# --- alarms and the dashboard ---------------------------------------------------------

# The SNS protocols an alarm subscription may use, and what each endpoint must look like.
SUBSCRIPTION_ENDPOINTS = {
    "email": (r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "email address"),
    "https": (r"^https://[^/\s]+(/\S*)?$", "https URL"),
    "sqs": (r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}$", "SQS queue ARN"),
    "lambda": (
        r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_-]+)?$",
        "Lambda function ARN",
    ),
    "sms": (r"^\+[1-9]\d{6,14}$", "E.164 phone number"),
}
# CloudWatch's alarm periods (s): 10 and 30 are high-resolution periods, which only
# high-resolution metrics fill; the stack's metrics are standard resolution.
ALARM_PERIODS_S = (60, 300, 900, 3600)


class AlarmSubscription(BaseModel):
    """Who hears of the stack's alarms: one subscription to its alarm topic. An email or
    https endpoint must confirm the subscription before SNS delivers to it; an SQS queue's
    or Lambda function's own policy must let SNS deliver to it."""

    model_config = _config("monitoring.subscriptions[]")

    protocol: Literal["email", "https", "sqs", "lambda", "sms"]
    endpoint: str

    @model_validator(mode="after")
    def _endpoint_fits_protocol(self) -> AlarmSubscription:
        pattern, what = SUBSCRIPTION_ENDPOINTS[self.protocol]
        if not re.fullmatch(pattern, self.endpoint):
            raise _fail(
                f"monitoring.subscriptions[].endpoint {self.endpoint!r} is not a valid {what} "
                f"for protocol {self.protocol!r}"
            )
        return self


class MonitoringConfig(BaseModel):
    """The alarms of every model's function (5xx rate, p99 latency against `lambda.p99_ms`,
    throttles, dead-letter queue depth, provisioned-concurrency spillover), the topic they
    notify and the stack's dashboard."""

    model_config = _config("monitoring")

    # The 5xx alarm: the percentage of a period's requests answered 5xx.
    error_rate_percent: Annotated[float, _in_range(0.1, 100, "%")] = 5.0
    period_s: Annotated[int, _one_of(ALARM_PERIODS_S, "s")] = 60
    # Consecutive breaching periods before an alarm fires.
    evaluation_periods: Annotated[int, _in_range(1, 1440)] = 3
    subscriptions: list[AlarmSubscription] = []

    @model_validator(mode="after")
    def _consistent(self) -> MonitoringConfig:
        endpoints = [(s.protocol, s.endpoint) for s in self.subscriptions]
        repeated = sorted({f"{p} {e}" for p, e in endpoints if endpoints.count((p, e)) > 1})
        if repeated:
            raise _fail(
                f"monitoring.subscriptions: duplicate subscription(s) {', '.join(repeated)}"
            )
        # CloudWatch: an alarm's evaluation range (periods x period) is at most one day
        # for periods under an hour, seven days for periods of an hour or more.
        limit = 7 * 86400 if self.period_s >= 3600 else 86400
        if self.period_s * self.evaluation_periods > limit:
            raise _fail(
                f"monitoring: evaluation_periods {self.evaluation_periods} x period_s "
                f"{self.period_s} s exceeds CloudWatch's evaluation range of {limit} s; "
                f"allowed ≤ {limit // self.period_s} periods"
            )
        return self


# --- GPU serving on Kubernetes -------------------------------------------------------


class Toleration(BaseModel):
    model_config = _config("gpu.tolerations[]")

    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class GpuConfig(BaseModel):
    model_config = _config("gpu")

    # The container built by the GPU issue's Dockerfile; pinned by tag or digest.
    image: str
    gpus_per_replica: Annotated[int, _in_range(1, 8)] = 1
    # Empty by default: the `nvidia.com/gpu` request alone places pods on nodes whose device
    # plugin advertises GPUs, which every EKS GPU node group does. Narrow it with a label
    # your nodes carry: `nvidia.com/gpu.present: "true"` (GPU Feature Discovery / the GPU
    # Operator), `eks.amazonaws.com/nodegroup: <name>` (an EKS managed node group) or
    # `karpenter.k8s.aws/instance-gpu-count: "1"` (Karpenter).
    node_selector: dict[str, str] = {}
    # Tolerated, not required: pods still schedule on GPU nodes without this taint.
    tolerations: list[Toleration] = [Toleration(key="nvidia.com/gpu", effect="NoSchedule")]
    min_replicas: Annotated[int, _in_range(1, 1000)] = 1
    max_replicas: Annotated[int, _in_range(1, 1000)] = 4
    # The per-pod gauge the HPA scales on (served on /metrics by the model server).
    scale_on: Literal["inflight_requests", "queue_depth"] = "inflight_requests"
    target_per_replica: Annotated[int, _in_range(1, 10000)] = 16
    # CPU utilization target; also what keeps scaling working without custom metrics.
    cpu_target_percent: Annotated[int, _in_range(1, 100, "%")] = 80
    # The model server's backend and precision (INFERSTACK_BACKEND / INFERSTACK_DTYPE).
    backend: Literal["onnxruntime", "torch"] = "onnxruntime"
    dtype: Literal["fp32", "fp16", "bf16"] = "fp32"
    max_batch_size: Annotated[int, _in_range(1, 4096)] = 32
    max_batch_delay_ms: Annotated[int, _in_range(0, 10000, "ms")] = 5
    cpu: str = "4"
    memory: str = "16Gi"
    # SIGTERM to SIGKILL; the server gets this minus the pre-stop pause to drain.
    termination_grace_s: Annotated[int, _in_range(15, 3600, "s")] = 60

    @model_validator(mode="after")
    def _check(self) -> GpuConfig:
        if self.min_replicas > self.max_replicas:
            raise _fail(
                f"gpu: min_replicas {self.min_replicas} is greater than max_replicas "
                f"{self.max_replicas}"
            )
        if self.dtype != "fp32" and self.backend != "torch":
            raise _fail(f"gpu.dtype {self.dtype!r} needs backend 'torch'; onnxruntime runs fp32")
        tag = self.image.rsplit("/", 1)[-1]
        if "@sha256:" not in self.image and (":" not in tag or tag.endswith(":latest")):
            raise _fail(
                f"gpu.image {self.image!r} must be pinned by a tag other than 'latest' "
                "or by digest, so a deploy is reproducible"
            )
        return self


class PodMonitorConfig(BaseModel):
    """A PodMonitor (monitoring.coreos.com/v1) for each GPU endpoint's pods: the Prometheus
    Operator (e.g. kube-prometheus-stack) discovers scrape targets through PodMonitor and
    ServiceMonitor objects, not through the pods' `prometheus.io/*` annotations."""

    model_config = _config("kubernetes.pod_monitor")

    # Labels the Prometheus resource's podMonitorSelector matches: kube-prometheus-stack
    # selects `release: <its Helm release name>` unless its values set
    # prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues to false.
    labels: dict[str, str] = {}


# AWS resource ids: a prefix, then 8 (older resources) or 17 hexadecimal digits.
_AWS_ID = r"^{prefix}-([0-9a-f]{{8}}|[0-9a-f]{{17}})$"
VpcId = Annotated[str, AfterValidator(_matches(_AWS_ID.format(prefix="vpc"), "VPC id"))]
SubnetId = Annotated[str, AfterValidator(_matches(_AWS_ID.format(prefix="subnet"), "subnet id"))]
SecurityGroupId = Annotated[
    str, AfterValidator(_matches(_AWS_ID.format(prefix="sg"), "security group id"))
]


class ClusterNetwork(BaseModel):
    """Where the cluster's pods are reachable, for the stack's API to route to its GPU-served
    models on AWS: an internal Network Load Balancer in `subnet_ids` of `vpc_id` (one per
    Availability Zone, reachable from the pods) sends to the pods' IPs, and
    `cluster_security_group_id` (the security group on the pods' network interfaces, EKS's
    cluster security group by default) gets one rule letting the load balancer in."""

    model_config = _config("kubernetes.network")

    vpc_id: VpcId
    subnet_ids: list[SubnetId] = Field(min_length=1)
    cluster_security_group_id: SecurityGroupId

    @model_validator(mode="after")
    def _subnets_once(self) -> ClusterNetwork:
        repeated = sorted({s for s in self.subnet_ids if self.subnet_ids.count(s) > 1})
        if repeated:
            raise _fail(
                f"kubernetes.network.subnet_ids: {', '.join(repeated)} listed more than once;"
                " allowed: each subnet once"
            )
        return self


class KubernetesConfig(BaseModel):
    model_config = _config("kubernetes")

    kubeconfig: str = "~/.kube/config"
    context: str | None = None
    # The cluster's IAM OIDC provider (EKS); when set, each GPU endpoint's pods get their
    # own IAM role (IRSA) that can read only their model's prefix.
    oidc_provider_arn: (
        Annotated[
            str,
            AfterValidator(
                _matches(r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/.+$", "IAM OIDC provider ARN")
            ),
        ]
        | None
    ) = None
    # Declare a PodMonitor per GPU endpoint (the cluster runs the Prometheus Operator);
    # None: the pods' `prometheus.io/*` annotations are all a scraper gets.
    pod_monitor: PodMonitorConfig | None = None
    # Required on an AWS target with a GPU-served model (gpu without lambda_): how the
    # stack's API reaches the pods. Not used on a LocalStack target.
    network: ClusterNetwork | None = None


# --- models and the API --------------------------------------------------------------


class ModelConfig(BaseModel):
    model_config = _config("models[]")

    # The name in /v2/models/{name}. A Lambda model's must equal its artifact's manifest
    # name; a GPU-served model may differ (the server serves the artifact under it).
    name: ModelName
    # The artifact directory `{model.onnx, manifest.json}`, relative to the project root;
    # defaults to where `inferstack build` writes it.
    artifact: str | None = None
    # "layer": the model ships as a Lambda layer under /opt/models/<name> (MODEL_DIR);
    # "s3": the function downloads it from the artifact bucket at cold start (MODEL_URI).
    # None: planned when it is packaged: a layer when it fits Lambda's 250 MB with the
    # code and runtime layer, else S3.
    delivery: Literal["layer", "s3"] | None = None
    # Written `lambda_` in Python; `lambda` in dicts, JSON and error paths.
    lambda_: LambdaConfig | None = Field(
        default=None,
        validation_alias=AliasChoices("lambda", "lambda_"),
        serialization_alias="lambda",
    )
    gpu: GpuConfig | None = None
    # Jobs over HTTP and through the model's queue; written `async_` in Python, like lambda_.
    async_: AsyncConfig | None = Field(
        default=None,
        validation_alias=AliasChoices("async", "async_"),
        serialization_alias="async",
    )
    # Batches of JSONL files in the data bucket (their chunks go through the async queue).
    batch: BatchConfig | None = None
    # Weighted routing on the `live` alias between a published version and this deploy's.
    canary: CanaryConfig | None = None
    # Promotions through CodeDeploy, rolled back by the model's alarms (AWS stacks only).
    alarm_rollback: AlarmRollbackConfig | None = None

    @model_validator(mode="after")
    def _served_somewhere(self) -> ModelConfig:
        if self.lambda_ is None and self.gpu is None:
            raise _fail(
                f"model {self.name!r} has neither lambda_ nor gpu serving; declare at least one"
            )
        if self.lambda_ is not None and self.gpu is not None:
            raise _fail(
                f"models[{self.name}]: declare lambda_ or gpu, not both: /v2/models/{self.name}"
                " goes to one backend; serve the other under another name, e.g. ModelConfig("
                f"name='{self.name}-gpu', artifact='build/models/{self.name}', gpu=...)"
            )
        for section, value in (
            ("async", self.async_),
            ("batch", self.batch),
            ("canary", self.canary),
            ("alarm_rollback", self.alarm_rollback),
        ):
            if value is not None and self.lambda_ is None:
                raise _fail(
                    f"models[{self.name}].{section} needs lambda_ serving: jobs, batches and"
                    " canaries run on the model's Lambda function"
                )
        if self.canary is not None and self.alarm_rollback is not None:
            raise _fail(
                f"models[{self.name}]: canary and alarm_rollback both set; allowed one: with"
                " alarm_rollback, CodeDeploy sets the alias's weights (alarm_rollback.percent)"
            )
        if self.batch is not None and self.async_ is None:
            raise _fail(
                f"models[{self.name}].batch needs models[{self.name}].async: a batch's chunks "
                "go through the model's job queue"
            )
        reserved = self.lambda_.reserved_concurrency if self.lambda_ is not None else None
        pollers = self.async_.max_concurrency if self.async_ is not None else None
        if reserved is not None and pollers is not None and pollers > reserved:
            # AWS: a maximum concurrency over the reserved concurrency only gets throttled.
            raise _fail(
                f"models[{self.name}].async.max_concurrency {pollers} exceeds "
                f"lambda.reserved_concurrency {reserved}; allowed ≤ {reserved}"
            )
        return self

    @property
    def artifact_dir(self) -> str:
        return self.artifact or f"build/models/{self.name}"

    @property
    def jobs_prefix(self) -> str:
        """Where the model's jobs live in the stack's data bucket."""
        return f"jobs/{self.name}"

    @property
    def batch_prefix(self) -> str | None:
        """Where the model's batches live in the data bucket (in/, out/, work/ below it)."""
        return None if self.batch is None else f"{self.batch.prefix}/{self.name}"


class Quota(BaseModel):
    model_config = _config("api.keys.quota")

    limit: Annotated[int, _at_least(1, "requests")]
    period: Literal["DAY", "WEEK", "MONTH"]


class ApiKeys(BaseModel):
    """API keys are required on every route; each client gets its own key in one usage plan."""

    model_config = _config("api.keys")

    clients: list[
        Annotated[str, AfterValidator(_matches(r"^[a-z][a-z0-9-]{0,31}$", "client name"))]
    ] = Field(min_length=1)
    quota: Quota | None = None


class Cors(BaseModel):
    model_config = _config("api.cors")

    # One origin (or "*"): API Gateway answers preflights with a fixed header value.
    allow_origin: str
    allow_headers: list[str] = ["content-type", "x-api-key"]
    max_age_s: Annotated[int, _in_range(0, 86400, "s")] = 600


class ApiConfig(BaseModel):
    model_config = _config("api")

    stage: Annotated[str, AfterValidator(_matches(r"^[A-Za-z0-9_]{1,64}$", "stage name"))] = "v1"
    throttle_rate_rps: Annotated[float, _in_range(1, 10000, "requests/s")] = 100.0
    throttle_burst: Annotated[int, _in_range(1, 5000, "requests")] = 200
    keys: ApiKeys | None = None
    cors: Cors | None = None
    # Raising this over 29 s needs a service-quota increase on the AWS account.
    integration_timeout_s: Annotated[int, _in_range(1, 300, "s")] = API_GATEWAY_TIMEOUT_S
    # The model whose function answers the server-level routes (/v2, /v2/health/*);
    # None means the first model served by Lambda.
    default_model: ModelName | None = None
    access_logs: bool = True
    # API Gateway writes logs with one account-wide (per region) IAM role, a setting that
    # deleting resets: exactly one stack per account and region may own it (two stack
    # files claiming it are refused). The other stacks' access logs need the owner
    # deployed first.
    manage_account_logging_role: bool = True


class StackConfig(BaseModel):
    model_config = _config("stack")

    target: Annotated[LocalStackTarget | AwsTarget, Field(discriminator="kind")]
    models: list[ModelConfig] = Field(min_length=1)
    artifact_store: ArtifactStoreConfig = ArtifactStoreConfig()
    api: ApiConfig = ApiConfig()
    kubernetes: KubernetesConfig | None = None
    log_retention_days: Annotated[int, _one_of(LOG_RETENTION_DAYS, "days")] = 14
    monitoring: MonitoringConfig = MonitoringConfig()
    # Added to every taggable AWS resource (through the provider's default tags).
    tags: dict[str, str] = {}

    @model_validator(mode="after")
    def _consistent(self) -> StackConfig:
        names = [model.name for model in self.models]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise _fail(f"models: duplicate model name(s) {', '.join(duplicates)}")
        served = [model.name for model in self.lambda_models]
        default = self.api.default_model
        if default is not None and default not in served:
            raise _fail(
                f"api.default_model {default!r} is not a model served by Lambda; "
                f"allowed: {', '.join(served) or '(none)'}"
            )
        limit = self.api.integration_timeout_s
        for model, function in self.lambda_functions:
            if function.timeout_s > limit:
                raise _fail(
                    f"models[{model.name}].lambda.timeout_s: {function.timeout_s} s exceeds "
                    f"API Gateway's integration timeout of {limit} s; allowed ≤ {limit} s "
                    "(raise api.integration_timeout_s after an AWS quota increase)"
                )
        watched = [model.name for model in self.models if model.alarm_rollback is not None]
        if watched and self.target.kind != "aws":
            raise _fail(
                f"models[{watched[0]}].alarm_rollback needs CodeDeploy, which LocalStack's"
                " community edition does not emulate; allowed on target kind 'aws' only"
            )
        gpu = [model.name for model in self.models if model.gpu is not None]
        if gpu and self.kubernetes is None:
            raise _fail(
                f"models[{gpu[0]}].gpu needs the stack's kubernetes settings (kubeconfig, context)"
            )
        gpu_served = [m.name for m in self.models if m.gpu is not None and m.lambda_ is None]
        if (
            gpu_served
            and self.target.kind == "aws"
            and self.kubernetes is not None
            and self.kubernetes.network is None
        ):
            raise _fail(
                f"kubernetes.network is required: the stack's API routes models[{gpu_served[0]}] to"
                " its GPU endpoint through an internal load balancer in the cluster's VPC; set"
                " kubernetes.network=ClusterNetwork(vpc_id='vpc-...', subnet_ids=['subnet-...'],"
                " cluster_security_group_id='sg-...')"
            )
        return self

    @property
    def manages_account_logging_role(self) -> bool:
        """Whether this stack declares API Gateway's account setting (its CloudWatch role)."""
        return bool(
            self.lambda_models and self.api.access_logs and self.api.manage_account_logging_role
        )

    @property
    def lambda_models(self) -> list[ModelConfig]:
        return [model for model in self.models if model.lambda_ is not None]

    @property
    def lambda_functions(self) -> list[tuple[ModelConfig, LambdaConfig]]:
        """Each model served by Lambda, with its function's settings."""
        return [(model, model.lambda_) for model in self.models if model.lambda_ is not None]

    @property
    def async_models(self) -> list[ModelConfig]:
        """The models that take jobs (and maybe batches): each has a queue."""
        return [model for model in self.models if model.async_ is not None]

    @property
    def gpu_models(self) -> list[ModelConfig]:
        return [model for model in self.models if model.gpu is not None]

    @property
    def default_model(self) -> str | None:
        served = self.lambda_models
        return self.api.default_model or (served[0].name if served else None)
