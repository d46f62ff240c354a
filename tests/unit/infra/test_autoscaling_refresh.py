"""Where schedules own provisioned concurrency's bounds, a deploy never resets them.

A scheduled action rewrites the scalable target's min/max at run time (prod: 10-50 on
weekdays from 08:00). `pulumi up --refresh` inside that window reads 10/50 back and,
without `ignore_changes`, would write the declared 2/20 over them until the next
scheduled action. The options are read as the program registered them.
"""

from __future__ import annotations

from collections.abc import Callable

from infra.evaluate import Evaluation
from infra.stack_loader import load_stack
from stacks.schema import ModelConfig, StackConfig

TARGET = "aws:appautoscaling/target:Target"


def test_a_scheduled_target_ignores_changes_to_its_bounds(
    evaluations: dict[str, Evaluation],
) -> None:
    prod = evaluations["prod"]
    (target,) = prod.of_type(TARGET)
    assert prod.of_type("aws:appautoscaling/scheduledAction:ScheduledAction")
    assert set(target.options.ignore_changes) == {"minCapacity", "maxCapacity"}
    # Declared still: where the target starts when it is created.
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 20)
    # The provisioned amount moves under autoscaling too (as before).
    (provisioned,) = prod.of_type(
        "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
    )
    assert provisioned.options.ignore_changes == ("provisionedConcurrentExecutions",)


def test_without_schedules_the_stack_owns_the_bounds(
    run_program: Callable[[StackConfig, str], Evaluation],
) -> None:
    evaluation = run_program(_without_schedules(), "prod")
    (target,) = evaluation.of_type(TARGET)
    assert not evaluation.of_type("aws:appautoscaling/scheduledAction:ScheduledAction")
    assert target.options.ignore_changes == ()


def _without_schedules() -> StackConfig:
    prod = load_stack("prod")
    models: list[ModelConfig] = []
    for model in prod.models:
        function = model.lambda_
        if function is not None and function.provisioned is not None:
            provisioned = function.provisioned.model_copy(update={"schedules": []})
            function = function.model_copy(update={"provisioned": provisioned})
        models.append(model.model_copy(update={"lambda_": function}))
    return prod.model_copy(update={"models": models})
