"""A fuzz of the record loader: malformed and valid records in generated files, loaded with on_error="collect".

Each generated file holds records of one format (EasyEdit or ROME CounterFact, MEND zsRE) in ``.json`` or
``.jsonl``, some valid and some malformed: wrong types, missing keys, nested junk, 5,000-digit integers,
control characters, lone surrogates, zero-width-only strings, over-long strings, escaped braces in ROME
templates, empty probe lists, garbage first records, unreadable JSONL lines (bad JSON, bad UTF-8, 100,000-deep
nesting), a UTF-8 BOM (must be accepted) and, now and then, a whole-file corruption of a ``.json`` file.

The oracle is independent of the loader: every valid record must come back with its content, every malformed
record must cost exactly one :class:`RecordError` at its position (naming the file), and the only exception
allowed is one :class:`DatasetFileError` naming the file -- when the file was corrupted as a whole or no record
in it has its format's keys. Outcomes are counted per record in ``COUNTS`` and printed by the last test (run
with ``-s`` to see them): tried (= tried_valid + tried_malformed), typed_error (malformed records reported by a
RecordError, or inside a file refused by a DatasetFileError), accepted_valid, valid_in_unreadable_file (valid
records inside a deliberately corrupted file, lost with it by design), other (must be 0).
"""
from __future__ import annotations

import json
import os
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editbench.data import DatasetFileError, RecordError, load_records

COUNTS: Counter = Counter()
# 300 generated files in CI (derandomized: the same 300 every run); 1000 with the slow tests (EDITBENCH_RUN_SLOW=1)
MAX_EXAMPLES = 1000 if os.environ.get("EDITBENCH_RUN_SLOW") == "1" else 300

HUGE = "@@HUGE@@"  # replaced in the JSON text by a 5,000-digit integer (json.dumps cannot write one)
DEEP = "@@DEEP@@"  # replaced by 100,000-deep nesting (RecursionError for a plain json.loads)
HUGE_TEXT = "9" * 5000
DEEP_TEXT = "[" * 100_000 + "]" * 100_000

# --- valid records ----------------------------------------------------------------------------------------------

FIRST = list("ABCDEFGHJKLMNPRSTUVWXYZÉÖŁЖ中日ß") + ["😀"]
REST = FIRST + list("abcdefghijkmnoprstuvwxyz0123456789 .,'-éüжя") + ["\u200d", "\u00a0"]  # interior ZWJ/NBSP ok
word = st.builds(lambda a, b: a + b.rstrip(), st.sampled_from(FIRST), st.text(alphabet=REST, max_size=8))
phrase = st.builds(lambda a, b, nl: a + ("\n" if nl else " ") + b, word, word, st.booleans())  # newlines allowed
affix = st.text(alphabet=list("abcdefg ,.'") + ["\n"], max_size=6)


@st.composite
def valid_record(draw, fmt: str, pos: int) -> dict:
    subject, pre, suf = draw(word), draw(affix), draw(affix)
    tnew, ttrue = "N" + draw(word), "T" + draw(word)
    probes = st.lists(phrase, min_size=1, max_size=3)
    if fmt == "easyedit":
        one_or_list = st.one_of(phrase, probes)
        return {"case_id": draw(st.sampled_from([pos, str(pos)])), "prompt": pre + subject + suf, "subject": subject,
                "target_new": tnew, "ground_truth": ttrue, "rephrase_prompt": draw(one_or_list),
                "locality_prompt": draw(one_or_list), "locality_ground_truth": ttrue}
    if fmt == "rome":
        return {"case_id": pos, "pararel_idx": draw(st.integers(0, 10**6)),
                "requested_rewrite": {"prompt": pre + "{}" + suf, "subject": subject, "relation_id": "P27",
                                      "target_new": {"str": tnew, "id": "Q1"},
                                      "target_true": {"str": ttrue, "id": "Q2"}},
                "paraphrase_prompts": draw(probes), "neighborhood_prompts": draw(probes),
                "attribute_prompts": draw(probes), "generation_prompts": draw(probes)}
    return {"subject": subject, "src": pre + subject + suf + "?", "rephrase": draw(phrase), "answers": [tnew],
            "alt": draw(st.sampled_from(["", ttrue])), "pred": ttrue, "loc": "nq question: " + draw(phrase),
            "loc_ans": draw(word), "cond": "x >> y || z"}


