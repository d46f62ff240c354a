"""Event-driven inference: queued jobs (SQS) and batch files (S3), served by the same
data plane as HTTP."""
