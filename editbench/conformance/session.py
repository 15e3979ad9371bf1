"""Checks that an editor leaves a shared session as it found it (one model, one tokenizer, one process for every
editor and every edit of a session), beyond the weights that :func:`~editbench.conformance.checks.restore` puts
back. Each raises an ``AssertionError`` saying what was left changed.

=================================  =================================================================================
:func:`check_session_hygiene`      after ``prepare`` and a sequence of edits (A, restore, ``reset()``, B, restore),
                                   nothing observable has changed: the tokenizer (padding / truncation side, pad and
                                   other special tokens, vocabulary size, max length, the fast backend's padding and
                                   truncation settings); every parameter's ``requires_grad`` and ``.grad`` (None);
                                   every module's train/eval mode and hooks; the model's ``config`` and
                                   ``generation_config``; torch's process-wide switches (grad mode, default dtype,
                                   threads, deterministic algorithms); and the **global RNG states** of torch,
                                   numpy and ``random``, which must be exactly as found (an editor draws from its
                                   own ``torch.Generator`` seeded from its ``seed`` hyperparameter, or wraps code
                                   that uses the global generators in ``torch.random.fork_rng`` /
                                   :func:`editbench.editors.toolkit.preserve_global_rng`)
:func:`check_no_module_state`      no process-wide state decides an edit: the same edit by fresh editors on fresh
                                   models gives the same weights however many edits ran before in the process, and
                                   a model whose weights changed under the same name/path (``config._name_or_path``,
                                   ``tok.name_or_path``) gets the same edit as that model seen for the first time
                                   (a cache keyed by the model's path, not its content, fails this); another
                                   editor (FT-C) edits in between
:func:`check_generation_after_edits`  after k = 3 edits (A, B, A), each restored, the model's greedy generation,
                                   its seeded top-k sampling (ROME/MEMIT's context templates) and the scorer's
                                   target log-probabilities are those of the untouched model
=================================  =================================================================================
"""
from __future__ import annotations

import random
import uuid
from typing import Any, Callable

import numpy as np
import torch

from editbench.editors.base import restore
from editbench.models.identity import register_identity
from editbench.models.loader import LoadedModel, load_model, state_hash
from editbench.models.tokens import target_log_probs, tokenize_prompt_target

Make = Callable[[LoadedModel], Any]
TOKENIZER_ATTRS = ("padding_side", "truncation_side", "pad_token", "pad_token_id", "eos_token", "bos_token",
                   "unk_token", "sep_token", "cls_token", "mask_token", "model_max_length", "add_bos_token",
                   "add_eos_token", "chat_template", "clean_up_tokenization_spaces", "split_special_tokens")
OTHER_EDITOR = "ft-c"  # check_no_module_state runs it between two identical edits of the editor under test
SEQUENCE = 3  # edits in check_generation_after_edits: A, B, A
GEN_PROMPTS = ("The mother tongue of Danielle Darrieux is", "Toko Yasuda lives in")


# -- what a session shares -------------------------------------------------------------------------------------
def tokenizer_state(tok: Any) -> dict[str, Any]:
    """Everything about a tokenizer another editor or the scorer depends on, as comparable values."""
    out = {a: repr(getattr(tok, a, None)) for a in TOKENIZER_ATTRS}
    out["special_tokens_map"] = repr(getattr(tok, "special_tokens_map", None))
    out["len"] = len(tok) if hasattr(tok, "__len__") else None
    backend = getattr(tok, "_tokenizer", None) or getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        out["backend.padding"] = repr(getattr(backend, "padding", None))
        out["backend.truncation"] = repr(getattr(backend, "truncation", None))
    out["encode"] = repr(tok(GEN_PROMPTS[0])["input_ids"])
    return out


