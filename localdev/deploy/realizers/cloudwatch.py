"""CloudWatch: the functions' metric alarms and the stack's dashboard.

An alarm is hand-written: as the provider does (metric_alarm.go), a create refuses an
alarm of that name that already exists (PutMetricAlarm would silently take it over), and
tags change by their own calls (PutMetricAlarm ignores Tags on an existing alarm). A
dashboard is one put, one get and one delete: a `Description`."""

from __future__ import annotations

from typing import Any

from localdev.deploy.realizers.base import (
    Context,
    Described,
    Description,
    Inputs,
    Realized,
    Realizer,
    gone_ok,
    optional,
)
from localdev.deploy.state import ResourceState
from localdev.errors import DeployError

# What CloudWatch answers for a missing alarm or dashboard (DashboardNotFoundError's code).
MISSING = frozenset({"ResourceNotFound"})


def _dimensions(values: Any) -> list[dict[str, str]] | None:
    if not values:
        return None
    return [{"Name": str(name), "Value": str(value)} for name, value in sorted(values.items())]


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


def _metric_query(query: dict[str, Any]) -> dict[str, Any]:
    """A `metricQueries` item (the provider's metric_query) as a MetricDataQuery."""
    stat = None
    metric = query.get("metric")
    if metric:
        stat = optional(
            Metric=optional(
                Namespace=metric.get("namespace") or None,
                MetricName=metric["metricName"],
                Dimensions=_dimensions(metric.get("dimensions")),
            ),
            Period=_integer(metric.get("period")),
            Stat=metric["stat"],
            Unit=metric.get("unit") or None,
        )
    return optional(
        Id=query["id"],
        MetricStat=stat,
        Expression=query.get("expression") or None,
        Label=query.get("label") or None,
        ReturnData=bool(query.get("returnData", False)),
        Period=_integer(query.get("period")) or None,
        AccountId=query.get("accountId") or None,
    )


