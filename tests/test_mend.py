"""MEND (editbench/editors/mend): the editor network, the gradient factors, meta-training, checkpoints, the editor.

Tiny random models (tiny-gpt2: Conv1D weights; tiny-llama: Linear) for the code paths; one cheap SmolLM2 case for
the shipped network.
"""
from __future__ import annotations

import pytest
import torch

from editbench import registry
from editbench.data.schema import EditRequest
from editbench.editors.base import restore
from editbench.editors.mend import MENDEditor, MENDHParams, MENDNetworkMissing, load_network, save_network
from editbench.editors.mend.factors import gradient_factors, out_in_shape, weight_names
from editbench.editors.mend.network import GradientTransform, MENDNetwork
from editbench.editors.mend.store import PACKAGE_DIR
from editbench.editors.mend.train import MENDTrainer, TrainConfig, build_network
from editbench.editors.mend.train_data import TrainExample, example_from, split_examples
from editbench.models.adapter import ModelAdapter
from editbench.models.tiny import build_tiny
from editbench.models.tokens import target_nll, tokenize_prompt_target

TINY = ["tiny-gpt2", "tiny-llama"]
REQ = EditRequest("r1", "The mother tongue of {} is", "Danielle Darrieux", "English", "French",
                  paraphrase_prompts=("Danielle Darrieux speaks the language",),
                  neighborhood_prompts=("The mother tongue of Jean Gabin is",))
EXAMPLES = [TrainExample(str(i), f"The city of {s} is in", t, (f"The city of {s} is in", f"{s} lies in"),
                         "The sky is", "blue")
            for i, (s, t) in enumerate([("Paris", "Italy"), ("Tokyo", "Spain"), ("Rome", "Japan"),
                                        ("Madrid", "France"), ("Berlin", "Chile"), ("Lima", "Peru")])]


@pytest.fixture(params=TINY)
def tiny(request):
    model, tok = build_tiny(request.param)
    return request.param, model, tok


def _net(model, rank=4, norm=True, edit_lr=1e-3) -> MENDNetwork:
    return build_network(model, MENDHParams(rank=rank, norm=norm, edit_lr=edit_lr, layers=(2, 3)))


def _weight_grads(model, tok, names, req):
    params = dict(model.named_parameters())
    b = tokenize_prompt_target(tok, [req.rewrite_prompt], [req.target_new])
    for n in names:
        params[n].requires_grad_(True)
    loss = target_nll(model(**b.model_inputs()).logits, b).mean()
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    adapter = ModelAdapter(model)
    return {n: (g.T if adapter.conv1d else g) for n, g in zip(names, grads)}  # (out, in)


def test_rank1_factors_sum_to_the_autograd_weight_gradient(tiny):
    _, model, tok = tiny
    names = weight_names(ModelAdapter(model), (1, 3), ("mlp_out", "mlp_in"))
    factors, _ = gradient_factors(model, tok, names, [REQ.rewrite_prompt], [REQ.target_new])
    grads = _weight_grads(model, tok, names, REQ)
    for n in names:
        u, d = factors[n]
        assert u.shape[0] == d.shape[0] >= 1  # the last layer: only the target positions have a gradient
        torch.testing.assert_close(d.T @ u, grads[n], rtol=1e-4, atol=1e-6)


def test_untrained_network_without_norm_is_a_plain_gradient_step(tiny):
    _, model, tok = tiny
    net = _net(model, norm=False, edit_lr=1e-3).eval()
    factors, _ = gradient_factors(model, tok, net.names, [REQ.rewrite_prompt], [REQ.target_new])
    grads = _weight_grads(model, tok, net.names, REQ)
    with torch.no_grad():
        upd = net.updates(factors)
    for n in net.names:  # identity init: U = 0, scale 1, shift 0 -> u~ = u, delta~ = delta (up to the clamp's +0)
        torch.testing.assert_close(upd[n], -1e-3 * grads[n], rtol=1e-4, atol=1e-9)