def model_state(model: torch.nn.Module) -> dict[str, Any]:
    """requires_grad and .grad of every parameter, train/eval mode and hooks of every module, config and
    generation config (not the weights: restore's business)."""
    out: dict[str, Any] = {}
    for n, p in model.named_parameters():
        out[f"{n}.requires_grad"] = p.requires_grad
        out[f"{n}.grad"] = None if p.grad is None else "a tensor (left by backward)"
    for n, m in model.named_modules():
        n = n or "<model>"
        out[f"{n}.training"] = m.training
        for kind in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            hooks = getattr(m, kind, None)
            if hooks:
                out[f"{n}.{kind.strip('_')}"] = len(hooks)
    out["config"] = model.config.to_json_string(use_diff=False) if hasattr(model, "config") else None
    gc = getattr(model, "generation_config", None)
    out["generation_config"] = gc.to_json_string(use_diff=False) if gc is not None else None
    return out


def torch_switches() -> dict[str, Any]:
    return {"grad_enabled": torch.is_grad_enabled(), "inference_mode": torch.is_inference_mode_enabled(),
            "default_dtype": str(torch.get_default_dtype()), "num_threads": torch.get_num_threads(),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "anomaly_detection": torch.is_anomaly_enabled()}


def rng_states() -> dict[str, Any]:
    npy = np.random.get_state()
    return {"torch": torch.get_rng_state().clone(), "numpy": (npy[0], npy[1].copy(), *npy[2:]),
            "random": random.getstate()}


