"""A LocalStack runtime executor that runs each Lambda execution environment as a process,
and the fix of a LocalStack bug in UpdateAlias with weighted routing (`alias_routing`).

Only `plugin` and `executor` import LocalStack (`alias_routing` only inside
`localstack_target`); `interpreters`, `opt` and `bootstrap` are standard library only (the
bootstrap runs inside the function's own Python).
"""

EXECUTOR_NAME = "inferstack-process"
