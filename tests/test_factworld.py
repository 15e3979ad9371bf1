"""The embedded fact world: generator, corpus hygiene, tasks, CounterFact records, the shipped checkpoint and a
quick build of the same recipe."""
from __future__ import annotations

import collections
import json
import re

import pytest
import torch

from editbench.factworld import (EMBEDDED_DIR, RELATIONS, WorldConfig, corpus_texts, evaluate_recall,
                                      evaluate_tasks, factworld_records, generate_world, load_world, tasks)
from editbench.factworld.build import BARS
from editbench.factworld.tokenizer import build_tokenizer

# The default world's hash. If the generator changes on purpose, the shipped checkpoint must be rebuilt
# (`editbench factworld build --out editbench/models/embedded/factworld`) and this constant updated.
DEFAULT_WORLD_HASH = "71ad5b8cbf21c2af00a006b6386faf72ed511bcb0d9bcec04d3086fbb1faabcf"
SHIPPED = (EMBEDDED_DIR / "config.json").is_file()


@pytest.fixture(scope="module")
def world():
    return load_world()


@pytest.fixture(scope="module")
def tok(world):
    return build_tokenizer(world)


# ----------------------------------------------------------------------------------------- generator
def test_generator_is_deterministic_and_hash_stable(world):
    again = generate_world(WorldConfig())
    assert again == world and again.hash == world.hash == DEFAULT_WORLD_HASH
    other = generate_world(WorldConfig(seed=1))
    assert other.hash != world.hash and other.subjects != world.subjects


def test_world_meets_the_minimums(world):
    assert len(world.subjects) >= 1000 and len(set(world.subjects)) == len(world.subjects)
    assert len(world.relations) >= 8 and len(world.facts) == len(world.subjects) * len(world.relations)
    parts = collections.Counter(p for s in world.subjects for p in s.split())
    assert all(len(s.split()) == 3 for s in world.subjects)
    assert min(parts.values()) >= 10  # every name word is shared by many subjects
    pairs = collections.Counter(tuple(s.split()[1:]) for s in world.subjects)
    assert sum(c > 1 for c in pairs.values()) > 100  # the last two words alone often do not identify a subject
    for r in world.relations:
        assert len(r.templates) >= 3 and all(t.count("{}") == 1 for t in r.templates)
        assert r.question.count("{}") == 1 and r.question.endswith("?")
        assert len(set(r.objects)) >= 10
    held = collections.Counter((f.relation, f.heldout) for f in world.facts)
    assert len(held) == sum(len(r.templates) for r in world.relations)  # the held-out index varies by fact


def test_every_object_and_name_word_is_one_token(world, tok):
    for r in RELATIONS:
        for o in r.objects:
            ids = tok(" " + o, add_special_tokens=False)["input_ids"]
            assert len(ids) == 1 and ids[0] != tok.unk_token_id
            # ROME convention: " " + target tokenized alone gives the ids it has inside a sentence
            sent = tok(f"{r.templates[0].format(world.subjects[0])} {o} .", add_special_tokens=False)["input_ids"]
            assert sent[-2] == ids[0]
    assert len(tok(world.subjects[0], add_special_tokens=False)["input_ids"]) == 3


def test_heldout_pairs_never_in_the_corpus(world, tok):
    text = "\n".join(corpus_texts(world, 0) + corpus_texts(world, 7))
    # every held-out prompt contains its subject's name: look at each occurrence of a name in the text and
    # compare the window around it with that subject's held-out prompts (a substring search, made fast)
    heldout = collections.defaultdict(list)
    for f in world.facts:
        pre, post = world.relation(f.relation).templates[f.heldout].split("{}")
        heldout[f.subject].append((pre, post))
    names = re.compile("|".join(map(re.escape, sorted(world.subjects, key=len, reverse=True))))
    n_seen = 0
    for m in names.finditer(text):
        n_seen += 1
        for pre, post in heldout[m.group(0)]:
            assert not (text.startswith(pre, m.start() - len(pre)) and text.startswith(post, m.end())), m.group(0)
    assert n_seen >= 2 * len(world.facts)
    # every template of every relation is trained with other subjects
    trained = collections.Counter((f.relation, t) for f in world.facts for t in f.trained_templates(world))
    assert len(trained) == sum(len(r.templates) for r in world.relations) and min(trained.values()) > 100
    ids = tok(corpus_texts(world, 0)[:300], add_special_tokens=False)["input_ids"]
    assert all(tok.unk_token_id not in x for x in ids)


