"""MessageCompliance: STOP mention and SMS parts of campaign texts, per destination country."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stopgate.v1 import common_pb2, message_compliance_pb2, message_compliance_pb2_grpc

from stopgate_server.api.validation import Violations
from stopgate_server.domain import compliance, phones, segments
from stopgate_server.domain.policies import DEFAULT_COUNTRY, PolicyTable
from stopgate_server.turns import in_turns

pb = message_compliance_pb2
MAX_TEXTS = 1000
TEXTS_PER_CHUNK = 10  # assessed between two looks at the clock (the longest texts take the longest)


_ENCODINGS = {e: pb.Encoding.Value(f"ENCODING_{e.value}") for e in segments.Encoding}
_VERDICTS = {v: pb.ComplianceVerdict.Value(f"COMPLIANCE_VERDICT_{v.value}") for v in compliance.Verdict}
_POSITIONS = {p: pb.MentionPosition.Value(f"MENTION_POSITION_{p.value}") for p in compliance.Position}
_SEVERITIES = {s: pb.Severity.Value(f"SEVERITY_{s.value}") for s in compliance.Severity}


def _fill_segments(target: pb.SegmentInfo, value: segments.Segments) -> None:
    target.encoding = _ENCODINGS[value.encoding]
    target.units = value.units
    target.parts = value.parts
    target.units_per_part = value.units_per_part
    target.remaining_in_last_part = value.remaining_in_last_part


def _fill_assessment(target: pb.MessageAssessment, result: compliance.Assessment) -> None:
    """Write an assessment into a message of the response in place (no intermediate messages to copy)."""
    target.verdict = _VERDICTS[result.verdict]
    for violation in result.violations:
        target.violations.add(
            code=violation.code, message=violation.message, severity=_SEVERITIES[violation.severity]
        )
    target.mention_required = result.mention_required
    target.mention_position = _POSITIONS[result.mention.position]
    target.mention_found = result.mention.text
    _fill_segments(target.segments, result.segments)
    target.suggested_text = result.suggested_text
    _fill_segments(target.suggested_segments, result.suggested_segments)
    target.delivered_text = result.delivered_text
    _fill_segments(target.delivered_segments, result.delivered_segments)
    for character in result.ucs2_characters:
        target.ucs2_characters.add(
            character=character.character,
            replacement=character.replacement,
            occurrences=character.occurrences,
        )
    target.replaced_text = result.replaced_text
    target.parts_saved_by_replacements = result.parts_saved_by_replacements


class MessageComplianceServicer(message_compliance_pb2_grpc.MessageComplianceServicer):
    def __init__(self, policies: PolicyTable, max_parts: int) -> None:
        self.policies = policies
        self.max_parts = max_parts
        self.max_characters = max_parts * segments.GSM7_MULTI  # cheap bound checked before counting

    async def CheckMessage(self, request: pb.CheckMessageRequest, context: Any) -> pb.CheckMessageResponse:
        response = pb.CheckMessageResponse()
        (result,) = await self._check([request.text], "text", request)
        _fill_assessment(response.assessment, result)
        return response

    async def CheckMessages(self, request: pb.CheckMessagesRequest, context: Any) -> pb.CheckMessagesResponse:
        response = pb.CheckMessagesResponse()
        for result in await self._check(request.texts, "texts", request):
            _fill_assessment(response.assessments.add(), result)
        return response

    async def ListCountryPolicies(
        self, request: pb.ListCountryPoliciesRequest, context: Any
    ) -> pb.ListCountryPoliciesResponse:
        return pb.ListCountryPoliciesResponse(
            version=self.policies.version,
            policies=[
                pb.CountryPolicy(
                    country=p.country,
                    stop_handled=p.stop_handled,
                    mention_required_sender_types=sorted(
                        common_pb2.SenderType.Value(f"SENDER_TYPE_{kind.value}")
                        for kind in p.mention_required_sender_types
                    ),
                    mention_required_categories=sorted(
                        common_pb2.MessageCategory.Value(f"MESSAGE_CATEGORY_{name}")
                        for name in p.mention_required_categories
                    ),
                    operator_appends_mention=p.operator_appends_mention,
                    operator_fills_shortcode=p.operator_fills_shortcode,
                    mention_text=p.mention_text,
                    unsubscribe_link_advised=p.unsubscribe_link_advised,
                    description=p.description,
                )
                for p in self.policies.policies
            ],
        )

    def _too_long(self, texts: Sequence[str]) -> list[bool]:
        return [len(t) > self.max_characters or segments.count(t).parts > self.max_parts for t in texts]

    async def _check(
        self, texts: Any, field: str, request: pb.CheckMessageRequest | pb.CheckMessagesRequest
    ) -> list[compliance.Assessment]:
        """Validate a request (one text or many) and assess each of its texts."""
        violations = Violations()
        single = field == "text"
        if not single and not 1 <= len(texts) <= MAX_TEXTS:
            violations.add(field, f"1 to {MAX_TEXTS} texts are required (got {len(texts)})")
        country = request.country.upper()
        if not country:
            violations.add("country", "required")
        elif country == DEFAULT_COUNTRY or not phones.is_region(country):
            violations.add("country", "must be an ISO 3166-1 alpha-2 country code such as FR")
        sender = violations.sender("sender", request.sender, request.HasField("sender"))
        violations.enum("category", request.category, common_pb2.MessageCategory)
        shortcode = violations.shortcode("shortcode", request.shortcode)
        if sender is not None and sender.reply_shortcode:
            if shortcode and shortcode != sender.reply_shortcode:
                violations.add("shortcode", "differs from sender.reply_shortcode; set one of them")
            shortcode = sender.reply_shortcode
        too_long = await in_turns(self._too_long, texts, TEXTS_PER_CHUNK)
        for position, (text, long) in enumerate(zip(texts, too_long, strict=True)):
            name = field if single else f"{field}[{position}]"
            if not text.strip():
                violations.add(name, "required")
            elif long:
                violations.add(name, f"longer than {self.max_parts} SMS parts")
            else:
                violations.no_nul(name, text)  # no SMS carries U+0000; refused like every other text field
        violations.raise_if_any()
        assert sender is not None
        policy = self.policies.for_country(country)
        category = common_pb2.MessageCategory.Name(request.category).removeprefix("MESSAGE_CATEGORY_")

        def assess(chunk: Sequence[str]) -> list[compliance.Assessment]:
            folding = request.allow_accent_folding
            return [
                compliance.assess(text, policy, sender.kind, category, shortcode, folding) for text in chunk
            ]

        return await in_turns(assess, texts, TEXTS_PER_CHUNK)
