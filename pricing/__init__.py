"""What a stack costs before it is deployed: the price file (`aws-us-east-1.json`, every
price with its source and the date it was read), where a model's warm latency comes from,
and the estimate itself. Pure: no cloud SDK, no Pulumi; `inferstack cost` asks CloudWatch."""