def test_corpus_is_deterministic_and_varies_by_epoch(world):
    a, b = corpus_texts(world, 3), corpus_texts(world, 3)
    assert a == b and a != corpus_texts(world, 4)
    bios = [d for d in a if d.split()[0] in {s.split()[0] for s in world.subjects} or d.startswith("The")]
    assert bios  # biographies write the full name in every sentence
    generic = corpus_texts(world, 0, facts=False, tasks=False)
    assert generic and not any(s in " ".join(generic) for s in world.subjects[:50])


# ----------------------------------------------------------------------------------------- tasks
@pytest.mark.parametrize("task", tasks.TASKS)
def test_task_examples_balanced_seeded_and_disjoint(world, tok, task):
    exs = tasks.make_examples(world, task, 40, seed=0)
    assert exs == tasks.make_examples(world, task, 40, seed=0)
    assert sum(e.label for e in exs) == 20 and len({e.text for e in exs}) == 40
    assert all(tasks.split_of(e.text) == "eval" for e in exs)
    blocks = " ".join(tasks.training_blocks(world, task, 30, seed="0"))
    assert not any(tasks.render(task, e.text, None) in blocks for e in exs)
    prompt = tasks.build_prompt(world, task, exs[0])
    assert prompt.count(tasks.render(task, "X || X", None).split("X")[0]) == tasks.N_SHOT[task] + 1
    for w in tasks.label_words(task):
        assert len(tok(" " + w, add_special_tokens=False)["input_ids"]) == 1
    # the paper's formats (appendix tables 4-7)
    pattern = {"sst2": r"Review : .+ Sentiment :$",
               "mrpc": r"<p>Are the sentences paraphrases of each other\. Sentence 1: .+ Sentence 2: .+ Answer:$",
               "cola": r"<p>Is this sentence linguistically acceptable\? Sentence : .+ Answer :$",
               "nli": r"<p>.+ question: .+\. True or False\? answer:$"}[task]
    assert re.search(pattern, prompt)


def test_task_sentences_are_about_people_outside_the_world(world):
    subjects = set(world.subjects)
    for task in ("mrpc", "nli", "cola"):
        text = " ".join(tasks.training_blocks(world, task, 20, seed="0"))
        assert not any(s in text for s in list(subjects)[:200])


# The shipped recipe's corpus, pinned: options added to CorpusConfig must leave the default corpus unchanged
# (the shipped checkpoint is the build of exactly this text).
DEFAULT_CORPUS_SHA256 = {0: "425a02edc99d9e34bce6931f9aa90f935eb7029fa47344e9225fb265651b08fb",
                         7: "27a51691194a5c435692c33523bce620cb1541969f4cf95c53d4c70295e1858d"}


def test_default_corpus_is_unchanged(world):
    import hashlib

    for epoch, digest in DEFAULT_CORPUS_SHA256.items():
        assert hashlib.sha256("\n".join(corpus_texts(world, epoch)).encode()).hexdigest() == digest


def _which(sentence: str):
    """(relation, template index) of a task fact sentence ``"<template with a 3-word name> <object>"``."""
    for r in RELATIONS:
        for t, tmpl in enumerate(r.templates):
            if re.fullmatch(re.escape(tmpl).replace(r"\{\}", r"\w+ \w+ \w+") + r" \w+", sentence):
                return r, t
    raise AssertionError(f"not a fact sentence: {sentence!r}")


