"""The shared "did you mean ...?" helper (editbench.suggest)."""
from editbench.suggest import close_matches, did_you_mean


def test_close_matches_is_case_insensitive_and_keeps_spelling():
    assert close_matches("ROME", ["rome", "r-rome", "memit"]) == ["rome", "r-rome"]
    assert close_matches("counterfct", {"counterfact": 1, "zsre": 2}) == ["counterfact"]  # any iterable of names
    assert close_matches("Tiny-GPT2", ["tiny-gpt2", "Tiny-GPT2"]) == ["tiny-gpt2", "Tiny-GPT2"]
    assert close_matches("zzzzzzzz", ["rome", "memit"]) == []


def test_close_matches_limits_and_orders():
    known = ["ft", "ft-c", "ft-x", "ft-y"]
    two = close_matches("ft", known, n=2)
    assert len(two) == 2 and two[0] == "ft"  # best first, at most n
    assert len(close_matches("ft", known)) == 3


def test_did_you_mean_text():
    assert did_you_mean([]) == ""
    assert did_you_mean(["a"]) == " Did you mean 'a'?"
    assert did_you_mean(iter(["a", "b"])) == " Did you mean 'a' or 'b'?"
