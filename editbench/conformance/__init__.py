"""Editor conformance checks: the contract any editor -- built-in or a third-party plugin -- must meet before its
numbers mean anything. Runnable by a method's author in their own CI, once editbench and the plugin are installed::

    pytest --pyargs editbench.conformance --editor my-editor            # seconds: tiny random models only
    pytest --pyargs editbench.conformance --editor my-editor --hparam my-editor.layer=1

The checks (:mod:`editbench.conformance.checks`, plain functions a test suite can call too): the registered name
loads and describes itself; ``apply`` edits in place and returns the exact originals (byte-identical restore) on
every tiny architecture family (GPT-2, GPT-J, GPT-NeoX, Llama); no state leaks between independent edits; the
same seed gives the same weights; declared batch support is honoured; malformed requests raise ``RecordError``
before any weight changes; and nothing a session shares is left changed (:mod:`editbench.conformance.session`):
the tokenizer, ``requires_grad`` / ``.grad``, train/eval mode, hooks, configs, torch switches, the global RNG
states; no process-wide state (e.g. a cache keyed by model path) decides an edit; greedy generation, seeded
template sampling and scores are unchanged after several restored edits. The editbench pytest plugin supplies ``--editor`` (default: every registered editor)
and ``--hparam``; failures name the editor, the model, the parameter or request and what was expected.
"""