def _same_rng(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same_rng(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def _diff(now: dict, ref: dict, limit: int = 5) -> list[str]:
    keys = [k for k in ref if k not in now or now[k] != ref[k]] + [k for k in now if k not in ref]
    return [f"{k}: {ref.get(k, '<absent>')!s:.80} -> {now.get(k, '<absent>')!s:.80}" for k in keys[:limit]] + \
        ([f"... and {len(keys) - limit} more"] if len(keys) > limit else [])


def _edit_sequence(editor: Any, lm: LoadedModel, requests) -> None:
    from editbench.conformance.common import _apply
    for req in requests:
        restore(lm.model, _apply(editor, lm, [req]).originals)
        editor.reset()


# -- the checks ------------------------------------------------------------------------------------------------
def check_session_hygiene(make: Make, family: str) -> None:
    from editbench.conformance.common import REQ_A, REQ_B
    from editbench.conformance.common import ambient_rng
    lm = load_model(family)
    tok0, model0, switches0 = tokenizer_state(lm.tok), model_state(lm.model), torch_switches()
    with ambient_rng(1234):  # the caller's generators are put back afterwards
        rng0 = rng_states()
        editor = make(lm)
        name = editor.name
        editor.prepare(lm.model, lm.tok)
        _edit_sequence(editor, lm, [REQ_A, REQ_B])
        rng1 = rng_states()
    problems = []
    for what, now, ref in (("the tokenizer", tokenizer_state(lm.tok), tok0),
                           ("the model (requires_grad, .grad, train/eval mode, hooks, config)",
                            model_state(lm.model), model0),
                           ("torch's process-wide switches", torch_switches(), switches0)):
        d = _diff(now, ref)
        if d:
            problems.append(f"{what}: " + "; ".join(d))
    moved = [k for k in rng0 if not _same_rng(rng0[k], rng1[k])]
    if moved:
        problems.append(f"the global RNG state of {', '.join(moved)} (draw from a torch.Generator seeded from the "
                        "editor's seed, or wrap the code that uses the global generators in "
                        "editbench.editors.toolkit.preserve_global_rng(); never reseed them)")
    assert not problems, (f"{name} on {family}: prepare + 2 edits (each restored) left changed state shared by every "
                          "editor of a session: " + " | ".join(problems))


def _variant(family: str, name_or_path: str, perturb: bool) -> LoadedModel:
    """``family``'s model under another name/path; ``perturb``: every weight matrix scaled by a seeded factor in
    [0.8, 1.2] per row (a different model behind the same name), its content hash registered as a new one."""
    lm = load_model(family)
    if perturb:
        g = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for p in lm.model.parameters():
                if p.dim() == 2:
                    p.mul_(0.8 + 0.4 * torch.rand(p.shape[0], 1, generator=g).to(p.dtype))
        lm.model_hash = state_hash(lm.model)
        register_identity(lm.model, lm.model_id, lm.model_hash)
    lm.model.config._name_or_path = name_or_path
    try:
        lm.tok.name_or_path = name_or_path
    except AttributeError:
        pass
    return lm


def _other_editor(lm: LoadedModel) -> Any:
    from editbench import registry
    return registry.create(OTHER_EDITOR, model_keys=lm.preset_keys)


def _edited(make: Make, lm: LoadedModel, request) -> dict[str, torch.Tensor]:
    from editbench.conformance.common import _apply, snapshot
    editor = make(lm)
    editor.prepare(lm.model, lm.tok)
    _apply(editor, lm, [request])
    out = snapshot(lm.model)
    out["<editor name>"] = editor.name
    return out


def check_no_module_state(make: Make, family: str) -> None:
    from editbench.conformance.common import REQ_A, REQ_B, assert_same
    path = f"/conformance/{family}-{uuid.uuid4().hex[:8]}"  # a path no cache in this process has seen
    first = _edited(make, _variant(family, path, perturb=False), REQ_A)
    changed = _edited(make, _variant(family, path, perturb=True), REQ_A)            # same path, other weights
    clean = _edited(make, _variant(family, path + "-b", perturb=True), REQ_A)      # those weights, a new path
    _edited(_other_editor, _variant(family, path + "-c", perturb=False), REQ_B)     # another editor in between
    again = _edited(make, _variant(family, path, perturb=False), REQ_A)             # the first model again
    name = first.pop("<editor name>")
    for snap in (changed, clean, again):
        snap.pop("<editor name>")
    assert_same(again, first, f"{name} on {family}: the same edit by a fresh editor on a fresh model differs after "
                f"other edits (its own and {OTHER_EDITOR}'s) ran in the process: {{diff}} (module-level state leaks "
                "into the next edit or editor)")
    assert_same(changed, clean, f"{name} on {family}: a model whose weights changed under the same name/path got a "
                "different edit than the same weights under a new path: {diff} (state kept across models, e.g. a "
                "cache keyed by the model's path or name; key it by the model's content hash, "
                "editbench.models.identity, or keep it on the editor instance)")


def behaviour(lm: LoadedModel) -> dict[str, Any]:
    """Greedy generation, seeded top-k sampling of context templates and target log-probs of the model now."""
    from editbench.conformance.common import REQ_A, REQ_B
    from editbench.editors.toolkit.templates import sample_texts
    model, tok = lm.model, lm.tok
    with torch.no_grad():
        greedy = []
        for prompt in GEN_PROMPTS:
            ids = tok(prompt, return_tensors="pt")
            out = model.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.eos_token_id)
            greedy.append(out[0].tolist())
        templates = sample_texts(model, tok, 4, 6, 5, torch.Generator().manual_seed(0))
        reqs = [REQ_A, REQ_B]
        batch = tokenize_prompt_target(tok, [r.prompt.format(r.subject) for r in reqs],
                                       [r.target_new for r in reqs])
        logp = target_log_probs(model(**batch.model_inputs()).logits, batch).float()
    return {"greedy": greedy, "templates": templates, "log_probs": logp}


def check_generation_after_edits(make: Make, family: str) -> None:
    from editbench.conformance.common import REQ_A, REQ_B
    lm = load_model(family)
    ref = behaviour(lm)
    editor = make(lm)
    editor.prepare(lm.model, lm.tok)
    _edit_sequence(editor, lm, [REQ_A, REQ_B, REQ_A][:SEQUENCE])
    now = behaviour(lm)
    problems = []
    if now["greedy"] != ref["greedy"]:
        problems.append(f"greedy generation {lm.tok.batch_decode(ref['greedy'])} became "
                        f"{lm.tok.batch_decode(now['greedy'])}")
    if now["templates"] != ref["templates"]:
        problems.append(f"seeded context-template sampling {ref['templates'][:2]} became {now['templates'][:2]}")
    if not torch.allclose(now["log_probs"], ref["log_probs"], atol=1e-5, rtol=1e-5):
        d = (now["log_probs"] - ref["log_probs"]).abs().max().item()
        problems.append(f"the scorer's target log-probabilities moved (max |diff| {d:.3g})")
    assert not problems, (f"{editor.name} on {family}: after {SEQUENCE} edits, each restored, the model does not "
                          "behave as before: " + "; ".join(problems))
