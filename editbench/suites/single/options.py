"""The single suite's options: --n-records and --record-range, shared with other suites, are in
:data:`editbench.options.COMMON`."""
OPTIONS = ()
