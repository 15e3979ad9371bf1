"""Data loading: the real shared files, format conversion, typed record errors, selection, the registry."""
from __future__ import annotations

import copy
import json

import pytest

from editbench.data import (EditRequest, KnownFact, RecordError, UnknownDatasetError, data_dir, detect_format,
                            list_datasets, load_edit_orders, load_known, load_records, order_records,
                            parse_easyedit, parse_known, parse_rome, parse_zsre)

EASY = {"case_id": 0, "prompt": "The mother tongue of Danielle Darrieux is", "target_new": "English",
        "subject": "Danielle Darrieux", "ground_truth": "French",
        "rephrase_prompt": "Where Danielle Darrieux is from, people speak the language of",
        "locality_prompt": "Michel Rocard is a native speaker of", "locality_ground_truth": "French"}
ROME = {"case_id": 0, "pararel_idx": 2796,
        "requested_rewrite": {"prompt": "The mother tongue of {} is", "relation_id": "P103",
                              "target_new": {"str": "English", "id": "Q1860"},
                              "target_true": {"str": "French", "id": "Q150"}, "subject": "Danielle Darrieux"},
        "paraphrase_prompts": ["Shayna does this and Yossel goes still and dies. Danielle Darrieux, a native"],
        "neighborhood_prompts": ["Michel Rocard is a native speaker of", "Robert Schuman, a native"],
        "attribute_prompts": ["J.\u00a0R.\u00a0R. Tolkien is a native speaker of"],
        "generation_prompts": ["Danielle Darrieux's mother tongue is"]}
ZSRE = {"subject": "Watts Humphrey", "src": "What university did Watts Humphrey attend?", "pred": "Trinity College",
        "rephrase": "What university did Watts Humphrey take part in?", "alt": "University of Michigan",
        "answers": ["Illinois Institute of Technology"], "loc": "nq question: who played desmond doss father",
        "loc_ans": "Hugo Weaving", "cond": "Trinity College >> University of Michigan || What university ..."}
KNOWN = {"known_id": 0, "subject": "Vinson Massif", "attribute": "Antarctica",
         "template": "{} is located in the continent", "prediction": " of Antarctica. It is the largest",
         "prompt": "Vinson Massif is located in the continent of", "relation_id": "P30"}


@pytest.fixture(scope="module")
def raw_cf():
    with open(data_dir() / "counterfact/counterfact-edit.json") as f:
        return json.load(f)


# --- the real shared files --------------------------------------------------------------------------------

@pytest.mark.parametrize("name,count,fmt", [("counterfact", 10_000, "easyedit"), ("counterfact-1k", 1_000, "easyedit"),
                                            ("zsre", 414, "zsre"), ("zsre-train", 1_000, "zsre")])
def test_real_files_count_and_validate(name, count, fmt):
    recs = load_records(name)
    assert len(recs) == count  # MANIFEST.md
    assert len({r.case_id for r in recs}) == count
    for r in recs:
        assert isinstance(r, EditRequest) and r.meta["format"] == fmt
        r.validate()
        assert r.rewrite_prompt == r.prompt.format(r.subject) and r.subject in r.rewrite_prompt
        assert len(r.paraphrase_prompts) == 1


def test_known_1000():
    facts = load_known()
    assert len(facts) == 1_209 and all(isinstance(f, KnownFact) for f in facts)
    assert len({f.known_id for f in facts}) == 1_209
    for f in facts:
        assert f.template.count("{}") == 1 and f.prompt.startswith(f.template.format(f.subject))
    assert facts[0] == KnownFact(0, "Vinson Massif", "{} is located in the continent", "Antarctica", "P30",
                                 "Vinson Massif is located in the continent of",
                                 " of Antarctica. It is the largest of the three")


def test_easyedit_template_round_trips_on_every_real_record(raw_cf):
    for rec in raw_cf:
        req = parse_easyedit(rec)
        assert req.prompt.count("{}") == 1
        assert req.prompt.format(rec["subject"]) == rec["prompt"]
        assert (req.case_id, req.target_new, req.target_true) == (str(rec["case_id"]), rec["target_new"],
                                                                  rec["ground_truth"])
        assert req.paraphrase_prompts == (rec["rephrase_prompt"],)
        assert req.neighborhood_prompts == (rec["locality_prompt"],)


