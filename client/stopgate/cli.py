"""`stopgate-cli`: stopgate from a shell, for operators and scripts.

Human-readable output by default, `--json` for scripts. Exit status 0 on success, 1 when the call failed
(or an import had rejected rows) with a one-line reason on stderr, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from google.protobuf import json_format
from google.protobuf.message import Message

from stopgate._version import __version__
from stopgate.client import DEFAULT_TARGET, TOKEN_VARIABLE, Client
from stopgate.errors import StopgateError
from stopgate.exports import write_csv
from stopgate.v1 import common_pb2, quarantine_check_pb2, reporting_pb2, stop_ingest_pb2

CATEGORIES = {
    name.removeprefix("MESSAGE_CATEGORY_").lower(): value
    for name, value in common_pb2.MessageCategory.items()
    if value != common_pb2.MESSAGE_CATEGORY_UNSPECIFIED
}
KEYWORD_INTENTS = {
    "opt-out": common_pb2.INTENT_OPT_OUT,
    "opt-in": common_pb2.INTENT_OPT_IN,
    "help": common_pb2.INTENT_HELP,
}
SOURCES = {
    name.removeprefix("EVENT_SOURCE_").lower(): value
    for name, value in common_pb2.EventSource.items()
    if value not in (common_pb2.EVENT_SOURCE_UNSPECIFIED, common_pb2.EVENT_SOURCE_MANUAL)
}
# import-stops: accepted CSV column names (first match wins) for each InboundEvent field.
IMPORT_COLUMNS = {
    "phone_number": ("phone_number", "phone", "number", "msisdn"),
    "recipient": ("recipient", "shortcode"),
    "text": ("text", "message"),
    "network": ("network",),
    "received_at": ("received_at",),
    "licence_id": ("licence_id", "licence"),
    "reason": ("reason",),
    "event_id": ("event_id", "id"),
}


def _utc_datetime(text: str) -> datetime:
    """An ISO 8601 time of the command line: UTC unless it has an offset (the client takes aware ones)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class UsageError(Exception):
    """A problem with the command line or its input file: exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        options = _client_options(args)
        with Client(args.target, **options) as client:
            return int(args.run(client, args))
    except StopgateError as error:
        unsaid = [f"{v.field}: {v.description}" for v in error.field_violations if v.field not in str(error)]
        print("; ".join([f"stopgate-cli: {error}", *unsaid]), file=sys.stderr)
        return 1
    except (UsageError, OSError) as error:
        print(f"stopgate-cli: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopgate-cli: interrupted", file=sys.stderr)
        return 130


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    if bool(args.cert_file) != bool(args.key_file):
        raise UsageError("--cert-file and --key-file go together (mutual TLS)")
    return {
        "token": args.token,
        "tls": args.tls,
        "root_certificates": read(args.ca_file),
        "certificate_chain": read(args.cert_file),
        "private_key": read(args.key_file),
        "default_timeout": args.timeout,
    }


# Commands


def _check(client: Client, args: argparse.Namespace) -> int:
    reply = client.check_batch(
        args.licence,
        _numbers(args.numbers),
        sender=_sender(args),
        category=CATEGORIES[args.category],
        campaign_id=args.campaign or "",
        default_region=args.region,
    )
    if args.json:
        return _print_json(reply)
    for result in reply.results:
        since = _when(result.since) if result.HasField("since") else ""
        verdict = quarantine_check_pb2.Verdict.Name(result.verdict).removeprefix("VERDICT_")
        reason = quarantine_check_pb2.CheckReason.Name(result.reason).removeprefix("CHECK_REASON_")
        reason = "" if reason == "UNSPECIFIED" else reason
        print(f"{result.phone_number}\t{result.e164 or '-'}\t{verdict}\t{reason}\t{since}".rstrip())
    counts = f"{reply.allowed_count} allowed, {reply.blocked_count} blocked, {reply.invalid_count} invalid"
    recorded = f", {reply.recorded_sends} sends recorded" if args.campaign else ""
    print(f"{_plural(len(reply.results), 'number')}: {counts}{recorded}")
    return 0


def _status(client: Client, args: argparse.Namespace) -> int:
    return _print(client.get_number_status(args.licence, args.number, default_region=args.region), args)


def _quarantine(client: Client, args: argparse.Namespace) -> int:
    reply = client.quarantine_numbers(
        args.licence, _numbers(args.numbers), actor=args.actor, reason=args.reason, default_region=args.region
    )
    return _print_manual(reply.results, args)


def _release(client: Client, args: argparse.Namespace) -> int:
    reply = client.release_numbers(
        args.licence,
        _numbers(args.numbers),
        actor=args.actor,
        reason=args.reason,
        consent_reference=args.consent_reference,
        default_region=args.region,
    )
    return _print_manual(reply.results, args)


def _sender(args: argparse.Namespace) -> common_pb2.Sender:
    return common_pb2.Sender(address=args.sender, reply_shortcode=args.reply_shortcode)


def _classify(client: Client, args: argparse.Namespace) -> int:
    reply = client.classify_text(
        args.text, country=args.country, shortcode=args.shortcode, licence_id=args.licence
    )
    return _print(reply, args)


def _keywords_set(client: Client, args: argparse.Namespace) -> int:
    replies = dict(reply.split("=", 1) for reply in args.reply)
    reply = client.set_custom_keyword(
        args.keyword,
        KEYWORD_INTENTS[args.intent],
        actor=args.actor,
        shortcode=args.shortcode,
        licence_id=args.licence,
        replies=replies,
    )
    return _print(reply, args)


def _keywords_list(client: Client, args: argparse.Namespace) -> int:
    return _print(client.list_custom_keywords(shortcode=args.shortcode, licence_id=args.licence), args)


def _keywords_remove(client: Client, args: argparse.Namespace) -> int:
    reply = client.remove_custom_keyword(
        args.keyword, actor=args.actor, shortcode=args.shortcode, licence_id=args.licence
    )
    return _print(reply, args)


def _erase(client: Client, args: argparse.Namespace) -> int:
    if bool(args.licence) == args.every_licence:
        raise UsageError("erase needs a scope: --licence LICENCE, or --every-licence")
    reply = client.erase_personal_data(
        args.number,
        licence_id=args.licence or "",
        every_licence=args.every_licence,
        actor=args.actor,
        reason=args.reason,
        default_region=args.region,
    )
    if args.json:
        return _print_json(reply)
    scope = f"licence {args.licence}" if args.licence else "every licence"
    audit = f"erasure {reply.erasure_id}, {_when(reply.erased_at)}"
    print(f"{reply.e164}: personal data erased in {scope} ({audit})")
    print(f"  inbound events cleared: {reply.inbound_events_cleared}")
    print(f"  sends deleted: {reply.sends_deleted}")
    print(f"  campaign memberships deleted: {reply.campaign_memberships_deleted}")
    print(f"  history entries cleared: {reply.history_entries_cleared}")
    print(f"  quarantine entries minimised: {reply.quarantine_entries_minimised}")
    print(f"  change feed entries minimised: {reply.feed_changes_minimised}")
    print("  kept: its quarantine and stop-list entries (it stays blocked), and the audit record")
    return 0


def _shortcode_bind(client: Client, args: argparse.Namespace) -> int:
    return _print(client.bind_shortcode(args.licence, args.shortcode, actor=args.actor), args)


def _shortcode_unbind(client: Client, args: argparse.Namespace) -> int:
    return _print(client.unbind_shortcode(args.licence, args.shortcode, actor=args.actor), args)


def _shortcode_list(client: Client, args: argparse.Namespace) -> int:
    return _print(client.list_shortcode_bindings(licence_id=args.licence, shortcode=args.shortcode), args)


def _language_reply(value: str) -> str:
    """A --reply LANGUAGE=TEXT argument, checked for its "=" (the server checks the rest)."""
    if "=" not in value:
        raise argparse.ArgumentTypeError("expected LANGUAGE=TEXT, for example fr=Vous êtes désinscrit.")
    return value


def _check_message(client: Client, args: argparse.Namespace) -> int:
    reply = client.check_message(
        args.text,
        country=args.country,
        sender=_sender(args),
        category=CATEGORIES[args.category],
        shortcode=args.shortcode,
        allow_accent_folding=args.allow_accent_folding,
    )
    return _print(reply, args)


def _report(client: Client, args: argparse.Namespace) -> int:
    if args.campaign:
        return _print(client.get_campaign_report(args.licence, args.campaign), args)
    reports = list(client.iter_campaign_reports(args.licence, start_time=args.since, end_time=args.until))
    if args.json:
        print(json.dumps([_as_dict(report) for report in reports], indent=2))
        return 0
    print("campaign\tsent\trecipients\tunsubscribes\trate %")
    for r in reports:
        print(
            f"{r.campaign_id}\t{r.sent_count}\t{r.unique_recipients}\t{r.unsubscribe_count}"
            f"\t{r.unsubscribe_rate_percent:.2f}"
        )
    return 0


def _export(client: Client, args: argparse.Namespace) -> int:
    if args.what == "interactions":
        if not args.campaign:
            raise UsageError("export interactions needs a campaign: export interactions LICENCE CAMPAIGN")
        rows: Iterator[Message] = client.export_interactions(args.licence, args.campaign)
        descriptor = reporting_pb2.Interaction.DESCRIPTOR
    else:
        rows = client.export_quarantine(args.licence)
        descriptor = reporting_pb2.QuarantineEntry.DESCRIPTOR
    with _output(args.output) as out:
        if args.json:
            count = sum(out.write(json.dumps(_as_dict(row)) + "\n") > 0 for row in rows)
        else:
            count = write_csv(rows, out, descriptor)
    if args.output:
        print(f"{count} rows written to {args.output}", file=sys.stderr)
    return 0


def _changes(client: Client, args: argparse.Namespace) -> int:
    """Follow the change feed until interrupted; say on exit where to resume."""
    cursor = args.after
    try:
        for response in client.watch_blocklist_changes(
            args.after, start=args.start, licence_ids=args.licence
        ):
            for change in response.changes:
                if args.json:
                    print(json.dumps(_as_dict(change)), flush=True)
                else:
                    kind = reporting_pb2.BlocklistChangeKind.Name(change.kind)
                    print(
                        f"{change.cursor}\t{kind.removeprefix('BLOCKLIST_CHANGE_KIND_')}"
                        f"\t{change.licence_id or change.shortcode}\t{change.phone_number}"
                        f"\t{_when(change.changed_at)}\t{change.campaign_id}\t{change.event_id}".rstrip(),
                        flush=True,
                    )
            cursor = response.cursor
            if args.max_changes and response.changes:
                args.max_changes -= len(response.changes)
                if args.max_changes <= 0:
                    break
    finally:
        if cursor:
            print(f"stopgate-cli: resume with --after {cursor}", file=sys.stderr)
    return 0


def _import_stops(client: Client, args: argparse.Namespace) -> int:
    """Stream an operator's stop list through StopIngest. Each row's event_id is the file's `event_id`
    column or a hash of the row, so importing the same file again changes nothing (DUPLICATE)."""
    path = Path(args.file)
    total = _count_rows(path)
    lines: deque[int] = deque()  # line numbers of the events sent and not yet acked, in order
    outcomes: Counter[str] = Counter()
    rejected: list[dict[str, Any]] = []
    progress = _Progress(total, enabled=not args.quiet)

    def events() -> Iterator[stop_ingest_pb2.InboundEvent]:
        for line, event in _read_stop_list(path, args):
            lines.append(line)
            yield event

    for ack in client.stream_events(events(), batch_size=args.batch_size):
        line = lines.popleft()
        outcome = stop_ingest_pb2.IngestOutcome.Name(ack.outcome).removeprefix("INGEST_OUTCOME_")
        outcomes[outcome] += 1
        if ack.outcome == stop_ingest_pb2.INGEST_OUTCOME_REJECTED:
            rejected.append({"line": line, "event_id": ack.event_id, "error": ack.error.message})
        progress.update(outcomes.total())
    progress.finish()

    done = outcomes.total()
    if args.json:
        print(json.dumps({"file": str(path), "rows": done, "outcomes": dict(outcomes), "rejected": rejected}))
    else:
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
        print(f"{_plural(done, 'row')} imported from {path}: {summary or 'nothing to do'}")
        for row in rejected[:20]:
            print(f"  line {row['line']}: {row['error']}")
        if len(rejected) > 20:
            print(f"  ... and {len(rejected) - 20} more rejected rows")
    if rejected:
        print(f"stopgate-cli: {len(rejected)} of {done} rows rejected", file=sys.stderr)
        return 1
    return 0


def _read_stop_list(
    path: Path, args: argparse.Namespace
) -> Iterator[tuple[int, stop_ingest_pb2.InboundEvent]]:
    """(line number, event) for each row of a stop list."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        header = [name.strip().lower() for name in reader.fieldnames or []]
        reader.fieldnames = header
        columns = {
            field: next((name for name in names if name in header), None)
            for field, names in IMPORT_COLUMNS.items()
        }
        if columns["phone_number"] is None:
            names = ", ".join(IMPORT_COLUMNS["phone_number"])
            raise UsageError(f"{path}: no phone number column (one of {names})")
        for row in reader:
            values = {field: (row.get(col) or "").strip() if col else "" for field, col in columns.items()}
            yield reader.line_num, _stop_event(values, args, f"{path}, line {reader.line_num}")