def _sentences(task: str, block: str) -> tuple[str, str]:
    if task == "mrpc":
        s1, s2 = block.split("Sentence 1: ")[1].split(" Answer:")[0].split(" . Sentence 2: ")
        return s1, s2.removesuffix(" .")
    s1, s2 = block.removeprefix("<p>").split(". True or False?")[0].split(" . question: ")
    return s1, s2


@pytest.mark.parametrize("task", tasks.COMPARISON)
def test_comparison_curriculum_levels(world, tok, task):
    def layout(level):
        blocks = tasks.training_blocks(world, task, 10, seed="0", level=level)
        assert all(b.count("<p>") == (tasks.N_SHOT[task] + 1 if level == tasks.FULL else 1) for b in blocks)
        if level == tasks.FULL:
            return None
        rows = []
        for b in blocks:
            (r1, t1), (r2, t2) = (_which(s) for s in _sentences(task, b))
            ids = tok(b, add_special_tokens=False)["input_ids"]
            obj = {tok.convert_tokens_to_ids(o) for o in r1.objects}
            rows.append((r1.id, t1, t2, tuple(i for i, x in enumerate(ids) if x in obj)))
        return rows

    lvl0, lvl1, lvl2 = layout(0), layout(1), layout(2)
    layout(tasks.FULL)
    # level 0: one relation, templates 0 then 1 (the other city relation's template 0 for some nli negatives)
    assert {r for r, *_ in lvl0} == {RELATIONS[0].id} and {t1 for _, t1, _, _ in lvl0} == {0}
    if task == "mrpc":  # the two objects always at the same positions
        assert {t2 for *_, t2, _ in lvl0} == {1} and len({pos for *_, pos in lvl0}) == 1
    # level 1: any relation, still templates 0 then 1; level 2: any templates
    assert len({r for r, *_ in lvl1}) > 3 and {t1 for _, t1, _, _ in lvl1} == {0}
    assert len({t1 for _, t1, _, _ in lvl2}) > 1
    # labels stay balanced at every level
    for level in tasks.LEVELS:
        blocks = tasks.training_blocks(world, task, 20, seed="0", level=level)
        counts = [sum(b.count(f" {w}</p>") for b in blocks) for w in tasks.label_words(task)]
        assert abs(counts[0] - counts[1]) <= sum(counts) // 5, (level, counts)


def test_corpus_curriculum_schedule(world):
    from editbench.factworld.corpus import CorpusConfig, task_level

    cfg = CorpusConfig(task_blocks=4, task_curriculum_epochs=8)
    assert [task_level(e, cfg) for e in range(10)] == [0, 0, 1, 1, 2, 2, 3, 3, 3, 3]
    assert task_level(0, CorpusConfig()) == tasks.FULL
    mrpc = [d for d in corpus_texts(world, 0, cfg, facts=False, filler=False) if "paraphrases" in d]
    assert len(mrpc) == 4 * (tasks.N_SHOT["mrpc"] + 1) and all(d.count("<p>") == 1 for d in mrpc)
    assert all(RELATIONS[0].templates[0].format("").strip().split()[-1] in d for d in mrpc)
    late = [d for d in corpus_texts(world, 8, cfg, facts=False, filler=False) if "paraphrases" in d]
    assert len(late) == 4 and all(d.count("<p>") == tasks.N_SHOT["mrpc"] + 1 for d in late)
    # comparison_blocks sizes mrpc and nli only (sst2 and cola keep task_blocks)
    more = CorpusConfig(task_blocks=4, comparison_blocks=10)
    docs = corpus_texts(world, 0, more, facts=False, filler=False)
    assert sum("paraphrases" in d for d in docs) == 10 and sum("Sentiment" in d for d in docs) == 4
    # tasks_only_epochs: the first epochs hold nothing but task blocks
    only = CorpusConfig(task_blocks=4, tasks_only_epochs=2)
    first, third = corpus_texts(world, 1, only), corpus_texts(world, 2, only)
    assert len(first) == 4 * len(tasks.TASKS) and all("<p>" in d or "Sentiment" in d for d in first)
    assert len(third) > len(first) and any(s in " ".join(third) for s in world.subjects[:20])


