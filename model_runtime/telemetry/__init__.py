"""What the serving path reports about itself: per-request stage timings, CloudWatch
Embedded Metric Format lines, the cold-start breakdown and structured JSON logs."""
