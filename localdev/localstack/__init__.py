"""LocalStack community as the embedded local target: run in host mode, without Docker.

`manager` installs, starts and stops it by PID; `executor/` is the LocalStack plugin (its
own package, installed into LocalStack's virtualenv) that runs Lambda functions as local
processes; `cli` is the `inferstack localstack` command group.
"""