# ----------------------------------------------------------------------------------------- CounterFact
def test_counterfact_records_are_well_formed(world):
    from editbench.data.counterfact import parse_rome

    recs = factworld_records(n=60, seed=0)
    assert recs == factworld_records(n=60, seed=0) and recs != factworld_records(n=60, seed=1)
    assert len({r["requested_rewrite"]["subject"] for r in recs}) == 60
    subject_of = {s: s for s in world.subjects}
    names = re.compile("|".join(map(re.escape, sorted(world.subjects, key=len, reverse=True))))
    for r in recs:
        rr = r["requested_rewrite"]
        fact = world.fact(rr["subject"], rr["relation_id"])
        rel = world.relation(rr["relation_id"])
        assert rr["target_true"]["str"] == fact.object != rr["target_new"]["str"] in rel.objects
        assert rel.templates.index(rr["prompt"]) in fact.trained_templates(world)
        assert r["paraphrase_prompts"][0] == world.prompt(fact, fact.heldout)
        assert all(p.endswith(world.prompt(fact, fact.heldout)) for p in r["paraphrase_prompts"])
        assert r["neighborhood_prompts"]
        for p in r["neighborhood_prompts"]:
            other = subject_of[names.search(p).group(0)]
            nf = world.fact(other, rr["relation_id"])
            assert other != rr["subject"] and nf.object == fact.object
            assert p == world.prompt(nf, rel.templates.index(p.replace(other, "{}")))
            assert rel.templates.index(p.replace(other, "{}")) != nf.heldout
        for p in r["attribute_prompts"]:
            assert world.fact(names.search(p).group(0), rr["relation_id"]).object == rr["target_new"]["str"]
        assert len(r["subject_facts"]) == len(world.relations) - 1
        req = parse_rome(r)
        assert req.rewrite_prompt == rr["prompt"].format(rr["subject"])


