"""The DAG run for real: dag.test(), a real scheduler, a browser."""
