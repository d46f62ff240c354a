"""Everything that exists only because LocalStack stands in for AWS: LocalStack itself
(install, process, health), the in-process deploy engine, the Lambda-shaped local runner.
"""