class MetricAlarm(Realizer):
    type = "aws:cloudwatch/metricAlarm:MetricAlarm"
    supported = frozenset(
        {
            "name",
            "alarmDescription",
            "actionsEnabled",
            "alarmActions",
            "okActions",
            "insufficientDataActions",
            "comparisonOperator",
            "datapointsToAlarm",
            "dimensions",
            "evaluateLowSampleCountPercentiles",
            "evaluationPeriods",
            "extendedStatistic",
            "metricName",
            "metricQueries",
            "namespace",
            "period",
            "statistic",
            "threshold",
            "thresholdMetricId",
            "treatMissingData",
            "unit",
        }
    )
    # metric_alarm.go: alarm_name (Pulumi's `name`); everything else is a new PutMetricAlarm.
    replace_on = frozenset({"name"})
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        name = inputs.text("name")
        if self._describe(ctx, name) is not None:
            raise DeployError(
                f"metric alarm {name} already exists; the stack does not own it: delete it "
                f"(`aws cloudwatch delete-alarms --alarm-names {name}`) or import it with the "
                "Pulumi CLI"
            )
        tags = [{"Key": k, "Value": v} for k, v in sorted(ctx.tags.items())]
        ctx.clients("cloudwatch").put_metric_alarm(**self._alarm(inputs), Tags=tags)
        return self._realized(ctx, name)

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        cloudwatch = ctx.clients("cloudwatch")
        if changed - {"tagsAll"}:
            cloudwatch.put_metric_alarm(**self._alarm(inputs))
        if "tagsAll" in changed:
            arn = str(old.outputs["arn"])
            stale = set(old.inputs.get("tagsAll", {})) - set(ctx.tags)
            if stale:
                cloudwatch.untag_resource(ResourceARN=arn, TagKeys=sorted(stale))
            if ctx.tags:
                tags = [{"Key": k, "Value": v} for k, v in sorted(ctx.tags.items())]
                cloudwatch.tag_resource(ResourceARN=arn, Tags=tags)
        return self._realized(ctx, old.id)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        cloudwatch = ctx.clients("cloudwatch")
        gone_ok(lambda: cloudwatch.delete_alarms(AlarmNames=[old.id]), MISSING)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return self._describe(ctx, old.id) is not None

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        name = inputs.text("name")
        return {name} if self._describe(ctx, name) is not None else set()

    def _describe(self, ctx: Context, name: str) -> dict[str, Any] | None:
        alarms = ctx.clients("cloudwatch").describe_alarms(
            AlarmNames=[name], AlarmTypes=["MetricAlarm"]
        )["MetricAlarms"]
        return dict(alarms[0]) if alarms else None

    def _alarm(self, inputs: Inputs) -> dict[str, Any]:
        """PutMetricAlarm's arguments, with the provider's defaults (actions enabled,
        missing data treated as missing, threshold 0 unless a threshold metric is named)."""
        threshold_metric = inputs.opt_text("thresholdMetricId")
        return optional(
            AlarmName=inputs.text("name"),
            AlarmDescription=inputs.opt_text("alarmDescription"),
            ActionsEnabled=inputs.flag("actionsEnabled", default=True),
            AlarmActions=inputs.items("alarmActions") or None,
            OKActions=inputs.items("okActions") or None,
            InsufficientDataActions=inputs.items("insufficientDataActions") or None,
            ComparisonOperator=inputs.text("comparisonOperator"),
            DatapointsToAlarm=inputs.opt_integer("datapointsToAlarm"),
            Dimensions=_dimensions(inputs.mapping("dimensions")),
            EvaluateLowSampleCountPercentile=inputs.opt_text("evaluateLowSampleCountPercentiles"),
            EvaluationPeriods=inputs.integer("evaluationPeriods"),
            ExtendedStatistic=inputs.opt_text("extendedStatistic"),
            MetricName=inputs.opt_text("metricName"),
            Metrics=[_metric_query(query) for query in inputs.items("metricQueries")] or None,
            Namespace=inputs.opt_text("namespace"),
            Period=inputs.opt_integer("period"),
            Statistic=inputs.opt_text("statistic"),
            Threshold=None if threshold_metric else float(inputs.raw("threshold") or 0),
            ThresholdMetricId=threshold_metric,
            TreatMissingData=inputs.opt_text("treatMissingData") or "missing",
            Unit=inputs.opt_text("unit"),
        )

    def _realized(self, ctx: Context, name: str) -> Realized:
        alarm = self._describe(ctx, name)
        if alarm is None:
            raise DeployError(f"metric alarm {name} is not there after PutMetricAlarm")
        return Realized(name, {"name": name, "arn": alarm["AlarmArn"], "tagsAll": ctx.tags})


DASHBOARD = Description(
    type="aws:cloudwatch/dashboard:Dashboard",
    service="cloudwatch",
    supported=frozenset({"dashboardName", "dashboardBody"}),
    create="put_dashboard",
    create_args=lambda _ctx, inputs: {
        "DashboardName": inputs.text("dashboardName"),
        "DashboardBody": inputs.text("dashboardBody"),
    },
    # Listed, not got: a missing dashboard's GetDashboard error is ResourceNotFound on AWS
    # but InvalidParameterValue on LocalStack, a code that says nothing of existence.
    get="list_dashboards",
    delete="delete_dashboards",
    address=lambda old: {"DashboardNamePrefix": old.id},
    delete_args=lambda old: {"DashboardNames": [old.id]},
    physical_id=lambda inputs, _response: inputs.text("dashboardName"),
    missing=MISSING,
    # dashboard.go: dashboard_name; a new body is a new PutDashboard.
    replace_on=frozenset({"dashboardName"}),
    update="put_dashboard",
    is_present=lambda live, old: any(
        entry["DashboardName"] == old.id for entry in live["DashboardEntries"]
    ),
)


class Dashboard(Described):
    """The dashboard `Description`, with its ARN: PutDashboard answers none, the provider
    reads it back (dashboard.go)."""

    def __init__(self) -> None:
        super().__init__(DASHBOARD)

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        return self._with_arn(ctx, super().create(ctx, inputs))

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        return self._with_arn(ctx, super().update(ctx, inputs, old, changed))

    def _with_arn(self, ctx: Context, realized: Realized) -> Realized:
        dashboard = ctx.clients("cloudwatch").get_dashboard(DashboardName=realized.id)
        return Realized(realized.id, {"dashboardArn": dashboard["DashboardArn"]})


REALIZERS: list[Realizer] = [MetricAlarm(), Dashboard()]
