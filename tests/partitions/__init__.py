"""The partition suite: the pipeline on real network splits (issue 18, docs/partitions.md)."""
