"""The keyword classifier measured against the labelled corpus of replies (tests/fixtures/replies.csv):
the corpus is well formed and large enough to measure, and the classifier meets each goal of
scripts/classifier_report.py, which holds the measurement shared with docs/CLASSIFIER.md."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
from stopgate_server.domain.keywords import Classification, Intent

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))  # the measurement lives there
from classifier_report import ALL, GOALS, LANGUAGES, CorpusError, Goal, Reply, load, measure

REPLIES = load()
MEASUREMENT = measure(REPLIES)


def test_corpus_has_the_shape_needed_to_measure() -> None:
    per_language = Counter(reply.language for reply in REPLIES)
    none = sum(reply.intent is Intent.NONE for reply in REPLIES)
    assert len(REPLIES) >= 1200
    assert {language: per_language[language] for language in LANGUAGES if per_language[language] < 100} == {}
    assert none / len(REPLIES) >= 0.40, f"only {none} of {len(REPLIES)} rows are NONE"
    for language in LANGUAGES:
        labelled = {reply.intent for reply in REPLIES if reply.language == language}
        assert labelled == set(Intent), f"{language} lacks {set(Intent) - labelled}"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("language,country,intent,text\nen,US,NONE,hi\n", "header"),
        ("language,country,intent,text,note\nxx,US,NONE,hi,chatter\n", "unknown language 'xx'"),
        ("language,country,intent,text,note\nen,US,MAYBE,hi,chatter\n", "unknown intent 'MAYBE'"),
        ("language,country,intent,text,note\nen,USA,NONE,hi,chatter\n", "country 'USA'"),
        ("language,country,intent,text,note\nen,US,NONE, ,chatter\n", "line 2: empty text"),
        ("language,country,intent,text,note\nen,US,NONE,hi,\n", "line 2: empty note"),
        ("language,country,intent,text,note\nen,US,NONE,hi,chatter,extra\n", "6 fields"),
        (
            "language,country,intent,text,note\nen,US,OPT_OUT,STOP,keyword\nfr,FR,OPT_OUT, STOP ,keyword\n",
            "line 3: text ' STOP ' already on line 2",
        ),
    ],
)
def test_load_rejects_a_malformed_corpus(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "replies.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError) as raised:
        load(path)
    assert problem in str(raised.value)


def test_measure_counts_precision_and_recall() -> None:
    def reply(language: str, intent: Intent, text: str) -> Reply:
        return Reply(0, language, "XX", intent, text, "note")

    answers = {"stop": Intent.OPT_OUT, "stop by": Intent.OPT_OUT, "quit": Intent.NONE, "help": Intent.HELP}
    replies = [
        reply("en", Intent.OPT_OUT, "stop"),
        reply("en", Intent.NONE, "stop by"),
        reply("fr", Intent.OPT_OUT, "quit"),
        reply("fr", Intent.HELP, "help"),
    ]
    measured = measure(replies, lambda text, _country: Classification(answers[text]))
    opt_out, help_ = measured.scores[ALL, Intent.OPT_OUT], measured.scores[ALL, Intent.HELP]
    assert (opt_out.support, opt_out.predicted, opt_out.correct) == (2, 2, 1)
    assert (opt_out.precision, opt_out.recall) == (0.5, 0.5)
    assert measured.scores["en", Intent.OPT_OUT].recall == 1.0
    assert measured.scores["fr", Intent.OPT_OUT].precision == 1.0  # nothing classified OPT_OUT in fr
    assert (help_.precision, help_.recall) == (1.0, 1.0)
    assert [str(m) for m in measured.missed(Intent.OPT_OUT, "precision")] == [
        "[en] 'stop by': expected NONE, got OPT_OUT"
    ]
    assert [str(m) for m in measured.missed(Intent.OPT_OUT, "recall", "fr")] == [
        "[fr] 'quit': expected OPT_OUT, got NONE"
    ]


@pytest.mark.parametrize(
    ("goal", "scope"),
    [(goal, scope) for goal in GOALS for scope in goal.scopes()],
    ids=lambda value: value.intent.value + "-" + value.metric if isinstance(value, Goal) else value,
)
def test_classifier_meets_goal(goal: Goal, scope: str) -> None:
    value = goal.value(MEASUREMENT, scope)
    missed = MEASUREMENT.missed(goal.intent, goal.metric, scope)
    listing = "\n".join(f"  {miss}  ({miss.reply.note})" for miss in missed)
    assert value >= goal.minimum, (
        f"{goal.intent.value} {goal.metric} in {scope} is {value:.3f}, goal {goal.minimum}; "
        f"{len(missed)} rows misclassified:\n{listing}"
    )
