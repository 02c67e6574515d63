"""The use cases: what stopgate does, between the servicers (api/, which validate requests and map protobuf
to the typed values taken here) and the stores (store/, PostgreSQL). One module per use case; each rule of
DESIGN.md §1 has its home in one of them, named as it is named there:

- checks.py   CheckBatch and RecordSends: quarantine per licence, shortcode stop lists, alias routes, the one
              free confirmation, the sends recorded.
- ingest.py   inbound events: keywords, attribution, quarantine and stop lists, duplicates, replies.
- reports.py  campaign reports and their unsubscribe rate, licence summaries, exports.
- numbers.py  a number's status, manual quarantine and release.
"""