# --- malformations ------------------------------------------------------------------------------------------------

BAD_TEXT = ["", "   ", "\u200b", "\ufeff", "\u00a0\u2060", " \u200b\t\n", "\u3000", "\u2028", "x\x00y", "a\x07b",
            "\x1b[31mred", "\x85", "a\ud800b", "\udfff", "x" * 2001, None, 0, HUGE, True, 2.5, [], {},
            ["nested", ["junk"]], {"str": "x"}]
BAD_TEMPLATE = ["{{}} lives in", "{{}} {{}}", "{} and {}", "{0} is", "{!r} is", "{:>9} is", "{", "}{} x",
                "{} {{x}}", "no placeholder", "{subject} is", "{}{{", "{{{}}}"]
BAD_PROBES = [[], [""], ["ok", "\u200b"], ["x\x00"], ["a\ud800"], [None], [["x"]], 5, "x" * 2001, {}]
BAD_CASE_ID = [None, True, 1.5, [], {}, "", "\u200b", " ", "x" * 201, HUGE, "a\x00", "\ud800"]
BAD_RECORD = [None, 0, -1, 3.5, "a record", [], [1, 2], True, {}, {"junk": [[[]]]}, HUGE,
              json.loads("[" * 50 + "]" * 50)]
BAD_LINES = [b"{", b"not json", b'{"case_id": 1,}', b"\xff\xfe\x00", b"\xc3\x28", b"[" * 100_000 + b"]" * 100_000,
             b"\x00", b'"\\ud800"', b"NaN", b"{} {}", b'{"a": 1', HUGE_TEXT.encode()]

TEXT_FIELDS = {"easyedit": ["prompt", "subject", "target_new", "ground_truth", "locality_ground_truth"],
               "rome": [("requested_rewrite", "prompt"), ("requested_rewrite", "subject"),
                        ("requested_rewrite", "target_new", "str"), ("requested_rewrite", "target_true", "str")],
               "zsre": ["subject", "src", "rephrase", "loc", "loc_ans"]}
PROBE_FIELDS = {"easyedit": ["rephrase_prompt", "locality_prompt"],
                "rome": ["paraphrase_prompts", "neighborhood_prompts", "attribute_prompts", "generation_prompts"],
                "zsre": ["answers"]}
REQUIRED = {"easyedit": ["case_id", "prompt", "subject", "target_new", "ground_truth", "rephrase_prompt",
                         "locality_prompt", "locality_ground_truth"],
            "rome": ["case_id", "requested_rewrite", "paraphrase_prompts", "neighborhood_prompts",
                     "attribute_prompts", "generation_prompts", ("requested_rewrite", "prompt"),
                     ("requested_rewrite", "subject"), ("requested_rewrite", "target_new"),
                     ("requested_rewrite", "target_true")],
            "zsre": ["subject", "src", "rephrase", "answers", "alt", "loc", "loc_ans"]}


def _set(rec: dict, path, value=None, delete=False) -> dict:
    path = (path,) if isinstance(path, str) else path
    tgt = rec
    for p in path[:-1]:
        tgt = tgt[p]
    if delete:
        del tgt[path[-1]]
    else:
        tgt[path[-1]] = value
    return rec


