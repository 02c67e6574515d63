"""The country policy file: the shipped one loads, bad ones are refused with the entry named."""

from __future__ import annotations

from pathlib import Path

import pytest
from stopgate_server.domain.policies import POLICY_FILE, PolicyError, load
from stopgate_server.domain.senders import SenderKind

FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_the_shipped_policies() -> None:
    table = load()
    assert [p.country for p in table.policies] == ["BE", "FR", "*"]
    france, belgium, other = table.for_country("fr"), table.for_country("BE"), table.for_country("GB")
    assert france.requires_mention(SenderKind.ALPHANUMERIC, "MARKETING")
    assert not france.requires_mention(SenderKind.SHORTCODE, "MARKETING")
    assert not france.requires_mention(SenderKind.ALPHANUMERIC, "TRANSACTIONAL")
    assert france.operator_appends_mention
    assert belgium.requires_mention(SenderKind.SHORTCODE, "MARKETING")
    assert not belgium.operator_appends_mention
    assert other.country == "*"
    assert not other.stop_handled
    assert other.unsubscribe_link_advised


VALID_ENTRY = """
[[policy]]
country = "{country}"
stop_handled = true
mention_required_sender_types = [{types}]
mention_required_categories = ["MARKETING"]
operator_appends_mention = false
operator_fills_shortcode = false
mention_text = "STOP 00000"
unsubscribe_link_advised = false
description = "x"
"""


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policies.toml"
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('version = "1"\n' + VALID_ENTRY.format(country="FR", types='"ALPHANUMERIC"'), "default policy"),
        (
            'version = "1"\n'
            + VALID_ENTRY.format(country="*", types="")
            + VALID_ENTRY.format(country="FR", types='"PIGEON"'),
            r"policy\[1\].mention_required_sender_types",
        ),
        (
            'version = "1"\n'
            + VALID_ENTRY.format(country="*", types="")
            + VALID_ENTRY.format(country="*", types=""),
            "listed twice",
        ),
        ('version = "1"\n' + VALID_ENTRY.format(country="France", types=""), r"policy\[0\].country"),
        (VALID_ENTRY.format(country="*", types=""), "version"),
        ('version = "1"\n[[policy]]\ncountry = "*"\n', r"policy\[0\]: missing fields"),
        (
            'version = "1"\n' + VALID_ENTRY.format(country="*", types="").replace("true", '"yes"'),
            "stop_handled",
        ),
        ("version = ", "policies.toml"),
    ],
)
def test_invalid_files_name_the_entry(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load(_write(tmp_path, body))


def test_a_mention_without_stop_loads() -> None:
    table = load(FIXTURES / "policies_spain.toml")
    assert [p.country for p in table.policies] == ["ES", "*"]
    spain = table.for_country("ES")
    assert spain.mention_text == "BAJA 00000"
    assert spain.requires_mention(SenderKind.SHORTCODE, "MARKETING")


@pytest.mark.parametrize(
    ("mention_text", "message"),
    [
        ("   ", "required when a mention is required"),
        ("00000", "needs a word besides the placeholder"),
        ("STOP (00000)", r'would not find "STOP \(00000\)"'),
        ("STOP00000", 'would not find "STOP36180"'),  # found as written, but not once the shortcode is in
        ("BAJA 00000 ?", "would not find"),  # "?" may not follow a mention at the end
    ],
)
def test_a_mention_the_checker_cannot_find_is_refused(
    tmp_path: Path, mention_text: str, message: str
) -> None:
    spain = VALID_ENTRY.format(country="ES", types='"SHORTCODE"').replace("STOP 00000", mention_text)
    body = 'version = "1"\n' + VALID_ENTRY.format(country="*", types="") + spain
    with pytest.raises(PolicyError, match=rf"policy\[1\]\.mention_text: .*{message}"):
        load(_write(tmp_path, body))


def test_the_file_documents_every_field() -> None:
    header = POLICY_FILE.read_text().split("version =")[0]
    for field in (
        "stop_handled",
        "mention_required_sender_types",
        "operator_appends_mention",
        "mention_text",
    ):
        assert field in header