def test_easyedit_template_replaces_first_occurrence_only():
    rec = dict(EASY, prompt="Paris Hilton was born in Paris Hilton's", subject="Paris Hilton")
    req = parse_easyedit(rec)
    assert req.prompt == "{} was born in Paris Hilton's" and req.prompt.format("Paris Hilton") == rec["prompt"]


def test_easyedit_accepts_lists_of_probe_prompts():
    req = parse_easyedit(dict(EASY, rephrase_prompt=["a", "b"], locality_prompt=["c"]))
    assert req.paraphrase_prompts == ("a", "b") and req.neighborhood_prompts == ("c",)


def test_rome_record():
    req = parse_rome(ROME)
    assert (req.case_id, req.prompt, req.subject, req.target_new, req.target_true, req.relation_id) == \
        ("0", "The mother tongue of {} is", "Danielle Darrieux", "English", "French", "P103")
    assert len(req.neighborhood_prompts) == 2 and req.generation_prompts == ("Danielle Darrieux's mother tongue is",)
    assert req.meta == {"format": "rome", "target_new_id": "Q1860", "target_true_id": "Q150", "pararel_idx": 2796}


def test_zsre_target_choice():
    ans = parse_zsre(ZSRE, 7)
    assert (ans.case_id, ans.prompt, ans.target_new, ans.target_true) == \
        ("7", "What university did {} attend?", "Illinois Institute of Technology", None)
    assert ans.paraphrase_prompts == (ZSRE["rephrase"],) and ans.neighborhood_prompts == ()
    assert ans.meta["loc"] == ZSRE["loc"] and ans.meta["loc_ans"] == "Hugo Weaving"
    alt = parse_zsre(ZSRE, 7, target="alt")
    assert (alt.target_new, alt.target_true) == ("University of Michigan", "Illinois Institute of Technology")
    with pytest.raises(ValueError, match="target"):
        parse_zsre(ZSRE, 7, target="pred")


def test_zsre_alt_convention_on_real_file():
    # ROME's convention: every record is editable; EasyEdit's: 2 empty alts and 8 alt == answers[0] are errors
    assert len(load_records("zsre", target="answers")) == 414
    good, errors = load_records("zsre", target="alt", on_error="collect")
    assert len(good) == 404 and len(errors) == 10 and {e.field for e in errors} == {"alt"}
    assert all(r.target_new == r.meta["alt"] and r.target_true == r.meta["answers"][0] for r in good)
    with pytest.raises(RecordError) as ei:
        load_records("zsre", target="alt")
    assert (ei.value.case_id, ei.value.field) == ("54", "alt")


# --- typed record errors ------------------------------------------------------------------------------------

def _mut(base, path, value, delete=False):
    rec = copy.deepcopy(base)
    *parents, last = path
    tgt = rec
    for p in parents:
        tgt = tgt[p]
    if delete:
        del tgt[last]
    else:
        tgt[last] = value
    return rec


