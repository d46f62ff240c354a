"""LocalStack community as the embedded local target: run in host mode, without Docker.

`manager` is the API: install, start, stop and status by PID (its parts: `install`,
`process`, `health`, `environment`, `procfs`, `paths`). The LocalStack plugin that runs
Lambda functions as local processes is its own package, `plugins/localstack-executor`,
installed into LocalStack's virtualenv; the `inferstack localstack` commands are in `cli`.
"""
