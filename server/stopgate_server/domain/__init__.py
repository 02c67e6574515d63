"""Pure domain logic, no I/O: phone numbers, senders, verdict rules, keywords, segments, policies."""