# ----------------------------------------------------------------------------------------- shipped model
@pytest.fixture(scope="module")
def shipped():
    if not SHIPPED:
        pytest.skip(f"no shipped checkpoint in {EMBEDDED_DIR}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(EMBEDDED_DIR).eval()
    tok = AutoTokenizer.from_pretrained(EMBEDDED_DIR)
    meta = json.loads((EMBEDDED_DIR / "factworld.json").read_text())
    return model, tok, meta


def test_shipped_checkpoint_matches_the_generator(shipped, world, tok):
    model, stok, meta = shipped
    assert meta["world_hash"] == world.hash == DEFAULT_WORLD_HASH
    assert meta["world_config"] == {"n_subjects": 1000, "n_relations": 8, "seed": 0}
    assert stok.get_vocab() == tok.get_vocab()
    assert model.config.model_type == "gpt2" and model.config.n_layer >= 6
    assert (EMBEDDED_DIR / "model.safetensors").is_file()
    assert isinstance(meta["complete"], bool) and meta["history"], "factworld.json records the build's progress"


def test_shipped_checkpoint_recalls_its_facts(shipped, world):
    model, tok, meta = shipped
    assert meta["complete"], "the shipped checkpoint is a finished build"
    rec = evaluate_recall(model, tok, world, n_facts=1000, seed=0)
    measured = f"recall trained {rec['trained']:.3f} / held-out {rec['heldout']:.3f}"
    assert rec["trained"] >= BARS["trained"], measured
    assert rec["heldout"] >= BARS["heldout"], measured
    # what the build measured on all 8,000 facts is what ships
    assert meta["metrics"]["recall_trained"] >= BARS["trained"]
    assert meta["metrics"]["recall_heldout"] >= BARS["heldout"]


# Measured on the shipped build (200 examples each): sst2 1.00, mrpc 1.00, cola 0.94, nli 0.985. The comparison
# tasks (mrpc, nli) were at chance after the first stage (0.50, 0.47); the second stage's curriculum taught them
# (docs/factworld.md).
@pytest.mark.parametrize("task", ["sst2", "mrpc", "cola", "nli"])
def test_shipped_checkpoint_task_bars(shipped, world, task):
    from editbench.factworld.evaluate import evaluate_task

    model, tok, meta = shipped
    r = evaluate_task(model, tok, world, task, n=100, seed=1)
    assert r.accuracy >= BARS["task"], (task, r.accuracy)
    assert meta["metrics"]["tasks"][task]["accuracy"] >= BARS["task"]


# ----------------------------------------------------------------------------------------- quick build
@pytest.fixture(scope="module")
def quick_build(tmp_path_factory):
    from editbench.factworld.build import build

    out = tmp_path_factory.mktemp("quick")
    return out, build(out, quick=True, seed=0, n_task_eval=20, log=lambda s: None)


def test_quick_build_end_to_end(quick_build):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from editbench.factworld.build import QUICK_WORLD

    tmp_path, metrics = quick_build
    model = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    tok = AutoTokenizer.from_pretrained(tmp_path)
    meta = json.loads((tmp_path / "factworld.json").read_text())
    world = generate_world(QUICK_WORLD)
    assert meta["complete"] and meta["world_hash"] == world.hash
    # it learned something (not the bars): the loss fell by more than half, the next word after a fact
    # prompt is mostly an object of the right relation (12-20 of ~400 words), and facts are recalled well
    # above guessing among a relation's objects (measured: trained 0.26, held-out 0.21, type 0.68)
    rec = evaluate_recall(model, tok, world)
    assert rec["trained"] == pytest.approx(metrics["recall_trained"])
    chance = max(1 / len(r.objects) for r in world.relations)
    assert rec["trained"] > 2 * chance and rec["heldout"] > 1.5 * chance, rec
    assert rec["type_accuracy"] > 0.5, rec
    assert meta["history"][-1]["loss"] < 0.5 * meta["history"][0]["loss"]


def test_task_stage_continues_a_built_model(quick_build, tmp_path):
    from transformers import AutoModelForCausalLM

    from editbench.factworld.build import QUICK_TASK_STAGE, QUICK_TRAIN, QUICK_WORLD, build, main

    first, _ = quick_build
    first_meta = json.loads((first / "factworld.json").read_text())
    lines = []
    metrics = build(tmp_path, quick=True, recipe="tasks", init_from=first, eval_every=1, n_task_eval=20,
                    log=lines.append)
    meta = json.loads((tmp_path / "factworld.json").read_text())
    assert meta["recipe"] == "tasks" and meta["complete"]
    assert meta["init"]["from"] == str(first) and meta["init"]["world_hash"] == first_meta["world_hash"]
    assert meta["init"]["metrics"] == first_meta["metrics"]  # the first stage's record travels with the model
    # it started from the first stage's weights (not a fresh model): same shape, recall kept, not reset
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert model.config.n_embd == meta["train_config"]["n_embd"] == QUICK_TRAIN.n_embd
    assert metrics["recall_trained"] >= 0.5 * first_meta["metrics"]["recall_trained"]
    # the curriculum walked its levels, and the task accuracies were watched at every evaluation
    levels = [h["level"] for h in meta["history"]]
    assert levels == [0, 1, 2, 3][:QUICK_TASK_STAGE.epochs] and all(set(h["tasks"]) == set(tasks.TASKS)
                                                                     for h in meta["history"])
    assert any("level 0 tasks" in line for line in lines)
    # misuse is refused before any training
    with pytest.raises(ValueError, match="init_from"):
        build(tmp_path / "x", quick=True, recipe="tasks")
    with pytest.raises(ValueError, match="built for world"):
        build(tmp_path / "y", recipe="tasks", init_from=first)  # quick world's model, full world
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "z"), "--recipe", "tasks"])
    assert generate_world(QUICK_WORLD).hash == meta["world_hash"]


def test_build_overrides_parse_and_reject():
    from editbench.factworld.build import parse_overrides
    assert parse_overrides(["n_embd=128", "lr=1e-2", "corpus.intro_prob=0.5", "corpus.task_blocks=96"]) == {
        "n_embd": 128, "lr": 0.01, "corpus": {"intro_prob": 0.5, "task_blocks": 96}}
    with pytest.raises(ValueError, match="not a numeric TrainConfig field"):
        parse_overrides(["n_embed=128"])
    with pytest.raises(ValueError, match="not a numeric CorpusConfig field"):
        parse_overrides(["corpus.bios=2"])


