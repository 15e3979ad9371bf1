"""The editbench suites, shipped in the package: `pytest --pyargs editbench.suites -m single --editor NAME` from any
directory once editbench is installed (the pytest plugin comes with it through its `pytest11` entry point), or
`pytest suites ...` in a checkout (repo-root `suites` links here). Gates: `thresholds.yaml` beside them."""
