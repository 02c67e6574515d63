"""StopIngest: so far the classifier's dry run. StreamEvents and IngestEvent are inherited from the
generated base class and answer UNIMPLEMENTED until durable ingest lands."""

from __future__ import annotations

from typing import Any

from stopgate.v1 import common_pb2, stop_ingest_pb2, stop_ingest_pb2_grpc

from stopgate_server.api.validation import Violations
from stopgate_server.domain import keywords

pb = stop_ingest_pb2
MAX_TEXT = 1600  # ten concatenated parts
_INTENTS = {i: common_pb2.Intent.Value(f"INTENT_{i.value}") for i in keywords.Intent}
_MATCH_KINDS = {
    keywords.MatchKind.EXACT: common_pb2.MATCH_KIND_EXACT,
    keywords.MatchKind.INFERRED: common_pb2.MATCH_KIND_INFERRED,
    keywords.MatchKind.NONE: common_pb2.MATCH_KIND_UNSPECIFIED,
}


class StopIngestServicer(stop_ingest_pb2_grpc.StopIngestServicer):
    async def ClassifyText(self, request: pb.ClassifyTextRequest, context: Any) -> pb.ClassifyTextResponse:
        violations = Violations()
        violations.text("text", request.text, MAX_TEXT)
        violations.region("country", request.country)
        violations.raise_if_any()
        result = keywords.classify(request.text, request.country)
        return pb.ClassifyTextResponse(
            intent=_INTENTS[result.intent],
            matched_keyword=result.keyword,
            match_kind=_MATCH_KINDS[result.kind],
            language=result.language,
        )