def _stop_event(values: dict[str, str], args: argparse.Namespace, where: str) -> stop_ingest_pb2.InboundEvent:
    event = stop_ingest_pb2.InboundEvent(
        event_id=values["event_id"] or _row_id(values, args),
        source=SOURCES[args.source],
        phone_number=values["phone_number"],
        recipient=values["recipient"],
        network=values["network"],
        text=values["text"],
        reason=values["reason"],
        licence_id=values["licence_id"] or args.licence or "",
        default_region=args.region,
    )
    if values["received_at"]:
        try:  # a time without an offset is UTC
            event.received_at.FromDatetime(datetime.fromisoformat(values["received_at"]))
        except ValueError:
            raise UsageError(f"{where}: received_at {values['received_at']!r} is not ISO 8601") from None
    return event


def _row_id(values: dict[str, str], args: argparse.Namespace) -> str:
    """A stable event_id for a row without one: the same row imported twice is the same event."""
    key = "\x1f".join([args.source, args.licence or "", *(values[f] for f in sorted(values))])
    return "import:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _count_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8-sig") as file:
        return max(sum(1 for _ in csv.reader(file)) - 1, 0)


class _Progress:
    """A progress bar on stderr when it is a terminal; otherwise a line at every tenth."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.shown = -1.0

    def update(self, done: int) -> None:
        if not self.enabled or not self.total:
            return
        fraction = done / self.total
        now = time.monotonic()
        if self.tty and (now - self.shown >= 0.1 or done == self.total):
            bar = "#" * int(fraction * 30)
            rate = done / max(now - self.started, 1e-9)
            sys.stderr.write(f"\r[{bar:<30}] {done}/{self.total} rows ({rate:,.0f}/s)")
            self.shown = now
        elif not self.tty and int(fraction * 10) > int(self.shown):
            sys.stderr.write(f"{done}/{self.total} rows ({fraction:.0%})\n")
            self.shown = int(fraction * 10)

    def finish(self) -> None:
        if self.enabled and self.tty and self.total:
            sys.stderr.write("\n")


# Output


def _print(message: Message, args: argparse.Namespace) -> int:
    if args.json:
        return _print_json(message)
    _print_tree(_as_dict(message))
    return 0


def _print_json(message: Message) -> int:
    print(json.dumps(_as_dict(message), indent=2))
    return 0


def _print_manual(
    results: Sequence[quarantine_check_pb2.ManualActionResult], args: argparse.Namespace
) -> int:
    if args.json:
        print(json.dumps([_as_dict(result) for result in results], indent=2))
        return 0
    for result in results:
        outcome = quarantine_check_pb2.ManualOutcome.Name(result.outcome).removeprefix("MANUAL_OUTCOME_")
        print(f"{result.phone_number}\t{result.e164}\t{outcome}")
    return 0


def _as_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _print_tree(value: Any, indent: str = "") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                print(f"{indent}{key}:")
                _print_tree(item, indent + "  ")
            else:
                print(f"{indent}{key}: {item}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                print(f"{indent}-")
                _print_tree(item, indent + "  ")
            else:
                print(f"{indent}- {item}")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _when(timestamp: Any) -> str:
    return str(timestamp.ToDatetime().isoformat()) + "Z"


def _numbers(given: Sequence[str]) -> list[str]:
    """Numbers from the command line; `-` reads one per line from standard input."""
    if list(given) == ["-"]:
        return [line.strip() for line in sys.stdin if line.strip()]
    return list(given)


class _output:
    """Standard output, or a file written only when the export succeeds (via a temporary name)."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.partial = self.path.with_name(self.path.name + ".partial") if self.path else None

    def __enter__(self) -> IO[str]:
        if self.partial is None:
            return sys.stdout
        self.file = self.partial.open("w", newline="", encoding="utf-8")
        return self.file

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        if self.partial is None or self.path is None:
            return
        self.file.close()
        if error_type is None:
            self.partial.replace(self.path)
        else:
            self.partial.unlink(missing_ok=True)