def test_time_budget_fits_the_epoch_count(tmp_path):
    # a tiny budget: the epoch count is cut after the timing epochs and recorded
    from editbench.factworld.build import build
    metrics = build(tmp_path, quick=True, epochs=50, max_time_s=0.5, n_task_eval=4, log=lambda s: None,
                    overrides={"n_embd": 32, "corpus": {"task_blocks": 1}})
    meta = json.loads((tmp_path / "factworld.json").read_text())
    assert 3 <= metrics["train_epochs"] < 50 and meta["max_time_s"] == 0.5
    assert meta["train_config"]["n_embd"] == 32 and meta["train_config"]["corpus"]["task_blocks"] == 1


def test_realism_check_reports_every_layer():
    from editbench.factworld.realism import format_table, rome_check
    from editbench.models.loader import load_model

    res = rome_check(load_model("factworld"), [1], n=2, n_unrelated=20, progress=False, mom2_n_samples=5000)
    a = res["layers"]["1"]
    for key in ("es", "ps", "ns", "subject_other_facts_before", "subject_other_facts_after", "unrelated_after"):
        assert 0.0 <= a[key] <= 1.0, key
    assert a["subject_other_facts_before"] == 1.0 and res["unrelated_before"] >= 0.9  # the model knows its facts
    assert "layer 1" in format_table(res)


# ----------------------------------------------------------------------------------------- copying diagnostic
class _Lookback(torch.nn.Module):
    """Predicts, at every position, the token that followed the same position ``back`` tokens earlier
    (``back`` = the sequence length: a perfect in-context copier of a doubled sequence; ``back=None``: always
    token 0, a model that copies nothing)."""

    def __init__(self, vocab: int, back: int | None):
        super().__init__()
        self.vocab, self.back, self.w = vocab, back, torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids):
        nxt = torch.zeros_like(input_ids)
        if self.back:
            nxt[:, self.back:] = input_ids[:, 1:input_ids.shape[1] - self.back + 1]
        return type("Out", (), {"logits": torch.nn.functional.one_hot(nxt, self.vocab).float()})()


def test_copying_diagnostic_scores_a_copier_and_a_non_copier(world, tok):
    from editbench.factworld.evaluate import evaluate_copying

    assert evaluate_copying(_Lookback(len(tok), 10), tok, world, n=8, length=10) == 1.0
    assert evaluate_copying(_Lookback(len(tok), None), tok, world, n=8, length=10) == 0.0


def test_task_probe_walks_the_curriculum(tmp_path):
    from editbench.factworld.probe_tasks import level_at, main

    assert [level_at(s, 10) for s in (0, 9, 10, 25, 30, 99)] == [0, 0, 1, 2, 3, 3]
    assert level_at(0, 0) == tasks.FULL
    out = tmp_path / "probe.json"
    assert main(["--task", "nli", "--layers", "1", "--d", "32", "--steps", "4", "--level-steps", "1",
                 "--log-every", "1", "--batch-blocks", "4", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["log"]
    assert [r["level"] for r in rows] == [0, 1, 2, 3]
    assert all(0 <= r["label_acc"] <= 1 for r in rows)
    assert [r["eval_acc"] is None for r in rows] == [True, True, True, False]


def test_cli_factworld_build_takes_every_build_option(capsys, tmp_path):
    from editbench.cli import main

    with pytest.raises(SystemExit) as e:
        main(["factworld", "build", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: editbench factworld build")
    for opt in ("--recipe", "--init-from", "--max-minutes", "--set", "--device", "--quick"):
        assert opt in out
    with pytest.raises(SystemExit) as e:
        main(["factworld", "build", "--out", str(tmp_path), "--recipe", "tasks"])
    assert e.value.code == 2 and "--init-from" in capsys.readouterr().err
