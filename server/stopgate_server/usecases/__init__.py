"""The use cases: what stopgate does, between the servicers (api/, which validate requests and map protobuf
to the typed values taken here) and the stores (store/, PostgreSQL). One module per use case:

- checks.py   CheckBatch and RecordSends
- ingest.py   inbound events: classify, apply, reply
- reports.py  campaign reports, licence summaries, exports
- numbers.py  a number's status, manual quarantine and release

Where each rule of DESIGN.md §1 lives, under its name there (the use case's docstring says how it is applied
and which tests hold it; pure rules are in domain/):

| rule                          | home                                                                    |
|-------------------------------|-------------------------------------------------------------------------|
| Quarantine is per licence     | checks.py (checks), ingest.py (opt-outs and opt-ins), numbers.py        |
| Shortcode stop lists          | checks.py (the sender's route), ingest.py                               |
| Alias routes                  | domain/senders.py (`Sender.route`), checks.py, ingest.py (attribution)  |
| Attribution                   | ingest.py, with the rules named in domain/ingest.py (`Attribution`)     |
| Shortcodes                    | domain/senders.py (`ascii_digits`, `shortcode_of`)                      |
| One free confirmation         | checks.py (the send), domain/verdicts.py (`decide`), ingest.py (reply)  |
| STOP mention in message text  | domain/compliance.py, domain/policies.py + country_policies.toml        |
| SMS parts                     | domain/segments.py                                                      |
| Keywords                      | domain/keywords.py, applied by ingest.py (with hints and sources)       |
"""