# Arguments


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stopgate-cli",
        description="Query and operate stopgate, the SMS opt-out compliance service.",
    )
    parser.add_argument("--version", action="version", version=f"stopgate {__version__}")
    parser.add_argument(
        "--target",
        default=os.environ.get("STOPGATE_TARGET", DEFAULT_TARGET),
        help="server address (env STOPGATE_TARGET; default %(default)s)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_VARIABLE, ""),
        help="API token (better: env STOPGATE_TOKEN, which other users cannot see in the process list)",
    )
    parser.add_argument("--tls", action="store_true", help="use TLS (implied by the certificate options)")
    parser.add_argument("--ca-file", help="PEM file of the CA that signed the server's certificate")
    parser.add_argument("--cert-file", help="client certificate (PEM) for mutual TLS")
    parser.add_argument("--key-file", help="client private key (PEM) for mutual TLS")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline per call, seconds (default 10)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    # Accepted after the command too (`stopgate-cli check ... --json`).
    json_option = argparse.ArgumentParser(add_help=False)
    json_option.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def command(
        name: str, run: Callable[[Client, argparse.Namespace], int], summary: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary, parents=[json_option])
        sub.set_defaults(run=run)
        return sub

    def region(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--region", default="", help="region of numbers written without +country (FR)")

    def sender(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--sender", required=True, help="originating address: shortcode, alias or number")
        sub.add_argument(
            "--reply-shortcode", default="", help="an alias's reply shortcode (the number for STOP 00000)"
        )

    def admin(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("licence")
        sub.add_argument("numbers", nargs="+", metavar="NUMBER", help="phone numbers, or - to read stdin")
        sub.add_argument("--actor", required=True, help="who does this (audited)")
        sub.add_argument("--reason", required=True, help="why (audited)")
        region(sub)

    sub = command("check", _check, "which numbers a licence may message now")
    sub.add_argument("licence")
    sub.add_argument("numbers", nargs="+", metavar="NUMBER", help="phone numbers, or - to read stdin")
    sender(sub)
    sub.add_argument("--category", choices=sorted(CATEGORIES), default="marketing")
    sub.add_argument("--campaign", help="record the allowed numbers as sends of this campaign")
    region(sub)

    sub = command("status", _status, "a number's quarantine state, stop lists, last send and history")
    sub.add_argument("licence")
    sub.add_argument("number")
    region(sub)

    admin(command("quarantine", _quarantine, "quarantine numbers by hand (admin)"))
    sub = command("release", _release, "release numbers from quarantine (admin; needs a consent reference)")
    admin(sub)
    sub.add_argument("--consent-reference", required=True, help="where the new consent is recorded")

    sub = command(
        "erase", _erase, "erase a number's personal data and keep its opt-out (admin; GDPR Art. 17 and 21)"
    )
    sub.add_argument("number")
    scope = sub.add_mutually_exclusive_group(required=True)
    scope.add_argument("--licence", default="", help="erase only this licence's data")
    scope.add_argument(
        "--every-licence", action="store_true", help="erase in every licence (token not limited to licences)"
    )
    sub.add_argument("--actor", required=True, help="who does this (audited)")
    sub.add_argument("--reason", required=True, help="the reference of the person's request (audited)")
    region(sub)

    def keyword_scope(sub: argparse.ArgumentParser) -> None:
        scope = sub.add_mutually_exclusive_group(required=True)
        scope.add_argument("--shortcode", default="", help="the shortcode the keyword belongs to")
        scope.add_argument("--licence", default="", help="the licence the keyword belongs to")

    sub = command("classify", _classify, "what intent stopgate reads in a text (stores nothing)")
    sub.add_argument("text")
    sub.add_argument("--country", default="", help="country of the sender (FR), to pick the language")
    sub.add_argument("--shortcode", default="", help="apply this shortcode's custom keywords too")
    sub.add_argument("--licence", default="", help="apply this licence's custom keywords too")

    sub = command("keyword-set", _keywords_set, "add or replace a custom keyword of a shortcode or licence")
    sub.add_argument("keyword")
    sub.add_argument("intent", choices=sorted(KEYWORD_INTENTS))
    keyword_scope(sub)
    sub.add_argument("--actor", required=True, help="who does this (recorded)")
    sub.add_argument(
        "--reply",
        action="append",
        default=[],
        type=_language_reply,
        metavar="LANGUAGE=TEXT",
        help="the reply to suggest in that language (repeat for each language)",
    )

    sub = command("keyword-list", _keywords_list, "the custom keywords of a shortcode, a licence, or all")
    sub.add_argument("--shortcode", default="", help="only this shortcode's")
    sub.add_argument("--licence", default="", help="only this licence's")

    sub = command("keyword-remove", _keywords_remove, "remove a custom keyword of a shortcode or licence")
    sub.add_argument("keyword")
    keyword_scope(sub)
    sub.add_argument("--actor", required=True, help="who does this")

    sub = command("shortcode-bind", _shortcode_bind, "let a licence send through a shortcode (admin)")
    sub.add_argument("licence")
    sub.add_argument("shortcode")
    sub.add_argument("--actor", required=True, help="who does this (recorded)")

    sub = command("shortcode-unbind", _shortcode_unbind, "remove a shortcode's binding to a licence (admin)")
    sub.add_argument("licence")
    sub.add_argument("shortcode")
    sub.add_argument("--actor", required=True, help="who does this (logged)")

    sub = command("shortcode-list", _shortcode_list, "the shortcodes bound to licences (admin)")
    sub.add_argument("--licence", default="", help="only this licence's")
    sub.add_argument("--shortcode", default="", help="only this shortcode's")

    sub = command("check-message", _check_message, "STOP mention and SMS parts of a campaign text")
    sub.add_argument("text")
    sub.add_argument("--country", required=True, help="destination country (FR)")
    sender(sub)
    sub.add_argument("--category", choices=sorted(CATEGORIES), default="marketing")
    sub.add_argument("--shortcode", default="", help="the shortcode replies go to, for the mention")
    sub.add_argument("--allow-accent-folding", action="store_true", help="suggest GSM-7 replacements")

    sub = command("report", _report, "one campaign's report, or every campaign of a licence")
    sub.add_argument("licence")
    sub.add_argument("campaign", nargs="?")
    sub.add_argument(
        "--since", type=_utc_datetime, help="campaigns active since (ISO 8601, UTC if no offset)"
    )
    sub.add_argument(
        "--until", type=_utc_datetime, help="campaigns active until (ISO 8601, UTC if no offset)"
    )

    sub = command("export", _export, "export interactions of a campaign, or a licence's quarantine, as CSV")
    sub.add_argument("what", choices=("interactions", "quarantine"))
    sub.add_argument("licence")
    sub.add_argument("campaign", nargs="?", help="the campaign (interactions only)")
    sub.add_argument("--output", "-o", help="file to write (default: standard output)")

    sub = command(
        "changes", _changes, "follow every change of the block lists (JSON lines with --json) until Ctrl-C"
    )
    sub.add_argument("--after", default="", metavar="CURSOR", help="resume after this cursor")
    sub.add_argument(
        "--start", choices=("now", "oldest"), default="now", help="without --after: now, or the oldest kept"
    )
    sub.add_argument("--licence", action="append", default=[], help="only this licence's (repeatable)")
    sub.add_argument("--max-changes", type=int, default=0, help="stop after about this many changes")

    sub = command("import-stops", _import_stops, "stream an operator's stop list (CSV) through StopIngest")
    sub.add_argument("file", help="CSV with a header; columns: " + ", ".join(IMPORT_COLUMNS))
    sub.add_argument("--source", choices=sorted(SOURCES), default="import", help="event source (import)")
    sub.add_argument("--licence", help="licence of rows without a licence_id column")
    sub.add_argument("--batch-size", type=int, default=500, help="events per request (1-1000)")
    sub.add_argument("--quiet", action="store_true", help="no progress output")
    region(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
