"""The rules every side reads: names and prefixes, the data contract, the metric line formats. Stdlib only.

`stacks.packaging` copies this package to the root of the Lambda bundle (next to `lambdas/`) and of the
training source tarball (next to `train.py`), so the stacks, the functions, the training job, the endpoint
and the CLI all import the same copy: `from contract import data, metrics, names`.
"""