def malformed(rng, fmt: str, rec: dict):
    """A malformed version of the valid ``rec`` (or something that is not a record at all), chosen uniformly."""
    kinds = ["text", "probe", "missing", "record", "consistency"] + (["case_id"] if fmt != "zsre" else []) \
        + (["template"] if fmt == "rome" else ["unfilled"])
    kind = rng.choice(kinds)
    if kind == "text":
        return _set(rec, rng.choice(TEXT_FIELDS[fmt]), rng.choice(BAD_TEXT))
    if kind == "probe":
        return _set(rec, rng.choice(PROBE_FIELDS[fmt]), rng.choice(BAD_PROBES))
    if kind == "missing":
        return _set(rec, rng.choice(REQUIRED[fmt]), delete=True)
    if kind == "record":
        return rng.choice(BAD_RECORD)
    if kind == "case_id":
        return _set(rec, "case_id", rng.choice(BAD_CASE_ID))
    if kind == "template":
        return _set(rec, ("requested_rewrite", "prompt"), rng.choice(BAD_TEMPLATE))
    if kind == "unfilled":  # the subject is not in the filled-in prompt ('?' is never in a generated subject)
        key = "src" if fmt == "zsre" else "prompt"
        return _set(rec, key, rng.choice(["???", "{} is", "?" + "{" + "?"]))
    # consistency: nothing to edit, or the wrong neighbor target
    if fmt == "easyedit":
        key = rng.choice(["target_new", "locality_ground_truth"])
        return _set(rec, key, rec["ground_truth"] if key == "target_new" else "Z" + rec["ground_truth"])
    if fmt == "rome":
        if rng.random() < 0.5:
            return _set(rec, ("requested_rewrite", "target_new", "str"), rec["requested_rewrite"]["target_true"]["str"])
        return _set(rec, ("requested_rewrite", "target_new"), "a bare string")
    return _set(rec, "answers", rng.choice([[" "], ["\u200b"], "one string", [["x"]]]))


def _recognised(fmt: str, rec) -> bool:
    """Independent oracle: does the record carry its format's signature keys?"""
    if not isinstance(rec, dict):
        return False
    return {"rome": "requested_rewrite" in rec,
            "easyedit": "prompt" in rec and "ground_truth" in rec and "requested_rewrite" not in rec,
            "zsre": "src" in rec and "answers" in rec}[fmt]


@st.composite
def dataset_file(draw):
    fmt = draw(st.sampled_from(["easyedit", "rome", "zsre"]))
    suffix = draw(st.sampled_from([".json", ".jsonl"]))
    n = draw(st.integers(1, 10))
    rng = draw(st.randoms(use_true_random=True))  # uniform choices (hypothesis's own draws favour small values)
    entries = []  # (kind, value): ("valid", rec) | ("bad", rec) | ("badline", bytes)
    for pos in range(n):
        rec = draw(valid_record(fmt, pos))
        roll = rng.random()
        if roll < 0.3:
            entries.append(("valid", rec))
        elif suffix == ".jsonl" and roll > 0.85:
            entries.append(("badline", rng.choice(BAD_LINES)))
        else:
            entries.append(("bad", malformed(rng, fmt, rec)))
    bom = rng.random() < 0.3
    corrupt = None
    if suffix == ".json" and rng.random() < 0.08:
        corrupt = rng.choice(["truncate", "bad_utf8", "deep", "dict", "utf16"])
    return fmt, suffix, entries, bom, corrupt, rng.randrange(10**6)


def _encode(suffix: str, entries, bom: bool, corrupt: str | None, cut: int) -> bytes:
    def dump(v) -> str:
        return json.dumps(v).replace(json.dumps(HUGE), HUGE_TEXT).replace(json.dumps(DEEP), DEEP_TEXT)

    if suffix == ".jsonl":
        lines = [v if k == "badline" else dump(v).encode() for k, v in entries]
        body = b"\n".join(lines) + b"\n"
    else:
        values = [v for _, v in entries]
        if corrupt == "deep":
            values = values + [DEEP]
        text = dump({"records": values} if corrupt == "dict" else values)
        body = text.encode("utf-16") if corrupt == "utf16" else text.encode()
        if corrupt == "truncate":
            body = body[:cut % len(body)]  # any strict prefix of a JSON list is invalid JSON
        elif corrupt == "bad_utf8":
            at = cut % (len(body) + 1)
            body = body[:at] + b"\xff" + body[at:]
    return (b"\xef\xbb\xbf" if bom and corrupt != "utf16" else b"") + body


