"""The realizers of the monitoring resources (metric alarms, the dashboard, the alarm topic,
its policy and subscriptions) against real botocore clients with stubbed answers
(botocore's Stubber: no network): the calls each makes, with which arguments, and what
counts as missing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.stub import Stubber

from localdev.deploy.aws import Clients
from localdev.deploy.realizers import REALIZERS
from localdev.deploy.realizers.base import Context, Inputs
from localdev.deploy.realizers.sns import default_topic_policy
from localdev.errors import DeployError
from tests.support.boto import resource_state, stub_clients

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
POLICY = "aws:sns/topicPolicy:TopicPolicy"

ACCOUNT = "000000000000"
ALARM_ARN = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:f-5xx-rate"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:s-alarms"
SUBSCRIPTION_ARN = f"{TOPIC_ARN}:6e0c1a3b-5c1d-4b53-9f2e-8a1f0d4c7b21"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:inbox"
TAGS = {"inferstack:stack": "t"}

# The 5xx rate as Pulumi hands it over: camelCase, numbers as floats.
RATE_INPUTS = {
    "name": "f-5xx-rate",
    "alarmDescription": "5xx",
    "comparisonOperator": "GreaterThanThreshold",
    "threshold": 5.0,
    "evaluationPeriods": 3.0,
    "treatMissingData": "notBreaching",
    "alarmActions": [TOPIC_ARN],
    "okActions": [TOPIC_ARN],
    "metricQueries": [
        {
            "id": "errors",
            "metric": {
                "namespace": "inferstack",
                "metricName": "status_5xx",
                "dimensions": {"model": "m"},
                "period": 60.0,
                "stat": "Sum",
            },
            "returnData": False,
        },
        {"id": "rate", "expression": "100 * FILL(errors, 0)", "label": "r", "returnData": True},
    ],
}
# What PutMetricAlarm gets for it.
RATE_ALARM = {
    "AlarmName": "f-5xx-rate",
    "AlarmDescription": "5xx",
    "ActionsEnabled": True,
    "AlarmActions": [TOPIC_ARN],
    "OKActions": [TOPIC_ARN],
    "ComparisonOperator": "GreaterThanThreshold",
    "EvaluationPeriods": 3,
    "Metrics": [
        {
            "Id": "errors",
            "MetricStat": {
                "Metric": {
                    "Namespace": "inferstack",
                    "MetricName": "status_5xx",
                    "Dimensions": [{"Name": "model", "Value": "m"}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": False,
        },
        {"Id": "rate", "Expression": "100 * FILL(errors, 0)", "Label": "r", "ReturnData": True},
    ],
    "Threshold": 5.0,
    "TreatMissingData": "notBreaching",
}


@pytest.fixture
def clients() -> Clients:
    return stub_clients("cloudwatch", "sns", "sts")


@pytest.fixture
def stubs(clients: Clients) -> Iterator[dict[str, Stubber]]:
    """A Stubber on each service's client; every stubbed answer must be used."""
    stubbers = {name: Stubber(clients(name)) for name in ("cloudwatch", "sns", "sts")}
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def _described(cloudwatch: Stubber, name: str, arn: str | None) -> None:
    alarms = [] if arn is None else [{"AlarmName": name, "AlarmArn": arn}]
    cloudwatch.add_response(
        "describe_alarms",
        {"MetricAlarms": alarms},
        {"AlarmNames": [name], "AlarmTypes": ["MetricAlarm"]},
    )


