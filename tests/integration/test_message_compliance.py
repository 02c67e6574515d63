"""MessageCompliance through the gRPC stubs."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from stopgate.v1 import common_pb2, message_compliance_pb2, message_compliance_pb2_grpc

pb = message_compliance_pb2
ALIAS = common_pb2.Sender(address="ACME")
SHORTCODE = common_pb2.Sender(address="36180")
MARKETING = common_pb2.MESSAGE_CATEGORY_MARKETING


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Any:
    return message_compliance_pb2_grpc.MessageComplianceStub(channel)


async def check(stub: Any, text: str, country: str = "FR", **fields: Any) -> pb.MessageAssessment:
    fields.setdefault("sender", ALIAS)
    fields.setdefault("category", MARKETING)
    response = await stub.CheckMessage(
        pb.CheckMessageRequest(text=text, country=country, **fields), timeout=10
    )
    assessment: pb.MessageAssessment = response.assessment
    return assessment


def field_violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    return [v.field for v in bad_request.field_violations]


async def test_france_alias_without_mention_will_be_amended(stub: Any) -> None:
    text = "Soldes d'hiver: -50% sur tout le magasin ce week-end! " + "x" * 100
    result = await check(stub, text, shortcode="36180")
    assert result.verdict == pb.COMPLIANCE_VERDICT_WILL_BE_AMENDED
    assert result.mention_required
    assert result.mention_position == pb.MENTION_POSITION_ABSENT
    assert result.delivered_text == text + " STOP 36180"
    assert (result.segments.parts, result.delivered_segments.parts) == (1, 2)
    assert result.segments.encoding == pb.ENCODING_GSM7
    assert [v.code for v in result.violations] == ["STOP_MENTION_WILL_BE_APPENDED"]
    assert result.violations[0].severity == pb.SEVERITY_ADVISORY
    assert result.suggested_text == text + " STOP 00000"
    again = await check(stub, result.suggested_text, shortcode="36180")
    assert again.verdict == pb.COMPLIANCE_VERDICT_COMPLIANT
    assert again.mention_found == "STOP 00000"
    assert again.delivered_text == text + " STOP 36180"


async def test_france_mention_not_at_the_end_is_non_compliant(stub: Any) -> None:
    result = await check(stub, "STOP au 36180 pour ne plus recevoir nos offres. Soldes -50%!")
    assert result.verdict == pb.COMPLIANCE_VERDICT_NON_COMPLIANT
    assert result.mention_position == pb.MENTION_POSITION_ELSEWHERE
    assert result.violations[0].code == "STOP_MENTION_NOT_AT_END"
    assert result.violations[0].severity == pb.SEVERITY_ERROR
    assert (await check(stub, result.suggested_text)).verdict == pb.COMPLIANCE_VERDICT_COMPLIANT


async def test_france_shortcode_sender_needs_no_mention(stub: Any) -> None:
    result = await check(stub, "Soldes -50%", sender=SHORTCODE)
    assert result.verdict == pb.COMPLIANCE_VERDICT_NOT_APPLICABLE
    assert not result.mention_required


async def test_belgium_missing_mention_is_a_violation(stub: Any) -> None:
    result = await check(stub, "Promo -50% ce week-end", country="BE", sender=SHORTCODE, shortcode="9011")
    assert result.verdict == pb.COMPLIANCE_VERDICT_NON_COMPLIANT
    assert [v.code for v in result.violations] == ["STOP_MENTION_MISSING"]
    assert result.delivered_text == "Promo -50% ce week-end"
    assert result.suggested_text == "Promo -50% ce week-end STOP 9011"
    fixed = await check(stub, result.suggested_text, country="BE", sender=SHORTCODE, shortcode="9011")
    assert fixed.verdict == pb.COMPLIANCE_VERDICT_COMPLIANT


async def test_other_countries_get_the_unsubscribe_link_advice(stub: Any) -> None:
    result = await check(stub, "Big sale this weekend", country="GB")
    assert result.verdict == pb.COMPLIANCE_VERDICT_NOT_APPLICABLE
    assert [(v.code, v.severity) for v in result.violations] == [
        ("UNSUBSCRIBE_LINK_ADVISED", pb.SEVERITY_ADVISORY)
    ]


async def test_ucs2_hints(stub: Any) -> None:
    result = await check(stub, "C’est l’été… " + "a" * 60, country="GB", allow_accent_folding=True)
    assert result.segments.encoding == pb.ENCODING_UCS2
    assert [(c.character, c.replacement, c.occurrences) for c in result.ucs2_characters] == [
        ("’", "'", 2),
        ("…", "...", 1),
    ]  # é is GSM-7
    assert result.replaced_text.startswith("C'est l'été...")
    assert result.parts_saved_by_replacements == 1


async def test_check_messages_answers_each_text_in_order(stub: Any) -> None:
    texts = ["Soldes STOP 00000", "Soldes", "STOP 00000 Soldes"] * 3
    request = pb.CheckMessagesRequest(texts=texts, country="fr", sender=ALIAS, category=MARKETING)
    response = await stub.CheckMessages(request, timeout=10)
    assert [a.verdict for a in response.assessments] == [
        pb.COMPLIANCE_VERDICT_COMPLIANT,
        pb.COMPLIANCE_VERDICT_WILL_BE_AMENDED,
        pb.COMPLIANCE_VERDICT_NON_COMPLIANT,
    ] * 3


async def test_list_country_policies(stub: Any) -> None:
    response = await stub.ListCountryPolicies(pb.ListCountryPoliciesRequest(), timeout=10)
    assert response.version
    assert [p.country for p in response.policies] == ["BE", "FR", "*"]
    france = response.policies[1]
    assert list(france.mention_required_sender_types) == [common_pb2.SENDER_TYPE_ALPHANUMERIC]
    assert list(france.mention_required_categories) == [MARKETING]
    assert france.operator_appends_mention
    assert france.operator_fills_shortcode
    assert not response.policies[0].operator_fills_shortcode
    assert france.mention_text == "STOP 00000"
    assert response.policies[2].unsubscribe_link_advised


@pytest.mark.parametrize(
    ("fields", "violations"),
    [
        ({"text": ""}, ["text"]),
        ({"text": "   "}, ["text"]),
        ({"text": "a" * 1531}, ["text"]),
        ({"text": "ç" * 671}, ["text"]),
        ({"country": ""}, ["country"]),
        ({"country": "XX"}, ["country"]),
        ({"country": "*"}, ["country"]),
        ({"sender": common_pb2.Sender(address="")}, ["sender.address"]),
        ({"category": 0}, ["category"]),
        ({"shortcode": "12"}, ["shortcode"]),
        ({"shortcode": "ABC12"}, ["shortcode"]),
        ({"text": "", "country": "", "category": 0}, ["country", "category", "text"]),
    ],
)
async def test_bad_requests_name_the_field(stub: Any, fields: dict[str, Any], violations: list[str]) -> None:
    values: dict[str, Any] = {"text": "Soldes", "country": "FR", "sender": ALIAS, "category": MARKETING}
    values.update(fields)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CheckMessage(pb.CheckMessageRequest(**values), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == violations


async def test_bad_texts_of_a_batch_are_named_by_position(stub: Any) -> None:
    request = pb.CheckMessagesRequest(texts=["ok", "", "ok"], country="FR", sender=ALIAS, category=MARKETING)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CheckMessages(request, timeout=10)
    assert field_violations(caught.value) == ["texts[1]"]
    too_many = pb.CheckMessagesRequest(texts=["ok"] * 1001, country="FR", sender=ALIAS, category=MARKETING)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CheckMessages(too_many, timeout=10)
    assert field_violations(caught.value) == ["texts"]
