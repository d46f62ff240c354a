"""A LocalStack runtime executor that runs each Lambda execution environment as a process.

Only `plugin` and `executor` import LocalStack; `interpreters`, `opt` and `bootstrap` are
standard library only (the bootstrap runs inside the function's own Python).
"""

EXECUTOR_NAME = "inferstack-process"
