"""Task sets (GLUE-style labelled examples for downstream probes) load from the shared data by name."""
import pytest

from editbench.data.schema import RecordError
from editbench.data.tasks import TASKSETS, load_taskset, parse_example


@pytest.mark.parametrize("name,size", [("sst2", 856), ("mrpc", 258), ("cola", 644), ("rte", 262)])
def test_balanced_sets_load_whole_and_balanced(name, size):
    examples = load_taskset(name)
    assert len(examples) == size
    assert sum(e.label for e in examples) * 2 == size  # the authors' sets are balanced
    assert all(tuple(e.inputs) == TASKSETS[name].fields and all(e.inputs.values()) for e in examples)


def test_seeded_selection_is_a_stable_subset():
    a, b = load_taskset("mrpc", n=20, seed=1), load_taskset("mrpc", n=20, seed=1)
    assert a == b and a != load_taskset("mrpc", n=20, seed=2)
    assert [e.idx for e in load_taskset("mrpc", n=5, seed=1)] == [e.idx for e in a[:5]]


def test_bad_examples_name_record_and_field():
    task = TASKSETS["rte"]
    with pytest.raises(RecordError, match="7.*sentence2"):
        parse_example(task, {"sentence1": "a", "label": 0, "idx": 7}, 0)
    with pytest.raises(RecordError, match="label"):
        parse_example(task, {"sentence1": "a", "sentence2": "b", "label": 2, "idx": 7}, 0)
    with pytest.raises(ValueError, match="Did you mean 'sst2'"):
        load_taskset("sst")