def _account(sts: Stubber) -> None:
    sts.add_response(
        "get_caller_identity",
        {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root", "UserId": "u"},
    )


# --- metric alarms ------------------------------------------------------------------------


def test_a_metric_math_alarm_is_put_with_its_queries_and_tags(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    cloudwatch = stubs["cloudwatch"]
    _described(cloudwatch, "f-5xx-rate", None)
    cloudwatch.add_response(
        "put_metric_alarm",
        {},
        {**RATE_ALARM, "Tags": [{"Key": "inferstack:stack", "Value": "t"}]},
    )
    _described(cloudwatch, "f-5xx-rate", ALARM_ARN)
    created = REALIZERS[ALARM].create(Context(clients, "a", TAGS), Inputs(RATE_INPUTS))
    # As pulumi-aws answers: the id is the alarm's name.
    assert created.id == "f-5xx-rate"
    assert created.outputs == {"name": "f-5xx-rate", "arn": ALARM_ARN, "tagsAll": TAGS}


def test_a_plain_alarm_gets_the_providers_defaults(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    inputs = {
        "name": "f-throttles",
        "comparisonOperator": "GreaterThanThreshold",
        "evaluationPeriods": 1.0,
        "namespace": "AWS/Lambda",
        "metricName": "Throttles",
        "dimensions": {"Resource": "f:live", "FunctionName": "f"},
        "statistic": "Sum",
        "period": 60.0,
    }
    cloudwatch = stubs["cloudwatch"]
    _described(cloudwatch, "f-throttles", None)
    cloudwatch.add_response(
        "put_metric_alarm",
        {},
        {
            "AlarmName": "f-throttles",
            "ActionsEnabled": True,
            "ComparisonOperator": "GreaterThanThreshold",
            "EvaluationPeriods": 1,
            "Namespace": "AWS/Lambda",
            "MetricName": "Throttles",
            "Dimensions": [
                {"Name": "FunctionName", "Value": "f"},
                {"Name": "Resource", "Value": "f:live"},
            ],
            "Statistic": "Sum",
            "Period": 60,
            # metric_alarm.go: threshold 0 unless set, missing data "missing".
            "Threshold": 0.0,
            "TreatMissingData": "missing",
            "Tags": [],
        },
    )
    _described(cloudwatch, "f-throttles", ALARM_ARN)
    assert REALIZERS[ALARM].create(Context(clients, "a", {}), Inputs(inputs)).id == "f-throttles"


def test_an_alarm_the_stack_did_not_create_is_not_taken_over(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    _described(stubs["cloudwatch"], "f-5xx-rate", ALARM_ARN)
    with pytest.raises(DeployError, match="f-5xx-rate already exists"):
        REALIZERS[ALARM].create(Context(clients, "a", TAGS), Inputs(RATE_INPUTS))


def test_an_alarm_change_is_a_new_put_and_tags_change_by_their_own_calls(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    old_inputs = {**RATE_INPUTS, "threshold": 1.0, "tagsAll": {"a": "1", "gone": "x"}}
    old = resource_state(ALARM, "f-5xx-rate", old_inputs, {"arn": ALARM_ARN})
    cloudwatch = stubs["cloudwatch"]
    # PutMetricAlarm ignores Tags on an existing alarm: none are sent.
    cloudwatch.add_response("put_metric_alarm", {}, RATE_ALARM)
    cloudwatch.add_response("untag_resource", {}, {"ResourceARN": ALARM_ARN, "TagKeys": ["gone"]})
    cloudwatch.add_response(
        "tag_resource", {}, {"ResourceARN": ALARM_ARN, "Tags": [{"Key": "a", "Value": "2"}]}
    )
    _described(cloudwatch, "f-5xx-rate", ALARM_ARN)
    ctx = Context(clients, "a", {"a": "2"})
    updated = REALIZERS[ALARM].update(ctx, Inputs(RATE_INPUTS), old, {"threshold", "tagsAll"})
    assert updated.outputs["arn"] == ALARM_ARN


def test_a_tags_only_change_puts_no_alarm(clients: Clients, stubs: dict[str, Stubber]) -> None:
    old = resource_state(ALARM, "f-5xx-rate", {**RATE_INPUTS, "tagsAll": {}}, {"arn": ALARM_ARN})
    cloudwatch = stubs["cloudwatch"]
    cloudwatch.add_response(
        "tag_resource", {}, {"ResourceARN": ALARM_ARN, "Tags": [{"Key": "a", "Value": "1"}]}
    )
    _described(cloudwatch, "f-5xx-rate", ALARM_ARN)
    REALIZERS[ALARM].update(
        Context(clients, "a", {"a": "1"}), Inputs(RATE_INPUTS), old, {"tagsAll"}
    )


def test_a_missing_alarm_is_gone_and_found_by_name(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    cloudwatch = stubs["cloudwatch"]
    old = resource_state(ALARM, "f-5xx-rate", RATE_INPUTS, {"arn": ALARM_ARN})
    cloudwatch.add_client_error(
        "delete_alarms", "ResourceNotFound", expected_params={"AlarmNames": ["f-5xx-rate"]}
    )
    _described(cloudwatch, "f-5xx-rate", None)
    _described(cloudwatch, "f-5xx-rate", ALARM_ARN)
    realizer, ctx = REALIZERS[ALARM], Context(clients, "a", {})
    realizer.delete(ctx, old)
    assert not realizer.exists(ctx, old)
    assert realizer.find(ctx, Inputs(RATE_INPUTS)) == {"f-5xx-rate"}


# --- the dashboard ------------------------------------------------------------------------


def test_a_dashboard_is_put_its_arn_read_back_and_listed_to_exist(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    body = json.dumps({"widgets": []})
    arn = f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/s"
    cloudwatch = stubs["cloudwatch"]
    cloudwatch.add_response(
        "put_dashboard",
        {"DashboardValidationMessages": []},
        {"DashboardName": "s", "DashboardBody": body},
    )
    cloudwatch.add_response(
        "get_dashboard",
        {"DashboardArn": arn, "DashboardBody": body, "DashboardName": "s"},
        {"DashboardName": "s"},
    )
    # A prefix lists "s-other" too: only the exact name counts.
    cloudwatch.add_response(
        "list_dashboards",
        {"DashboardEntries": [{"DashboardName": "s-other"}]},
        {"DashboardNamePrefix": "s"},
    )
    cloudwatch.add_response("delete_dashboards", {}, {"DashboardNames": ["s"]})
    realizer, ctx = REALIZERS[DASHBOARD], Context(clients, "d", {})
    inputs = {"dashboardName": "s", "dashboardBody": body}
    created = realizer.create(ctx, Inputs(inputs))
    assert (created.id, created.outputs) == ("s", {"dashboardArn": arn})
    old = resource_state(DASHBOARD, "s", inputs, created.outputs)
    assert not realizer.exists(ctx, old)
    realizer.delete(ctx, old)
    # A put overwrites: an interrupted create leaves nothing to find.
    assert realizer.find(ctx, Inputs(inputs)) == set()


# --- the topic, its policy and its subscriptions ------------------------------------------


def test_a_topic_is_created_with_its_attributes_and_tags(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    stubs["sns"].add_response(
        "create_topic",
        {"TopicArn": TOPIC_ARN},
        {
            "Name": "s-alarms",
            "Attributes": {"DisplayName": "alarms"},
            "Tags": [{"Key": "inferstack:stack", "Value": "t"}],
        },
    )
    ctx = Context(clients, "t", TAGS)
    created = REALIZERS[TOPIC].create(ctx, Inputs({"name": "s-alarms", "displayName": "alarms"}))
    assert created.id == TOPIC_ARN
    assert created.outputs == {
        "arn": TOPIC_ARN,
        "name": "s-alarms",
        "owner": ACCOUNT,
        "tagsAll": TAGS,
    }


def test_a_topic_change_sets_its_attributes_and_tags(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    old_inputs = {
        "name": "s-alarms",
        "displayName": "old",
        "policy": "{}",
        "tagsAll": {"gone": "x"},
    }
    old = resource_state(TOPIC, TOPIC_ARN, old_inputs, {})
    sns = stubs["sns"]
    # A removed display name is cleared; a removed policy stays as SNS has it.
    sns.add_response(
        "set_topic_attributes",
        {},
        {"TopicArn": TOPIC_ARN, "AttributeName": "DisplayName", "AttributeValue": ""},
    )
    sns.add_response("untag_resource", {}, {"ResourceArn": TOPIC_ARN, "TagKeys": ["gone"]})
    REALIZERS[TOPIC].update(
        Context(clients, "t", {}),
        Inputs({"name": "s-alarms"}),
        old,
        {"displayName", "policy", "tagsAll"},
    )


def test_a_missing_topic_is_gone_and_found_by_its_arn(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    sns = stubs["sns"]
    old = resource_state(TOPIC, TOPIC_ARN, {"name": "s-alarms"}, {})
    sns.add_client_error("delete_topic", "NotFound", expected_params={"TopicArn": TOPIC_ARN})
    sns.add_client_error(
        "get_topic_attributes", "NotFound", expected_params={"TopicArn": TOPIC_ARN}
    )
    _account(stubs["sts"])
    sns.add_response("get_topic_attributes", {"Attributes": {}}, {"TopicArn": TOPIC_ARN})
    realizer, ctx = REALIZERS[TOPIC], Context(clients, "t", {})
    realizer.delete(ctx, old)
    assert not realizer.exists(ctx, old)
    assert realizer.find(ctx, Inputs({"name": "s-alarms"})) == {TOPIC_ARN}


def test_a_subscription_asks_for_its_arn_even_while_pending(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    sns = stubs["sns"]
    sns.add_response(
        "subscribe",
        {"SubscriptionArn": SUBSCRIPTION_ARN},
        {
            "TopicArn": TOPIC_ARN,
            "Protocol": "email",
            "Endpoint": "oncall@example.com",
            "Attributes": {},
            "ReturnSubscriptionArn": True,
        },
    )
    sns.add_response(
        "get_subscription_attributes",
        {"Attributes": {"Owner": ACCOUNT, "PendingConfirmation": "true"}},
        {"SubscriptionArn": SUBSCRIPTION_ARN},
    )
    inputs = {"topic": TOPIC_ARN, "protocol": "email", "endpoint": "oncall@example.com"}
    created = REALIZERS[SUBSCRIPTION].create(Context(clients, "s", {}), Inputs(inputs))
    assert created.id == SUBSCRIPTION_ARN
    assert created.outputs == {
        "arn": SUBSCRIPTION_ARN,
        "ownerId": ACCOUNT,
        "pendingConfirmation": True,
        "confirmationWasAuthenticated": False,
    }


def test_a_subscription_is_found_among_the_topics_by_protocol_and_endpoint(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    listed = [
        {"SubscriptionArn": SUBSCRIPTION_ARN, "Protocol": "sqs", "Endpoint": QUEUE_ARN},
        {"SubscriptionArn": f"{TOPIC_ARN}:other", "Protocol": "sqs", "Endpoint": "elsewhere"},
        # AWS lists one pending confirmation without an ARN.
        {"SubscriptionArn": "PendingConfirmation", "Protocol": "sqs", "Endpoint": QUEUE_ARN},
    ]
    stubs["sns"].add_response(
        "list_subscriptions_by_topic", {"Subscriptions": listed}, {"TopicArn": TOPIC_ARN}
    )
    inputs = {"topic": TOPIC_ARN, "protocol": "sqs", "endpoint": QUEUE_ARN}
    found = REALIZERS[SUBSCRIPTION].find(Context(clients, "s", {}), Inputs(inputs))
    assert found == {SUBSCRIPTION_ARN}


def test_a_subscription_is_unsubscribed_on_its_own_and_missing_is_gone(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    realizer = REALIZERS[SUBSCRIPTION]
    old = resource_state(SUBSCRIPTION, SUBSCRIPTION_ARN, {"topic": TOPIC_ARN}, {})
    # LocalStack keeps a topic's subscriptions when the topic is deleted.
    assert realizer.container(old) is None
    sns = stubs["sns"]
    sns.add_client_error(
        "unsubscribe", "NotFound", expected_params={"SubscriptionArn": SUBSCRIPTION_ARN}
    )
    sns.add_client_error(
        "get_subscription_attributes",
        "NotFound",
        expected_params={"SubscriptionArn": SUBSCRIPTION_ARN},
    )
    ctx = Context(clients, "s", {})
    realizer.delete(ctx, old)
    assert not realizer.exists(ctx, old)


def test_the_topic_policy_is_the_topics_policy_attribute(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": "a"}]})
    sns = stubs["sns"]
    sns.add_response(
        "set_topic_attributes",
        {},
        {"TopicArn": TOPIC_ARN, "AttributeName": "Policy", "AttributeValue": policy},
    )
    _account(stubs["sts"])
    realizer, ctx = REALIZERS[POLICY], Context(clients, "p", {})
    inputs = {"arn": TOPIC_ARN, "policy": policy}
    created = realizer.create(ctx, Inputs(inputs))
    assert (created.id, created.outputs) == (TOPIC_ARN, {"owner": ACCOUNT})
    old = resource_state(POLICY, TOPIC_ARN, inputs, created.outputs)
    # Every topic has a policy: only the declared one (compared as JSON) is present.
    sns.add_response(
        "get_topic_attributes",
        {"Attributes": {"Policy": json.dumps(json.loads(policy), indent=2)}},
        {"TopicArn": TOPIC_ARN},
    )
    sns.add_response(
        "get_topic_attributes",
        {"Attributes": {"Policy": default_topic_policy(TOPIC_ARN)}},
        {"TopicArn": TOPIC_ARN},
    )
    assert realizer.exists(ctx, old)
    assert not realizer.exists(ctx, old)
    # Deleted, it is SNS's default policy again (a topic cannot be without one).
    sns.add_response(
        "set_topic_attributes",
        {},
        {
            "TopicArn": TOPIC_ARN,
            "AttributeName": "Policy",
            "AttributeValue": default_topic_policy(TOPIC_ARN),
        },
    )
    realizer.delete(ctx, old)
    assert realizer.container(old) == REALIZERS[TOPIC].owns(
        resource_state(TOPIC, TOPIC_ARN, {}, {})
    )


def test_the_default_topic_policy_is_the_accounts_own() -> None:
    (statement,) = json.loads(default_topic_policy(TOPIC_ARN))["Statement"]
    assert statement["Resource"] == TOPIC_ARN
    assert statement["Condition"] == {"StringEquals": {"AWS:SourceOwner": ACCOUNT}}
    assert "SNS:Publish" in statement["Action"]
