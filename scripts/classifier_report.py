"""Measure the keyword classifier against the labelled corpus of replies and write docs/CLASSIFIER.md
(`make classifier-report`), or check that the committed report is current (`--check`).

The corpus, tests/fixtures/replies.csv, holds replies people send to marketing and service SMS, labelled
by hand (language, country, intent, text, note) independently of the classifier's rules. This module is
the one place where it is read and scored: tests/unit/test_corpus.py imports `load`, `measure` and `GOALS`
from here and fails when a goal is missed; this script writes the same figures as a table.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stopgate_server.domain.keywords import Classification, Intent, classify

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "replies.csv"
REPORT = ROOT / "docs" / "CLASSIFIER.md"
COLUMNS = ("language", "country", "intent", "text", "note")
LANGUAGES = ("en", "fr", "nl", "de", "es", "it", "pt")
MEASURED = (Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP)
ALL = "all"  # the scope of the figures over every language


class CorpusError(ValueError):
    """The corpus file breaks its format; the message lists every faulty line."""


@dataclass(frozen=True)
class Reply:
    """One labelled row of the corpus."""

    line: int  # in the CSV file, for error messages (the header is line 1)
    language: str
    country: str
    intent: Intent
    text: str
    note: str


@dataclass(frozen=True)
class Score:
    """How one intent fares in one scope: rows labelled with it, rows classified as it, and both."""

    support: int
    predicted: int
    correct: int

    @property
    def precision(self) -> float:
        """Share of the rows classified as the intent that are labelled with it (1.0 when none is)."""
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        """Share of the rows labelled with the intent that are classified as it (1.0 when none is)."""
        return self.correct / self.support if self.support else 1.0


@dataclass(frozen=True)
class Miss:
    """A row the classifier got wrong."""

    reply: Reply
    got: Intent

    def __str__(self) -> str:
        reply = self.reply
        return f"[{reply.language}] {reply.text!r}: expected {reply.intent.value}, got {self.got.value}"


@dataclass(frozen=True)
class Measurement:
    """Scores per (scope, intent), scope being a language or `ALL`, and the rows classified wrongly."""

    scores: dict[tuple[str, Intent], Score]
    misses: tuple[Miss, ...]

    def missed(self, intent: Intent, metric: str, scope: str = ALL) -> list[Miss]:
        """The rows that cost `metric` ("recall" or "precision") of `intent` in `scope`."""
        in_scope = [m for m in self.misses if scope in (ALL, m.reply.language)]
        if metric == "recall":
            return [m for m in in_scope if m.reply.intent is intent]
        return [m for m in in_scope if m.got is intent]


@dataclass(frozen=True)
class Goal:
    """A minimum for one figure, over all rows and, when `per_language`, in each language too."""

    intent: Intent
    metric: str  # "precision" or "recall"
    minimum: float
    per_language: bool

    def scopes(self) -> tuple[str, ...]:
        return (ALL, *LANGUAGES) if self.per_language else (ALL,)

    def value(self, measurement: Measurement, scope: str) -> float:
        score = measurement.scores[scope, self.intent]
        return score.precision if self.metric == "precision" else score.recall

    def __str__(self) -> str:
        where = "overall and per language" if self.per_language else "overall"
        return f"{self.intent.value} {self.metric} ≥ {self.minimum} {where}"


# A missed opt-out is a message sent against the law; a false one silences someone who wanted messages.
GOALS = (
    Goal(Intent.OPT_OUT, "recall", 0.99, per_language=True),
    Goal(Intent.OPT_OUT, "precision", 0.995, per_language=True),
    Goal(Intent.OPT_IN, "recall", 0.97, per_language=False),
    Goal(Intent.HELP, "recall", 0.97, per_language=False),
)


def load(path: Path = CORPUS) -> list[Reply]:
    """The corpus rows, validated: exact header, known language and intent, a country, a non-empty text and
    note, no text twice (compared without surrounding spaces). Raises CorpusError listing every problem."""
    problems: list[str] = []
    replies: list[Reply] = []
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if tuple(header or ()) != COLUMNS:
            raise CorpusError(f"{path.name}: header must be {','.join(COLUMNS)}, found {header}")
        for fields in reader:
            line = reader.line_num
            if len(fields) != len(COLUMNS):
                problems.append(f"line {line}: {len(fields)} fields instead of {len(COLUMNS)}")
                continue
            language, country, intent, text, note = fields
            if language not in LANGUAGES:
                problems.append(f"line {line}: unknown language {language!r}")
            if len(country) != 2 or not country.isascii() or not country.isupper():
                problems.append(f"line {line}: country {country!r} is not an ISO 3166 alpha-2 code")
            if intent not in Intent.__members__:
                problems.append(f"line {line}: unknown intent {intent!r}")
            if not text.strip():
                problems.append(f"line {line}: empty text")
            elif text.strip() in first_line:
                problems.append(f"line {line}: text {text!r} already on line {first_line[text.strip()]}")
            else:
                first_line[text.strip()] = line
            if not note.strip():
                problems.append(f"line {line}: empty note")
            if intent in Intent.__members__:
                replies.append(Reply(line, language, country, Intent[intent], text, note))
    if problems:
        raise CorpusError(f"{path.name}: " + "; ".join(problems))
    return replies


def measure(
    replies: Iterable[Reply], classifier: Callable[[str, str], Classification] = classify
) -> Measurement:
    """Classify every reply (with its country) and score each measured intent per language and overall."""
    support: Counter[tuple[str, Intent]] = Counter()
    predicted: Counter[tuple[str, Intent]] = Counter()
    correct: Counter[tuple[str, Intent]] = Counter()
    misses = []
    for reply in replies:
        got = classifier(reply.text, reply.country).intent
        for scope in (ALL, reply.language):
            support[scope, reply.intent] += 1
            predicted[scope, got] += 1
            correct[scope, got] += got is reply.intent
        if got is not reply.intent:
            misses.append(Miss(reply, got))
    scores = {
        (scope, intent): Score(support[scope, intent], predicted[scope, intent], correct[scope, intent])
        for scope in (ALL, *LANGUAGES)
        for intent in (*MEASURED, Intent.NONE)
    }
    return Measurement(scores, tuple(misses))


def kind(note: str) -> str:
    """The kind of row a note names, without its detail: "misspelling (transposed)" -> "misspelling"."""
    return note.split(" (")[0].split(",")[0]


def render(measurement: Measurement, rows: int) -> str:
    """docs/CLASSIFIER.md: the goals and whether they are met, the table, and the misses by kind of row."""
    lines = [
        "<!-- Generated by `make classifier-report` from tests/fixtures/replies.csv. Do not edit by hand:",
        "     change the corpus or the classifier, then run `make classifier-report`. -->",
        "",
        "# Keyword classifier: measured",
        "",
        "Generated by `make classifier-report` (scripts/classifier_report.py) from the labelled corpus",
        f"tests/fixtures/replies.csv ({rows} replies); do not edit by hand. `make lint` fails when this",
        "file differs from what the script would write; tests/unit/test_corpus.py fails while a goal",
        "is missed.",
        "",
        "## Goals",
        "",
        "| goal | lowest measured | status |",
        "|---|---|---|",
    ]
    for goal in GOALS:
        lowest = min(goal.scopes(), key=lambda scope: goal.value(measurement, scope))
        value = goal.value(measurement, lowest)
        status = "met" if value >= goal.minimum else "missed"
        lines.append(f"| {goal} | {value:.3f} ({lowest}) | {status} |")
    lines += [
        "",
        "## Precision and recall per language",
        "",
        "Support: replies labelled with the intent. NONE (ordinary replies, chatter, negated and incidental",
        "keywords) is not scored as an intent; its rows count against the precision of the others.",
        "",
        "| language | intent | precision | recall | support |",
        "|---|---|---|---|---|",
    ]
    for scope in (*LANGUAGES, ALL):
        for intent in MEASURED:
            score = measurement.scores[scope, intent]
            lines.append(
                f"| {scope} | {intent.value} | {score.precision:.3f} | {score.recall:.3f} | {score.support} |"
            )
    lines += [
        "",
        "## Misses by kind of row",
        "",
        "The rows themselves: `pytest tests/unit/test_corpus.py`.",
        "",
    ]
    if measurement.misses:
        lines += ["| expected | got | row kind | misses |", "|---|---|---|---|"]
        kinds = Counter((m.reply.intent.value, m.got.value, kind(m.reply.note)) for m in measurement.misses)
        for (expected, got, note), count in sorted(kinds.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"| {expected} | {got} | {note} | {count} |")
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when docs/CLASSIFIER.md is out of date")
    args = parser.parse_args(argv)
    replies = load()
    report = render(measure(replies), len(replies))
    if args.check:
        current = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
        if current != report:
            print(f"{REPORT.relative_to(ROOT)} is out of date, run `make classifier-report`", file=sys.stderr)
            return 1
        return 0
    REPORT.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
