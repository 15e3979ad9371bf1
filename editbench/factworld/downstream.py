"""The fact world's downstream probe (registered as ``factworld-tasks``): its four in-world few-shot tasks
(:mod:`editbench.factworld.tasks`: sst2, mrpc, cola, nli — the formats of the paper's tables 4-7 on made-up
text) evaluated as the GLUE probe evaluates GLUE (:class:`editbench.metrics.downstream.TaskProbe`: both answer
modes, F1/macro F1/MCC/accuracy with intervals, the chance rule). The same balanced evaluation examples and fixed
demonstrations as :func:`editbench.factworld.evaluate.evaluate_task`, so its ``loglik`` accuracy is that
function's ``accuracy``. Primary mode ``loglik``; ``gen`` generates 3 tokens and looks for the label word."""
from __future__ import annotations

from typing import Sequence

from editbench.factworld import tasks as T
from editbench.factworld.world import load_world
from editbench.metrics.downstream import DownstreamTask, TaskProbe
from editbench.metrics.probes import ProbeContext


def _parser(words: tuple[str, ...]):
    order = sorted(range(len(words)), reverse=True)  # the "positive"/"Yes"/"True" word first, as the GLUE parser

    def parse(text: str) -> int:
        low = text.strip().lower()
        return next((c for c in order if words[c].lower() in low), -1)
    return parse


class WorldTasks(TaskProbe):
    name = "factworld-tasks"
    N = 100
    metrics = {f"{t}.{m}.{k}": "higher" for t in ("sst2", "mrpc", "cola", "nli") for m in ("gen", "loglik")
               for k in ("f1", "macro_f1", "mcc", "acc")}
    metrics.update({f"{t}.f1": "higher" for t in ("sst2", "mrpc", "cola", "nli")})

    @classmethod
    def build(cls, ctx: ProbeContext) -> "WorldTasks":
        return cls.create(ctx.tok, seed=ctx.seed)

    @classmethod
    def create(cls, tok, tasks: Sequence[str] | None = None, n: int | None = None, mode: str = "loglik",
               seed: int = 0, batch_size: int = 64) -> "WorldTasks":
        world = load_world()
        names = list(tasks) if tasks else list(T.TASKS)
        unknown = [t for t in names if t not in T.TASKS]
        if unknown:
            raise ValueError(f"unknown fact-world task(s) {unknown}; known: {', '.join(T.TASKS)}")
        n = n or cls.N
        built, settings = [], {}
        for t in names:
            exs = T.make_examples(world, t, n, seed)
            words = T.label_words(t)
            built.append(DownstreamTask(t, tuple(T.build_prompt(world, t, e) for e in exs),
                                        tuple(e.label for e in exs), words, _parser(words), 3))
            settings[t] = {"shots": T.N_SHOT[t], "mode": mode, "n": n, "gen_len": 3}
        return cls(tok, built, {t: mode for t in names}, settings, batch_size)