DEL = object()
ERROR_CASES = [
    # (parser, base, path, value, expected case id, expected field)
    (parse_easyedit, EASY, ["prompt"], "The mother tongue of D. Darrieux is", "0", "prompt"),  # subject absent
    (parse_easyedit, EASY, ["target_new"], "  ", "0", "target_new"),  # empty target
    (parse_easyedit, EASY, ["target_new"], "French", "0", "target_new"),  # target_new == target_true
    (parse_easyedit, EASY, ["ground_truth"], DEL, "0", "ground_truth"),  # missing key
    (parse_easyedit, EASY, ["subject"], 42, "0", "subject"),  # wrong type
    (parse_easyedit, EASY, ["rephrase_prompt"], 3, "0", "rephrase_prompt"),
    (parse_easyedit, EASY, ["locality_prompt"], ["ok", None], "0", "locality_prompt[1]"),
    (parse_easyedit, EASY, ["locality_prompt"], [""], "0", "locality_prompt[0]"),  # empty probe: the file's name
    (parse_easyedit, EASY, ["locality_ground_truth"], "German", "0", "locality_ground_truth"),
    (parse_easyedit, EASY, ["prompt"], "The {mother} tongue of Danielle Darrieux is", "0", "prompt"),
    (parse_easyedit, EASY, ["case_id"], DEL, "#5", "case_id"),  # named by its position
    (parse_easyedit, EASY, ["case_id"], True, "#5", "case_id"),
    (parse_rome, ROME, ["requested_rewrite", "prompt"], "The mother tongue of is", "0", "requested_rewrite.prompt"),
    (parse_rome, ROME, ["requested_rewrite", "prompt"], "{} and {} speak", "0", "requested_rewrite.prompt"),
    (parse_rome, ROME, ["requested_rewrite", "prompt"], "{} speaks {lang}", "0", "requested_rewrite.prompt"),
    (parse_rome, ROME, ["requested_rewrite", "subject"], "", "0", "requested_rewrite.subject"),
    (parse_rome, ROME, ["requested_rewrite", "relation_id"], 103, "0", "requested_rewrite.relation_id"),
    (parse_rome, ROME, ["requested_rewrite", "target_new"], "English", "0", "requested_rewrite.target_new"),
    (parse_rome, ROME, ["requested_rewrite", "target_new", "str"], "", "0", "requested_rewrite.target_new.str"),
    (parse_rome, ROME, ["requested_rewrite", "target_true", "str"], DEL, "0", "requested_rewrite.target_true.str"),
    (parse_rome, ROME, ["requested_rewrite", "target_new", "str"], "French", "0", "target_new"),
    (parse_rome, ROME, ["requested_rewrite"], DEL, "0", "requested_rewrite"),
    (parse_rome, ROME, ["requested_rewrite"], [], "0", "requested_rewrite"),
    (parse_rome, ROME, ["attribute_prompts"], DEL, "0", "attribute_prompts"),
    (parse_rome, ROME, ["neighborhood_prompts"], [{"prompt": "x", "target": "y"}], "0", "neighborhood_prompts[0]"),
    (parse_zsre, ZSRE, ["src"], "What university did he attend?", "5", "src"),
    (parse_zsre, ZSRE, ["answers"], [], "5", "answers"),
    (parse_zsre, ZSRE, ["answers"], "Illinois", "5", "answers"),
    (parse_zsre, ZSRE, ["answers"], [" "], "5", "answers[0]"),
    (parse_zsre, ZSRE, ["loc"], DEL, "5", "loc"),
    (parse_known, KNOWN, ["template"], "Vinson Massif is located in", 0, "template"),
    (parse_known, KNOWN, ["prompt"], "It is located in the continent of", 0, "prompt"),
    (parse_known, KNOWN, ["prompt"], "Vinson Massif is in the continent of", 0, "prompt"),
    (parse_known, KNOWN, ["known_id"], "0", "#5", "known_id"),
]


