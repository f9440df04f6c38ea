"""`make bench`: the district-scale benchmark of the grade passback (issue 7).

Not a test: it generates a district with the sandbox generator, runs the real stage
functions of ``canvas_aspen.stages`` against the sandbox with latency, and records wall
time per stage, requests per endpoint, peak memory and the lower bound of each run.
See docs/benchmarks.md for the method and the results.
"""