def test_identity_init_with_norm_outputs_the_normalized_factors():
    gt = GradientTransform(d_in=5, d_out=3, rank=2, n_hidden=1, n_modes=2)
    u, d = torch.randn(40, 5) * 3 + 1, torch.randn(40, 3) * 0.1 - 2
    gt.update_stats(u, d)
    ut, dt = gt(u, d, mode=1)
    torch.testing.assert_close(ut, (u - u.mean(0)) / (u.std(0) + 1e-7), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(dt, (d - d.mean(0)) / (d.std(0) + 1e-7), rtol=1e-4, atol=1e-5)


def test_running_statistics_match_batch_mean_and_unbiased_std():
    gt = GradientTransform(d_in=4, d_out=6, rank=3, n_hidden=0, n_modes=1)
    u, d = torch.randn(57, 4) * 5 + 3, torch.randn(57, 6) * 1e-3
    for chunk in range(0, 57, 10):  # streamed in uneven pieces
        gt.update_stats(u[chunk:chunk + 10], d[chunk:chunk + 10])
    assert float(gt.k) == 57
    torch.testing.assert_close(gt.u_mean, u.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gt.std("u"), u.std(0), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gt.std("d"), d.std(0), rtol=1e-4, atol=1e-9)
    with pytest.raises(RuntimeError, match="at least 2"):
        GradientTransform(2, 2, 1, 0, 1).std("u")


def test_weights_of_one_shape_share_a_transform_with_their_own_mode():
    model, _ = build_tiny("tiny-llama")
    net = build_network(model, MENDHParams(rank=4, layers=(1, 2, 3), modules=("mlp_out", "mlp_in")))
    assert len(net.transforms) == 2 and len(net.edit_lrs) == 6
    assert sorted(m for k, m in net.modes.values() if k == next(iter(net.transforms))) == [0, 1, 2]


def test_training_steps_reduce_the_meta_loss_on_one_example():
    model, tok = build_tiny("tiny-llama")
    net = _net(model)
    tr = MENDTrainer(model, tok, net, EXAMPLES[:1], EXAMPLES[1:2], TrainConfig(lr=1e-2, lr_lr=1e-2, accumulate=1))
    tr.warm_stats()

    def meta_loss():
        out = tr.losses(EXAMPLES[0], training=False)
        return float(0.1 * out["edit"] + out["loc"])

    with torch.no_grad():
        before = meta_loss()
    for _ in range(12):
        tr.train_step()
    with torch.no_grad():
        after = meta_loss()
    assert after < 0.96 * before, (before, after)  # measured 0.671 -> 0.635 (a random tiny model edits weakly)


def test_checkpoint_resume_gives_the_same_state(tmp_path):
    model, tok = build_tiny("tiny-gpt2")
    cfg = TrainConfig(lr=1e-3, accumulate=2, val_every=100)

    def trainer():
        torch.manual_seed(0)
        return MENDTrainer(model, tok, _net(model), EXAMPLES[:5], EXAMPLES[5:], cfg)

    straight = trainer()
    straight.run(6, progress=False, log=lambda s: None)
    half = trainer()
    half.run(4, out_dir=tmp_path, progress=False, log=lambda s: None)
    resumed = trainer()
    resumed.load_checkpoint(tmp_path / "checkpoint")
    assert resumed.step == 4 and resumed.curve == half.curve
    resumed.run(6, progress=False, log=lambda s: None)
    a, b = straight.net.state_dict(), resumed.net.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-7)
    sa, sb = straight.opt.state_dict()["state"], resumed.opt.state_dict()["state"]
    torch.testing.assert_close(sa[0]["exp_avg_sq"], sb[0]["exp_avg_sq"], rtol=1e-5, atol=1e-12)


def test_saved_network_round_trips_and_edits_with_byte_identical_restore(tmp_path):
    model, tok = build_tiny("tiny-llama")
    net = _net(model)
    tr = MENDTrainer(model, tok, net, EXAMPLES[:4], EXAMPLES[4:], TrainConfig(accumulate=1))
    tr.warm_stats()
    tr.train_step()
    save_network(net, tmp_path / "n")
    back = load_network(tmp_path / "n")
    for k, v in net.state_dict().items():
        assert torch.equal(v.cpu(), back.state_dict()[k])
    ed = MENDEditor(MENDHParams(network=str(tmp_path / "n")))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = ed.apply(model, tok, [REQ])
    assert sorted(res.originals) == sorted(net.names)
    changed = [k for k in before if not torch.equal(before[k], model.state_dict()[k])]
    assert changed and set(changed) <= set(net.names)
    restore(model, res.originals)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_missing_network_names_the_model_and_the_train_command(tmp_path):
    from editbench.models.loader import load_model

    lm = load_model("tiny-gpt2")
    ed = registry.create("mend", lm.preset_keys)
    with pytest.raises(MENDNetworkMissing, match=r"tiny-gpt2.*editbench mend train --model tiny-gpt2"):
        ed.prepare(lm.model, lm.tok, cache_dir=tmp_path)
    with pytest.raises(MENDNetworkMissing, match="mend.network"):
        MENDEditor(MENDHParams(network=str(tmp_path))).prepare(lm.model, lm.tok)


def test_a_model_with_nothing_trained_is_one_line_before_anything_loads():
    """Asked for by name: a usage error (exit 4, one line, the train command); implied (every editor): a skip
    with the same line. Never a traceback inside the test."""
    from editbench.editors.mend.store import PACKAGE_DIR

    from test_plugin import run_pytest_many

    assert MENDEditor.unavailable("factworld") is None  # a network ships for it
    assert MENDEditor.unavailable("tiny-llama", {"network": str(PACKAGE_DIR / "factworld")}) is None
    named, implied = run_pytest_many([
        ("suites", "-m", "single", "--model", "tiny-llama", "--editor", "null", "--editor", "mend", "--collect-only"),
        ("suites", "-m", "single", "--model", "tiny-llama", "-k", "mend", "--n-records", "1", "-rs")])
    assert named.returncode == 4 and "Traceback" not in named.stderr, named.stderr
    (line,) = [x for x in named.stderr.splitlines() if x.strip()]
    assert "--editor mend: MEND: nothing trained for model 'tiny-llama'" in line
    assert "train one with `editbench mend train --model tiny-llama" in line
    assert implied.returncode == 0, implied.stderr  # skipped, not failed (the reason shows under -rs)


