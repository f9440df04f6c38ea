"""Smoke runs of the benchmark on a tiny district."""
