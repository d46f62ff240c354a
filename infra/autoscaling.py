"""Application Auto Scaling of a Lambda alias' provisioned concurrency."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from stacks.schema import ProvisionedConcurrency, ScheduledScaling

DIMENSION = "lambda:function:ProvisionedConcurrency"


@dataclass
class AutoscalingArgs:
    function_name: pulumi.Input[str]
    alias_name: pulumi.Input[str]
    config: ProvisionedConcurrency
    # The provisioned-concurrency config the target scales; it must exist first.
    provisioned: pulumi.Resource


class Autoscaling(pulumi.ComponentResource):
    target: aws.appautoscaling.Target

    def __init__(
        self, name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("inferstack:index:Autoscaling", name, None, opts)
        self._name = name
        config = args.config
        resource_id = pulumi.Output.concat("function:", args.function_name, ":", args.alias_name)
        # Scheduled actions rewrite the target's min/max at run time: a deploy (or a
        # `pulumi up --refresh` inside a scheduled window) must not reset them. The
        # declared bounds are then only where the target starts; the schedules own them.
        ignore = ["min_capacity", "max_capacity"] if config.schedules else None
        self.target = aws.appautoscaling.Target(
            f"{name}-target",
            service_namespace="lambda",
            scalable_dimension=DIMENSION,
            resource_id=resource_id,
            min_capacity=config.min,
            max_capacity=config.max,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[args.provisioned], ignore_changes=ignore
            ),
        )
        self._create_target_tracking(config)
        for schedule in config.schedules:
            self._create_schedule(schedule)
        self.register_outputs({"resource_id": self.target.resource_id})

    def _create_target_tracking(self, config: ProvisionedConcurrency) -> aws.appautoscaling.Policy:
        metric = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(  # noqa: E501
            predefined_metric_type="LambdaProvisionedConcurrencyUtilization"
        )
        return aws.appautoscaling.Policy(
            f"{self._name}-utilization",
            policy_type="TargetTrackingScaling",
            service_namespace=self.target.service_namespace,
            scalable_dimension=self.target.scalable_dimension,
            resource_id=self.target.resource_id,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=config.target_utilization,
                predefined_metric_specification=metric,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_schedule(self, schedule: ScheduledScaling) -> aws.appautoscaling.ScheduledAction:
        return aws.appautoscaling.ScheduledAction(
            f"{self._name}-{schedule.name}",
            name=f"{self._name}-{schedule.name}",
            service_namespace=self.target.service_namespace,
            scalable_dimension=self.target.scalable_dimension,
            resource_id=self.target.resource_id,
            schedule=schedule.schedule,
            timezone=schedule.timezone,
            scalable_target_action=aws.appautoscaling.ScheduledActionScalableTargetActionArgs(
                min_capacity=schedule.min, max_capacity=schedule.max
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