def test_network_for_another_shape_is_refused(tmp_path):
    gpt2, _ = build_tiny("tiny-gpt2")
    save_network(_net(gpt2), tmp_path)
    llama, tok = build_tiny("tiny-llama")
    with pytest.raises(ValueError, match="this model does not have|expects"):
        MENDEditor(MENDHParams(network=str(tmp_path))).prepare(llama, tok)


def test_training_examples_and_disjoint_split():
    from editbench.data import load_records

    recs = load_records("zsre-train", n=60, seed=0, target="alt", on_error="collect")[0]
    ex = example_from(recs[0])
    assert ex.target == recs[0].meta["alt"] and ex.loc_prompt.startswith("nq question:")
    assert ex.equivalents == (recs[0].rewrite_prompt, recs[0].paraphrase_prompts[0])
    train, val = split_examples(recs, n_val=10)
    assert len(val) == 10 and not {e.case_id for e in train} & {e.case_id for e in val}
    assert example_from(EditRequest("x", "{} is", "A", "B")) is None


def test_cli_refuses_an_evaluated_dataset_and_a_missing_checkpoint(tmp_path, capsys):
    from editbench.cli import main

    assert main(["mend", "train", "--model", "tiny-gpt2", "--dataset", "counterfact"]) == 4
    assert "--allow-eval-overlap" in capsys.readouterr().err
    assert main(["mend", "train", "--model", "tiny-gpt2", "--out", str(tmp_path), "--resume"]) == 4
    assert "no checkpoint" in capsys.readouterr().err


def test_published_presets_name_existing_weights_on_meta_models():
    from transformers import AutoModelForCausalLM, GPT2Config

    from editbench.editors.base import load_preset
    from editbench.models.loader import hub_preset_keys

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(GPT2Config(n_layer=48, n_embd=1600, n_head=25, vocab_size=50257))
    hp = MENDHParams(**load_preset("mend", hub_preset_keys("openai-community/gpt2-xl")))
    assert hp.layers == (45, 46, 47) and hp.modules == ("mlp_in", "mlp_out") and hp.rank == 1920
    adapter, params = ModelAdapter(model), dict(model.named_parameters())
    names = weight_names(adapter, hp.layers, hp.modules)
    assert {out_in_shape(adapter, params[n]) for n in names} == {(6400, 1600), (1600, 6400)}


@pytest.mark.skipif(not (PACKAGE_DIR / "smollm2-135m" / "network.json").is_file(), reason="no shipped network")
def test_shipped_smollm2_network_loads_and_edits_one_real_record():
    from editbench.data import load_records
    from editbench.models.loader import load_model

    lm = load_model("smollm2-135m")
    rec = load_records("counterfact", n=1, seed=0)[0]
    ed = MENDEditor.from_preset(lm.preset_keys)
    ed.prepare(lm.model, lm.tok)
    assert ed.network_dir.startswith(str(PACKAGE_DIR))
    b = tokenize_prompt_target(lm.tok, [rec.rewrite_prompt], [rec.target_new])
    with torch.no_grad():
        before = float(target_nll(lm.model(**b.model_inputs()).logits, b))
    res = ed.apply(lm.model, lm.tok, [rec])
    with torch.no_grad():
        after = float(target_nll(lm.model(**b.model_inputs()).logits, b))
    restore(lm.model, res.originals)
    assert after < before - 0.5, (before, after)


def test_factworld_training_records_avoid_every_evaluated_fact():
    from editbench.factworld import factworld_records
    from editbench.factworld.mend_records import mend_train_records

    key = lambda r: (r["requested_rewrite"]["subject"], r["requested_rewrite"]["relation_id"])  # noqa: E731
    train, evaluated = mend_train_records(), factworld_records()
    assert len(train) == len(evaluated) and not {key(r) for r in train} & {key(r) for r in evaluated}


def test_cli_trains_on_the_fact_world_resumes_and_the_editor_uses_the_result(tmp_path):
    import json

    from editbench.cli import main
    from editbench.models.loader import load_model

    out = tmp_path / "net"
    args = ["mend", "train", "--model", "factworld", "--dataset", "factworld-mend-train", "--n-val", "2",
            "--val-every", "2", "--accumulate", "2", "--rank", "4", "--out", str(out), "--quiet"]
    assert main(args + ["--steps", "2"]) == 0
    assert main(args + ["--steps", "4", "--resume"]) == 0
    curve = json.loads((out / "curve.json").read_text())
    assert [p["step"] for p in curve["validation"]] == [0, 2, 4] and len(curve["train"]) == 4
    assert (out / "curve.png").is_file() and json.loads((out / "network.json").read_text())["rank"] == 4
    lm = load_model("factworld")
    ed = MENDEditor(MENDHParams(network=str(out)))
    res = ed.apply(lm.model, lm.tok, [REQ.with_target("Danish")])
    assert res.stats["network"] == str(out)
    restore(lm.model, res.originals)