def _position(e: RecordError) -> int:
    cid = str(e.case_id)
    return int(cid[1:]) if cid.startswith("#") else int(cid)


@settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(spec=dataset_file())
def test_fuzz_record_loader(spec, tmp_path):
    fmt, suffix, entries, bom, corrupt, cut = spec
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(_encode(suffix, entries, bom, corrupt, cut))
    n = len(entries)
    COUNTS["files"] += 1
    COUNTS["tried"] += n
    COUNTS["tried_valid"] += sum(k == "valid" for k, _ in entries)
    COUNTS["tried_malformed"] += sum(k != "valid" for k, _ in entries)
    recognised = any(k != "badline" and _recognised(fmt, v) for k, v in entries)
    expect_file_error = corrupt is not None or not recognised
    target = "answers"
    try:
        good, errors = load_records(path, on_error="collect", target=target)
    except DatasetFileError as e:
        if not expect_file_error or str(path) not in str(e):
            COUNTS["other"] += n
            raise AssertionError(f"unexpected file error {e!r} for {entries!r}")
        COUNTS["files_with_file_error"] += 1
        COUNTS["typed_error"] += sum(k != "valid" for k, _ in entries)
        COUNTS["valid_in_unreadable_file"] += sum(k == "valid" for k, _ in entries)  # lost with their file
        return
    except Exception as e:  # noqa: BLE001 - anything else is the bug this fuzz is for
        COUNTS["other"] += n
        raise AssertionError(f"untyped {type(e).__name__}: {e} for {entries!r}") from e
    if expect_file_error:
        COUNTS["other"] += n
        raise AssertionError(f"a corrupted/unrecognisable file loaded: {corrupt}, {entries!r}")

    by_pos = {}
    for e in errors:
        assert isinstance(e, RecordError) and e.field, e
        assert e.source == str(path) or e.source.startswith(f"{path}:"), e.source  # names the file (and line)
        pos = _position(e)
        assert pos not in by_pos, f"two errors for record {pos}: {by_pos[pos]} / {e}"
        by_pos[pos] = e
    kept = {int(r.case_id): r for r in good}
    for pos, (kind, val) in enumerate(entries):
        if kind == "valid":
            r = kept.get(pos)
            ok = r is not None and pos not in by_pos
            if ok:
                if fmt == "rome":
                    rr = val["requested_rewrite"]
                    want = (rr["prompt"].format(rr["subject"]), rr["target_new"]["str"])
                    ok = (r.rewrite_prompt, r.target_new) == want
                elif fmt == "easyedit":
                    ok = (r.rewrite_prompt, r.subject, r.target_new, r.target_true) == \
                        (val["prompt"], val["subject"], val["target_new"], val["ground_truth"])
                else:
                    ok = (r.rewrite_prompt, r.target_new) == (val["src"], val["answers"][0])
            COUNTS["accepted_valid" if ok else "other"] += 1
            assert ok, f"valid record {pos} lost or changed: {val!r} -> {r!r} / {by_pos.get(pos)}"
        else:
            ok = pos in by_pos and pos not in kept
            COUNTS["typed_error" if ok else "other"] += 1
            assert ok, f"malformed record {pos} accepted or not reported: {val!r} -> {kept.get(pos)!r}"
    assert len(good) + len(errors) == n

    # raise mode: the same file either loads exactly the valid records or raises a RecordError
    try:
        strict = load_records(path, target=target)
    except RecordError:
        assert errors
    else:
        assert not errors and [r.case_id for r in strict] == [r.case_id for r in good]


def test_zz_fuzz_counts():
    """Print the outcome counts (``pytest -s``); nothing but typed errors and kept valid records."""
    print(f"\nfuzz record loader: {dict(sorted(COUNTS.items()))}")
    if COUNTS["files"]:  # the fuzz test ran in this session
        assert COUNTS["other"] == 0
        assert COUNTS["typed_error"] == COUNTS["tried_malformed"]
        assert COUNTS["accepted_valid"] + COUNTS["valid_in_unreadable_file"] == COUNTS["tried_valid"]