@pytest.mark.parametrize("parse,base,path,value,cid,fld", ERROR_CASES,
                         ids=[f"{c[0].__name__}-{'.'.join(c[2])}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_record_error_names_case_and_field(parse, base, path, value, cid, fld):
    assert_record_error_names_case_and_field(parse, base, path, value, cid, fld)


def assert_record_error_names_case_and_field(parse, base, path, value, cid, fld):
    rec = _mut(base, path, value, delete=value is DEL)
    with pytest.raises(RecordError) as ei:
        parse(rec, 5, "f.json")
    e = ei.value
    assert (e.case_id, e.field, e.source) == (cid, fld, "f.json")
    assert repr(cid) in str(e) and repr(fld) in str(e) and isinstance(e, ValueError)


def test_non_object_record():
    with pytest.raises(RecordError) as ei:
        parse_easyedit(["not", "a", "record"], 3)
    assert ei.value.field == "<record>" and ei.value.case_id == "#3"


def _bad_file(tmp_path, suffix):
    recs = [dict(EASY, case_id=i, subject=f"S{i}", prompt=f"S{i} speaks") for i in range(6)]
    recs[1]["target_new"] = ""  # empty target
    recs[3] = _mut(recs[3], ["prompt"], "nobody speaks")  # subject not in prompt
    recs[4]["case_id"] = 2  # duplicate case id
    path = tmp_path / f"mixed{suffix}"
    text = json.dumps(recs) if suffix == ".json" else "\n".join(map(json.dumps, recs)) + "\n"
    path.write_text(text)
    return path, recs


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_collect_returns_good_records_and_every_error(tmp_path, suffix):
    path, recs = _bad_file(tmp_path, suffix)
    good, errors = load_records(path, on_error="collect")
    assert [r.case_id for r in good] == ["0", "2", "5"]
    assert [(e.case_id, e.field) for e in errors] == [("1", "target_new"), ("3", "prompt"), ("2", "case_id")]
    assert len(good) + len(errors) == len(recs)  # nothing lost
    with pytest.raises(RecordError, match="'1'.*target_new"):
        load_records(path)
    with pytest.raises(ValueError, match="on_error"):
        load_records(path, on_error="ignore")


def test_format_detection(tmp_path):
    assert [detect_format(r) for r in (ROME, EASY, ZSRE, KNOWN)] == ["rome", "easyedit", "zsre", "known"]
    with pytest.raises(ValueError, match="unrecognised"):
        detect_format({"question": "?"})
    p = tmp_path / "rome.json"
    p.write_text(json.dumps([ROME, _mut(ROME, ["case_id"], 1)]))
    assert [r.meta["format"] for r in load_records(p)] == ["rome", "rome"]
    with pytest.raises(ValueError, match="load_known"):
        load_records(data_dir() / "counterfact/known_1000.json")
    p.write_text(json.dumps({"records": [ROME]}))
    with pytest.raises(ValueError, match="JSON list"):
        load_records(p)


# --- selection, registry, shared data dir --------------------------------------------------------------------

def test_n_and_seed_selection_is_deterministic():
    first = load_records("counterfact-1k", n=5)
    assert [r.case_id for r in first] == [r.case_id for r in load_records("counterfact-1k")[:5]]
    a = [r.case_id for r in load_records("counterfact-1k", n=20, seed=3)]
    assert a == [r.case_id for r in load_records("counterfact-1k", n=20, seed=3)]
    assert a != [r.case_id for r in load_records("counterfact-1k", n=20, seed=4)]
    assert a[:10] == [r.case_id for r in load_records("counterfact-1k", n=10, seed=3)]  # n is a prefix
    assert sorted(a) != a and len(set(a)) == 20
    assert len(load_records("zsre", n=10_000)) == 414  # like slicing: all there is
    with pytest.raises(ValueError, match="positive"):
        load_records("zsre", n=0)


def test_unknown_name_did_you_mean():
    assert list(list_datasets())[:6] == ["counterfact", "counterfact-1k", "counterfact-full", "zsre", "zsre-train",
                                         "factworld"]
    with pytest.raises(UnknownDatasetError, match="Did you mean 'counterfact'") as ei:
        load_records("counterfct")
    assert "Known datasets: counterfact, counterfact-1k" in str(ei.value)
    with pytest.raises(UnknownDatasetError, match="'zsre'"):
        load_records("zsr")
    with pytest.raises(UnknownDatasetError) as ei:
        load_records("imagenet")
    assert ei.value.suggestions == [] and "Did you mean" not in str(ei.value)
    with pytest.raises(FileNotFoundError, match="no_such.json"):
        load_records("no_such.json")


def test_data_dir_env(tmp_path, monkeypatch):
    (tmp_path / "zsre").mkdir()
    (tmp_path / "zsre" / "zsre_mend_eval_first414.json").write_text(json.dumps([ZSRE, ZSRE]))
    monkeypatch.setenv("EDITBENCH_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path and [r.case_id for r in load_records("zsre")] == ["0", "1"]
    monkeypatch.setenv("EDITBENCH_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="EDITBENCH_DATA_DIR"):
        load_records("zsre")


def test_edit_orders(raw_cf):
    orders = load_edit_orders()
    assert len(orders) == 10 and all(len(o) == len(set(o)) == 20_000 for o in orders)
    assert orders[0][:3] == ["14434", "2473", "4093"]
    recs = load_records("counterfact")
    ordered = order_records(recs, orders[0])
    ids = set(orders[0])
    assert len(ordered) == sum(r.case_id in ids for r in recs)  # the 10k subset of the 21,919 the order spans
    pos = {c: i for i, c in enumerate(orders[0])}
    assert [pos[r.case_id] for r in ordered] == sorted(pos[r.case_id] for r in ordered)
    with pytest.raises(KeyError):
        order_records(recs, orders[0], missing="raise")


def test_factworld_dataset():
    recs = load_records("factworld", n=5)
    assert len(recs) == 5 and all(r.meta["format"] == "rome" for r in recs)
    assert all(r.neighborhood_prompts and r.paraphrase_prompts for r in recs)


# --- bad input and faults (issue "Bad input and faults": record loading) -------------------------------------

from editbench.data import DatasetFileError, DatasetFileMissing, read_json_records  # noqa: E402


def _write(path, recs, suffix):
    text = json.dumps(recs) if suffix == ".json" else "\n".join(map(json.dumps, recs)) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


EASY_NO_PROMPT = {k: v for k, v in EASY.items() if k != "prompt"}
EASY_NO_GT = {k: v for k, v in EASY.items() if k != "ground_truth"}
ROME_NO_RR = {k: v for k, v in ROME.items() if k != "requested_rewrite"}


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
@pytest.mark.parametrize("base,first,cid,fld", [
    (EASY, None, "#0", "<record>"), (EASY, 42, "#0", "<record>"), (EASY, [], "#0", "<record>"),
    (EASY, "a record", "#0", "<record>"), (EASY, EASY_NO_PROMPT, "0", "prompt"),
    (EASY, EASY_NO_GT, "0", "ground_truth"), (ROME, ROME_NO_RR, "0", "requested_rewrite"), (ROME, 7, "#0", "<record>"),
])
def test_bad_first_record_costs_one_record_not_the_file(tmp_path, suffix, base, first, cid, fld):
    path = _write(tmp_path / f"badfirst{suffix}", [first] + [dict(base, case_id=i) for i in (1, 2, 3)], suffix)
    good, errors = load_records(path, on_error="collect")
    assert [r.case_id for r in good] == ["1", "2", "3"]
    assert [(e.case_id, e.field, e.source) for e in errors] == [(cid, fld, str(path))]
    with pytest.raises(RecordError) as ei:  # raise mode: the record's error, not "unrecognised record format"
        load_records(path)
    assert (ei.value.case_id, ei.value.field) == (cid, fld)


def test_format_is_the_majority_of_recognisable_records(tmp_path):
    path = _write(tmp_path / "mixed.json", [ROME] + [dict(EASY, case_id=i) for i in (1, 2)], ".json")
    good, errors = load_records(path, on_error="collect")
    assert [r.meta["format"] for r in good] == ["easyedit", "easyedit"]
    assert [(e.case_id, e.field) for e in errors] == [("0", "subject")]  # the first EasyEdit key it lacks


def test_no_recognisable_record_is_one_file_error(tmp_path):
    path = _write(tmp_path / "junk.json", [None, {"question": "?"}, 3], ".json")
    with pytest.raises(DatasetFileError, match="none of its 3 records is in a known format") as ei:
        load_records(path, on_error="collect")
    assert ei.value.path == str(path) and str(path) in str(ei.value)


@pytest.mark.parametrize("name,body,match", [
    ("truncated.json", b'[{"case_id": 0},', "invalid JSON at line 1"),
    ("latin1.json", '[{"subject": "Caf\u00e9"}]'.encode("latin-1"), "not valid UTF-8: byte 0xe9"),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("utf16.json", json.dumps([EASY]).encode("utf-16"), "UTF-16"),
    ("utf16.jsonl", json.dumps(EASY).encode("utf-16"), "UTF-16"),
    ("lines.json", (json.dumps(EASY) + "\n" + json.dumps(EASY)).encode(), "needs the .jsonl suffix"),
    ("empty.json", b"", "invalid JSON"),
    ("object.json", b'{"records": []}', "expected a JSON list"),
])
def test_unreadable_file_is_one_typed_error_naming_it(tmp_path, name, body, match):
    path = tmp_path / name
    path.write_bytes(body)
    for on_error in ("raise", "collect"):
        with pytest.raises(DatasetFileError, match=match) as ei:
            load_records(path, on_error=on_error)
        assert isinstance(ei.value, ValueError) and str(path) in str(ei.value)
        assert not isinstance(ei.value, (json.JSONDecodeError, UnicodeDecodeError))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DatasetFileMissing, match="nope.json") as ei:
        load_records(tmp_path / "nope.json")
    assert isinstance(ei.value, FileNotFoundError) and isinstance(ei.value, DatasetFileError)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(DatasetFileError, match="is a directory"):
        load_records(tmp_path / "dir.json")


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_utf8_bom_accepted(tmp_path, suffix):
    path = tmp_path / f"bom{suffix}"
    text = json.dumps([EASY]) if suffix == ".json" else json.dumps(EASY) + "\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert [r.case_id for r in load_records(path)] == ["0"]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_huge_integer_is_one_record_error(tmp_path, suffix):
    recs = [dict(EASY, case_id=i) for i in range(3)]
    text = (json.dumps(recs) if suffix == ".json" else "\n".join(map(json.dumps, recs)))
    text = text.replace('"case_id": 1', '"case_id": ' + "7" * 5000, 1)  # Python refuses to parse > 4,300 digits
    path = tmp_path / f"huge{suffix}"
    path.write_text(text)
    good, errors = load_records(path, on_error="collect")
    assert [r.case_id for r in good] == ["0", "2"]
    assert [(e.case_id, e.field) for e in errors] == [("#1", "case_id")] and "5,000 digits" in str(errors[0])


def test_bad_jsonl_lines_are_record_errors_naming_file_and_line(tmp_path):
    path = tmp_path / "lines.jsonl"
    lines = [json.dumps(dict(EASY, case_id=0)).encode(), b'{"case_id": 1, "prompt": ', b"",
             json.dumps(dict(EASY, case_id=2)).encode(), b'{"subject": "Caf\xe9"}', b"[" * 100_000 + b"]" * 100_000,
             json.dumps(dict(EASY, case_id=3)).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    good, errors = load_records(path, on_error="collect")
    assert [r.case_id for r in good] == ["0", "2", "3"]
    assert [(e.case_id, e.field, e.source) for e in errors] == [
        ("#1", "<record>", f"{path}:2"), ("#3", "<record>", f"{path}:5"), ("#4", "<record>", f"{path}:6")]
    assert "invalid JSON" in errors[0].problem and "UTF-8" in errors[1].problem and "deep" in errors[2].problem
    with pytest.raises(RecordError, match="lines.jsonl:2"):
        load_records(path)
    with pytest.raises(DatasetFileError, match="lines.jsonl:2: invalid JSON"):  # a strict read: the first bad line
        read_json_records(path)
    assert len(read_json_records(path, bad_lines="keep")) == 6  # blank line skipped


SILENTLY_WRONG = [
    # a ROME template as str.format reads it: exactly one {} and no other brace
    (parse_rome, ROME, ["requested_rewrite", "prompt"], "{{}} lives in", "0", "requested_rewrite.prompt"),
    (parse_rome, ROME, ["requested_rewrite", "prompt"], "{} lives in {{x}}", "0", "requested_rewrite.prompt"),
    (parse_rome, ROME, ["requested_rewrite", "prompt"], "{{{}}} lives in", "0", "requested_rewrite.prompt"),
    (parse_rome, ROME, ["requested_rewrite", "prompt"], "{0} lives in", "0", "requested_rewrite.prompt"),
    (parse_rome, ROME, ["requested_rewrite", "prompt"], "{!r} lives in", "0", "requested_rewrite.prompt"),
    (parse_rome, ROME, ["requested_rewrite", "prompt"], "{:>9} lives in", "0", "requested_rewrite.prompt"),
    (parse_known, KNOWN, ["template"], "{{}} is located in the continent", 0, "template"),
    # invisible-only strings are empty
    (parse_rome, ROME, ["requested_rewrite", "subject"], "\u200b", "0", "requested_rewrite.subject"),
    (parse_rome, ROME, ["requested_rewrite", "target_new", "str"], "\ufeff", "0", "requested_rewrite.target_new.str"),
    (parse_easyedit, EASY, ["target_new"], "\u2060\u00a0", "0", "target_new"),
    (parse_easyedit, EASY, ["subject"], " \u200b\t", "0", "subject"),
    (parse_zsre, ZSRE, ["answers"], ["\u200b"], "5", "answers[0]"),
    (parse_easyedit, EASY, ["case_id"], "\u200b", "#5", "case_id"),
    # control characters, lone surrogates, size limits
    (parse_rome, ROME, ["requested_rewrite", "prompt"], "The mother\x00 tongue of {} is", "0",
     "requested_rewrite.prompt"),
    (parse_easyedit, EASY, ["ground_truth"], "Fren\x1bch", "0", "ground_truth"),
    (parse_rome, ROME, ["neighborhood_prompts"], ["ok", "bad\x07"], "0", "neighborhood_prompts[1]"),
    (parse_easyedit, EASY, ["target_new"], "Engl\x85ish", "0", "target_new"),  # C1 control (NEL)
    (parse_zsre, ZSRE, ["rephrase"], "What university did \ud800 attend?", "5", "rephrase"),
    (parse_rome, ROME, ["requested_rewrite", "subject"], "Danielle \udc00", "0", "requested_rewrite.subject"),
    (parse_easyedit, EASY, ["rephrase_prompt"], "x" * 2001, "0", "rephrase_prompt"),
    (parse_rome, ROME, ["generation_prompts"], ["x" * 2001], "0", "generation_prompts[0]"),
    (parse_easyedit, EASY, ["case_id"], "x" * 201, "#5", "case_id"),
    # empty probe lists, and the EasyEdit field named as the file spells it
    (parse_rome, ROME, ["paraphrase_prompts"], [], "0", "paraphrase_prompts"),
    (parse_rome, ROME, ["neighborhood_prompts"], [], "0", "neighborhood_prompts"),
    (parse_easyedit, EASY, ["rephrase_prompt"], [], "0", "rephrase_prompt"),
    (parse_easyedit, EASY, ["locality_prompt"], [], "0", "locality_prompt"),
    (parse_easyedit, EASY, ["rephrase_prompt"], "", "0", "rephrase_prompt"),  # was paraphrase_prompts[0]
    (parse_easyedit, EASY, ["rephrase_prompt"], ["ok", " "], "0", "rephrase_prompt[1]"),
]


@pytest.mark.parametrize("parse,base,path,value,cid,fld", SILENTLY_WRONG,
                         ids=[f"{c[0].__name__}-{'.'.join(c[2])}-{i}" for i, c in enumerate(SILENTLY_WRONG)])
def test_silently_wrong_values_are_record_errors(parse, base, path, value, cid, fld):
    assert_record_error_names_case_and_field(parse, base, path, value, cid, fld)


def test_escaped_braces_template_had_no_subject():
    # why "{{}} lives in" must be an error: it formats to a prompt without the subject at all
    assert "{{}} lives in".format("Paris") == "{} lives in"
    req = EditRequest("0", "{{}} lives in", "Paris", "Rome", "London")
    with pytest.raises(RecordError, match="placeholder"):
        req.validate()
    for bad in ("\u200b", "a\x00", "\ud800"):
        with pytest.raises(RecordError, match="subject"):
            EditRequest("0", "{} lives in", bad, "Rome", "London").validate()


def test_accepted_text_kept_exactly():
    # no normalization: interior format characters, NBSP, newlines and a 2,000-character probe are kept as is
    rec = dict(EASY, subject="Dani\u200delle Darrieux", prompt="The mother tongue of Dani\u200delle Darrieux is",
               rephrase_prompt=["Where\u00a0she is from\n, people speak", "y" * 2000], target_new="Engl\u0301ish")
    req = parse_easyedit(rec)
    assert req.rewrite_prompt == rec["prompt"] and req.paraphrase_prompts == tuple(rec["rephrase_prompt"])
    assert req.target_new == "Engl\u0301ish"  # NFD kept, not composed
    zs = parse_zsre(dict(ZSRE, loc_ans="15\u00b045\u2032S\ufeff / \ufeff15.750\u00b0S"), 0)  # as in the real zsRE
    assert zs.meta["loc_ans"].count("\ufeff") == 2
