"""The editbench pytest session: options, model cache, gates and results of one pytest run.

:class:`EditbenchSession` is what the plugin's hooks (:mod:`editbench.pytest_plugin`) hand off to: it builds the
run configuration from pytest's options (:class:`editbench.runconfig.RunConfig`, validated before any model loads),
gives the suites an :class:`~editbench.runner.experiment.Experiment` per editor and a model from one cache, keeps
their results in the one schema (:mod:`editbench.runner.results`), writes them at session finish to
``<reports dir>/editbench-<UTC time>.json`` and prints them as a table.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from tabulate import tabulate

from editbench import registry
from editbench.gates import load_thresholds
from editbench.metrics.intervals import format_rate
from editbench.options import REPORTS_DEFAULT
from editbench.pytest_baseline import compare as compare_baseline
from editbench.pytest_shard import ShardPlugin
from editbench.runconfig import THRESHOLDS, RunConfig
from editbench.runner import checks, preflight
from editbench.runner.experiment import ExperimentError, ModelCache, make_editor
from editbench.runner.files import WriteFailed
from editbench.runner.results import write_session

TABLE_HEADERS = ("suite", "editor", "model", "n", "protocol", "ES", "PS", "NS", "score", "em", "pm", "nm", "s/edit",
                 "verdict")
PROTOCOL_ROWS = (("prob", ""), ("token_acc", "_tok"), ("gen", "_gen"))  # metric suffix of each scoring protocol
# the other two scoring protocols (metrics.counterfact TOKEN_ACC_METRICS, GEN_METRICS), one compact column each:
# "es/ps/ns" means to 2 decimals, "-" for one not measured (their intervals are in the JSON too)


class EditbenchSession:
    """Options, model cache, gates and results of one pytest session."""

    def __init__(self, config):
        self.config = config
        self.cfg = cfg = RunConfig.from_pytest(config)
        self.editors_given = cfg.editors
        self.model, self.dataset, self.seed, self.device = cfg.model, cfg.dataset, cfg.seed, cfg.device
        self.n_records, self.n_edits, self.samples = cfg.n_records, cfg.n_edits, cfg.samples
        self.resume, self.reports_dir = cfg.resume, cfg.reports_dir
        # the default ./reports, made by this session: scratch output, git-ignored (see write())
        self.scratch_reports = self.reports_dir == REPORTS_DEFAULT and not Path(REPORTS_DEFAULT).exists()
        self.checkpoint_every, self.on_nonfinite, self.protocols = cfg.checkpoint_every, cfg.on_nonfinite, \
            cfg.protocols
        self.zsre_target, self.directions, self.downstream = cfg.zsre_target, cfg.directions, cfg.downstream
        self.thresholds_path, self.shard, self.record_range = cfg.thresholds_path, cfg.shard, cfg.record_range
        self.worker = (getattr(config, "workerinput", None) or {}).get("workerid")  # pytest-xdist: gw0, gw1, ...
        self.device = _pin_worker_device(self.device, self.worker)
        self.models = ModelCache()
        self.results: list[dict] = []
        self.report_path: Path | None = None
        self.write_error: str | None = None  # the session file could not be written where asked (see write)
        self.baseline_lines: list[str] = []
        self._thresholds: dict | None = None
        self._checked: dict[str, str | None] = {}

    @property
    def hparams(self) -> dict[str, dict]:
        return self.cfg.hparams

    # -- the plugin's hooks hand off here ----------------------------------------------------------------------
    def configure(self) -> "EditbenchSession":
        """pytest_configure: the options validated (not for --help); --shard registers its plugin."""
        if getattr(self.config.option, "help", False):
            return self
        self.validate()
        if self.shard:
            self.config.pluginmanager.register(ShardPlugin(self.shard), "editbench-shard")
        return self

    def modify_items(self, items: list) -> None:
        """pytest_collection_modifyitems: the selected suites' inputs checked; an editor that cannot run on the model
        (MEND with nothing trained for it) a usage error when named, else skipped saying why; one editor's tests kept
        on one pytest-xdist worker (--dist loadgroup); gpu tests skipped, with the reason, without CUDA."""
        self.validate_selected({m for item in items for m in ("single", "sequential") if m in item.keywords})
        editors = {getattr(getattr(item, "callspec", None), "params", {}).get("editor_name") for item in items}
        missing = self.unavailable_editors() if editors - {None} else {}
        for name, why in missing.items():  # asked for by name: a usage error; implied (every editor): a skip
            if name in self.editors_given and name in editors:
                raise pytest.UsageError(f"--editor {name}: {why}")
        for item in items:
            editor = getattr(getattr(item, "callspec", None), "params", {}).get("editor_name")
            if editor is not None:
                item.add_marker(pytest.mark.xdist_group(f"editor-{editor}"))
            if editor in missing:
                item.add_marker(pytest.mark.skip(reason=missing[editor]))
        if not any("gpu" in item.keywords for item in items) or torch.cuda.is_available():
            return
        skip = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False on this machine")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)

    def parametrize(self, metafunc) -> None:
        """pytest_generate_tests: ``editor_name`` over the editors, ``eb_sample`` over the samples."""
        if "editor_name" in metafunc.fixturenames:
            names = self.editor_names()
            metafunc.parametrize("editor_name", names, ids=names, scope="session")
        if "eb_sample" in metafunc.fixturenames:
            samples = list(range(self.samples))
            metafunc.parametrize("eb_sample", samples, ids=[f"sample{s}" for s in samples])

    def worker_done(self, node) -> None:
        """pytest_testnodedown (pytest-xdist controller): a finished worker's results join this session's."""
        payload = (getattr(node, "workeroutput", None) or {}).get("editbench_results")
        if payload:
            self.results.extend(json.loads(payload))

    def terminal_summary(self, reporter) -> None:
        """pytest_terminal_summary: the write error, the results table, the leaderboard, the baseline comparison."""
        if self.write_error:
            reporter.write_line(f"editbench: error: {self.write_error}", red=True)
        if not self.results:
            return
        reporter.write_sep("=", "editbench results")
        reporter.write_line(tabulate(self.table_rows(), headers=TABLE_HEADERS, tablefmt="github"))
        for line in self.summary_lines():
            reporter.write_line(line)
        from editbench.report.build import short_form  # lazy: it loads matplotlib, 0.43 s of every pytest start
        board = short_form(self.results)
        if board:
            reporter.write_sep("-", "editbench leaderboard (this session; `editbench report DIR` for the full one)")
            reporter.write_line(board)
        for line in self.baseline_lines:
            reporter.write_line(line)
        if self.report_path and not self.write_error:
            reporter.write_line(f"results written to {self.report_path}; leaderboard, Table 3 and gallery: "
                                f"editbench report {self.reports_dir}")

    # -- checks before anything loads ----------------------------------------------------------------------
    def validate(self) -> None:
        """Every option checked before any model loads (:meth:`RunConfig.validate`, the rules the CLI uses too): a
        bad one is a usage error (exit 4) naming it and what would be valid."""
        try:
            self.cfg.validate()
        except ExperimentError as e:
            raise pytest.UsageError(str(e)) from None
        self._thresholds = self.cfg.gates

    def validate_selected(self, suites: set[str]) -> None:
        """What needs the selected suites (after collection, before any test): the default dataset of the model;
        per editor, the dataset against the model's tokenizer and the counts; for sequential runs the resume and
        the run directories (:mod:`editbench.runner.preflight`). A usage error (exit 4) naming the problem."""
        if not suites:
            return
        if self.dataset is None:  # the default dataset of the model, checked before any model loads
            exp = self.experiment(sorted(suites)[0], self.editor_names()[0])
            try:
                checks.check_dataset(exp.dataset_name, exp.model)
            except ExperimentError as e:
                raise pytest.UsageError(f"{e} (the default dataset of --model {exp.model!r})") from None
            self._checked[exp.dataset_name] = None
        try:
            for suite in sorted(suites):
                for editor in self.editor_names():
                    exp = self.experiment(suite, editor)
                    preflight.check_representable(exp.model, exp.dataset_name)
                    given = (self.n_records if suite == "single" else self.n_edits) is not None
                    preflight.check_counts(exp, given)
                    if suite == "sequential":
                        preflight.check_resume(exp, range(exp.samples))
                        preflight.check_run_dirs_free(exp, range(exp.samples))
        except ExperimentError as e:
            raise pytest.UsageError(str(e)) from None

    def unavailable_editors(self) -> dict[str, str]:
        """Editor -> why it cannot run on ``--model`` at all (``Editor.unavailable``: MEND with nothing trained for
        the model), asked before any model loads."""
        path = Path(self.model).expanduser()
        model_id = str(path) if path.is_dir() else self.model  # the id load_model gives it
        out = {}
        for name in self.editor_names():
            try:
                ask = getattr(registry.get(name), "unavailable", None)
            except Exception:  # noqa: BLE001 - a plugin that fails to load is reported by its own test
                continue
            why = ask(model_id, self.hparams.get(name, {})) if ask else None
            if why:
                out[name] = why
        return out

    def check_dataset_once(self, exp) -> None:
        """The default dataset (not given on the command line) is checked when the first test needs it: a missing
        shared mirror then fails the tests with one clear line before the model is loaded."""
        name = exp.dataset_name
        if name not in self._checked:
            try:
                checks.check_dataset(name, exp.model)
                self._checked[name] = None
            except ExperimentError as e:
                self._checked[name] = str(e)
        if self._checked[name]:
            pytest.fail(self._checked[name], pytrace=False)

    # -- what suites use -----------------------------------------------------------------------------------
    def editor_names(self) -> list[str]:
        return self.editors_given or registry.available()

    def experiment(self, suite: str, editor: str):
        return self.cfg.experiment(suite, editor, device=self.device)

    def make_editor(self, exp, lm):
        """The experiment's editor for ``lm``; hyperparameters out of range for the loaded model (a preset for
        another model) fail the test with one line."""
        try:
            return make_editor(exp, lm)
        except ExperimentError as e:
            pytest.fail(str(e), pytrace=False)

    def model_for(self, exp):
        self.check_dataset_once(exp)
        return self.models.get(exp.model, exp.device)

    def thresholds(self) -> dict:
        if self._thresholds is None:  # parsed by validate(); here only when validation was skipped (--help)
            self._thresholds = load_thresholds(self.thresholds_path) if self.thresholds_path.exists() else {}
        return self._thresholds

    def record(self, result: dict) -> dict:
        self.results.append(result)
        return result

    # -- session finish ------------------------------------------------------------------------------------
    def finish(self, session, exitstatus: int) -> None:
        """pytest_sessionfinish: a pytest-xdist worker hands its results to the controller; the controller (or a
        serial run) writes the one session file and compares against ``--baseline``."""
        if self.worker is not None:
            session.config.workeroutput["editbench_results"] = json.dumps(self.results, default=str)
            return
        path = self.write(exitstatus)
        if self.write_error and session.exitstatus == 0:
            session.exitstatus = 1  # the results are in the fallback file, not where they were asked for
        status, self.baseline_lines = compare_baseline(session.config, path, self.results)
        if status and not exitstatus:  # an editor worse than --baseline beyond noise (1), or not comparable (4)
            session.exitstatus = status

    def write(self, exitstatus: int) -> Path | None:
        if not self.results:
            return None
        self.results.sort(key=lambda r: str(r.get("test", "")))  # the same file from -n N as from a serial run
        out_dir = Path(self.reports_dir)
        if self.scratch_reports:
            try:  # like .pytest_cache: a run without --reports-dir never shows up in the checkout's `git status`
                out_dir.mkdir(parents=True, exist_ok=True)
                if not (out_dir / ".gitignore").exists():
                    (out_dir / ".gitignore").write_text("# made by editbench (no --reports-dir given): scratch "
                                                        "results, not for committing; pass --reports-dir DIR to keep "
                                                        "them\n*\n")
            except OSError:
                pass  # the results file below says where the results went
        shard = f"-shard{self.shard.replace('/', 'of')}" if self.shard else ""
        path = out_dir / f"editbench-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}{shard}.json"
        try:  # atomic; a name taken by a session finishing in the same second gets _2, _3 ... (both kept)
            self.report_path = write_session(path, self.results, exitstatus, exclusive=True)
        except WriteFailed as e:  # the results go to a fallback file that the error names
            self.write_error, self.report_path = str(e), e.fallback
            return None
        return self.report_path

    def table_rows(self) -> list[list[Any]]:
        """One row per result and scoring protocol (prob, token_acc, gen: the same edits scored three ways), each
        rate with its bootstrap interval, ``0.90 [0.70, 1.00]``, plus `` n=K`` when it is over K records rather
        than the row's n; the magnitudes (prob only) to 3 decimals. Every interval is in the result JSON."""
        rows = []
        for r in self.results:
            m, prov = r["metrics"], r["provenance"]
            cis = ((r.get("details") or {}).get("intervals") or {}).get("post") or {}
            s_edit = r["timings"].get("apply_s_mean")
            head = [r["suite"], (prov.get("editor") or {}).get("name"), (prov.get("model") or {}).get("id"), r["n"]]
            for protocol, suffix in PROTOCOL_ROWS:
                keys = [f"{k}{suffix}" for k in ("es", "ps", "ns")]
                if protocol != "prob" and all(m.get(k) is None for k in keys):
                    continue
                rates = [format_rate(m.get(k), cis.get(k), r["n"]) for k in keys]
                extra = ([format_rate(m.get("score"), cis.get("score"), r["n"])]
                         + [None if m.get(k) is None else round(m[k], 3) for k in ("em", "pm", "nm")]
                         if protocol == "prob" else [None] * 4)
                tail = [None if s_edit is None else round(s_edit, 3), r["verdict"]] if head[0] else [None, ""]
                rows.append(head + [protocol] + rates + extra + tail)
                head = ["", "", "", ""]
        return rows

    def summary_lines(self) -> list[str]:
        """What the terminal summary prints after the table: the interval method, skipped records."""
        lines = []
        methods = [((r.get("details") or {}).get("intervals") or {}).get("method") for r in self.results]
        how = next((m for m in methods if m), None)
        if how:
            lines.append(f"rates: mean over the n records [{how.get('level', 0.95):.0%} {how.get('kind')}, "
                         f"{how.get('n_boot')} resamples, seed {how.get('seed')}]")
        errors = sum(len(r["record_errors"]) for r in self.results)
        if errors:
            lines.append(f"{errors} malformed record(s) were skipped; each is named under 'record_errors' in the "
                         "results file")
        return lines


def _pin_worker_device(device: str, worker: str | None) -> str:
    """Under pytest-xdist with several GPUs, worker gwK takes cuda:(K mod count) for a bare ``--device cuda``."""
    if worker is None or device != "cuda":
        return device
    try:
        count = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no torch CUDA: leave the device as given (checks report it)
        return device
    if count < 2:
        return device
    return f"cuda:{int(worker.lstrip('gw') or 0) % count}"


__all__ = ["EditbenchSession", "PROTOCOL_ROWS", "TABLE_HEADERS", "THRESHOLDS"]
