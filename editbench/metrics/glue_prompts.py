"""The seed paper's few-shot GLUE prompts (Gupta et al. 2024, appendix A.3, tables 4-7), verbatim, and answer parsing.

**Templates.** Each task's demonstrations are the table's examples, in the table's order, rendered exactly as the
table prints them and joined by one space; the query is the demonstration format without its answer, ending at
the answer cue (``Sentiment :``, ``Answer:``, ``Answer :``, ``answer:``) so the model's next token is the answer::

    SST-2  Review : {sentence} Sentiment : {negative|positive}
    MRPC   <p>Are the sentences paraphrases of each other. Sentence 1: {s1} Sentence 2: {s2} Answer: {No|Yes}</p>
    CoLA   <p>Is this sentence linguistically acceptable? Sentence : {sentence} Answer : {No|Yes}</p>
    RTE    <p>{premise} question: {hypothesis} True or False? answer: {True|False}</p>     (table 7, "NLI")

``shots=k`` uses the table's first k demonstrations (the paper: 4, 6, 6, 3 — all of them). Two details of the
printed tables are not text the model should see: MRPC's ``\\$`` is LaTeX's escape of ``$`` (the GLUE sentence has
``$``), and CoLA's query row ends in ``</p>`` after ``Answer :`` — the query stops at the cue, as the other tables'
rows and the authors' code (``glue_eval/*_eval.py`` of scalable-model-editing/unified-model-editing) do. The
authors' code writes its demonstrations on separate lines; the paper's tables (what this module reproduces) print
them on one line, with ``<p>`` marks.

**Labels.** Label indices are the GLUE ones of :mod:`editbench.data.tasks`: SST-2 0 negative / 1 positive, MRPC 0
not equivalent / 1 equivalent, CoLA 0 unacceptable / 1 acceptable, RTE 0 entailment / 1 not entailment — so RTE's
label words are ("True", "False") in index order.

**Parsing** (answer mode ``gen``), as the authors' ``_get_answer``: the generated continuation is lowercased and
the task's label words are looked for as substrings, in the authors' order (SST-2: positive, negative; MRPC and
CoLA: yes, no; RTE: false, true); the first found is the prediction, none found is -1 (unparseable, counted wrong).
The number of tokens generated is the authors' ``gen_len``: 3, but 10 for CoLA.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GluePrompt:
    task: str
    demos: tuple[tuple[tuple[str, ...], int], ...]  # ((fields...), label index) in the table's order
    label_words: tuple[str, ...]                    # label index -> the word the model answers with
    parse_order: tuple[int, ...]                    # label indices in the order the parser looks for them
    gen_len: int                                    # tokens generated in answer mode "gen"

    @property
    def max_shots(self) -> int:
        return len(self.demos)

    def render(self, fields: tuple[str, ...] | list[str], label: int | None = None) -> str:
        """One example in the table's format; ``label=None`` is the query (ends at the answer cue)."""
        ans = "" if label is None else f" {self.label_words[label]}"
        close = "" if label is None else "</p>"
        if self.task == "sst2":
            return f"Review : {fields[0]} Sentiment :{ans}"
        if self.task == "mrpc":
            return (f"<p>Are the sentences paraphrases of each other. Sentence 1: {fields[0]} Sentence 2: {fields[1]} "
                    f"Answer:{ans}{close}")
        if self.task == "cola":
            return f"<p>Is this sentence linguistically acceptable? Sentence : {fields[0]} Answer :{ans}{close}"
        if self.task == "rte":
            return f"<p>{fields[0]} question: {fields[1]} True or False? answer:{ans}{close}"
        raise KeyError(self.task)

    def demonstrations(self, shots: int) -> str:
        if not 0 <= shots <= self.max_shots:
            raise ValueError(f"{self.task}: shots must be in 0..{self.max_shots} (the paper's table has "
                             f"{self.max_shots} demonstrations), got {shots}")
        return " ".join(self.render(f, y) for f, y in self.demos[:shots])

    def prompt(self, fields: tuple[str, ...] | list[str], shots: int) -> str:
        """The few-shot prompt: the first ``shots`` demonstrations, then the query."""
        demos = self.demonstrations(shots)
        query = self.render(fields)
        return f"{demos} {query}" if demos else query

    def parse(self, continuation: str) -> int:
        """Label index named by a generated continuation, or -1 (the authors' substring rule, their order)."""
        text = continuation.strip().lower()
        for label in self.parse_order:
            if self.label_words[label].lower() in text:
                return label
        return -1


PROMPTS: dict[str, GluePrompt] = {p.task: p for p in [
    GluePrompt("sst2", (
        (("excruciatingly unfunny and pitifully unromantic",), 0),
        (("rich veins of funny stuff in this movie",), 1),
        (("by far the worst movie of the year",), 0),
        (("fashioning an engrossing entertainment out",), 1),
    ), ("negative", "positive"), (1, 0), 3),
    GluePrompt("mrpc", (
        (("Mr McDevitt has been granted control of three crucial aspects of policing in the Solomons.",
          "Mr McDevitt has been granted control of three aspects of policing by Commissioner William Morrell."), 0),
        (("The notification was first reported Friday by MSNBC.",
          "MSNBC.com first reported the CIA request on Friday."), 1),
        (("In 2002, Linksys overtook Cisco Systems as the leading wireless equipment vendor, accounting for 14.1 "
          "percent of revenue.",
          "Rolfe said Linksys overtook Cisco Systems last year as the leading supplier of WLAN equipment."), 0),
        (('"The anticipated global sales improvement in the month of June did not materialize", said Chief '
          'Financial Officer Robert Rivet.',
          '"The anticipated global sales improvement in the month of June did not materialize as we had '
          'anticipated", the company said.'), 1),
        (("That compared with $ 35.18 million, or 24 cents per share, in the year-ago period.",
          "Earnings were affected by a non-recurring $8 million tax benefit in the year-ago period."), 0),
        (("They had published an advertisement on the Internet on June 10, offering the cargo for sale, he added.",
          "On June 10, the ship's owners had published an advertisement on the Internet, offering the explosives "
          "for sale."), 1),
    ), ("No", "Yes"), (1, 0), 3),
    GluePrompt("cola", (
        (("Bill pushed Harry off the sofa for hours.",), 0),
        (("Bill floated down the river for hours.",), 1),
        (("It is important for the more you eat, the more careful you to be.",), 0),
        (("It is important for you to be more careful, the more you eat.",), 1),
        (("Mary will believe Susan, and you will Bob.",), 1),
        (("You will Bob believe.",), 0),
    ), ("No", "Yes"), (1, 0), 10),
    GluePrompt("rte", (
        (("Cyrus captured Babylon without a battle, and remedied the evils done by previous Assyrian and Babylonian "
          "rulers by sending prisoners in Babylonia back to their original homelands and aiding in the restoration "
          "of temples of the gods of various nations.",
          "Babylon surrendered to Cyrus without going to battle."), 1),
        (("Successful plaintiffs recovered punitive damages in Texas discrimination cases 53% of the time.",
          "Legal costs to recover punitive damages are a deductible business expense."), 0),
        (("The gastric bypass operation, also known as stomach stapling, has become the most common surgical "
          "procedure for treating obesity.",
          "Obesity is medically treated."), 1),
    ), ("True", "False"), (1, 0), 3),
]}
PAPER_SHOTS = {"sst2": 4, "mrpc": 6, "cola": 6, "rte": 3}
