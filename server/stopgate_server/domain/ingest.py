"""Inbound events, the pure part: what an event is, reading its number, deciding its intent, the replies
to suggest."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from stopgate_server.domain import keywords, phones
from stopgate_server.domain.keywords import Classification, Intent, MatchKind
from stopgate_server.domain.verdicts import CONFIRMATION_WINDOW


class Source(Enum):
    """Where an event came from (MANUAL: an admin's QuarantineNumbers or ReleaseNumbers)."""

    SMS_REPLY = "SMS_REPLY"
    OPERATOR_NOTIFICATION = "OPERATOR_NOTIFICATION"
    WEB_UNSUBSCRIBE = "WEB_UNSUBSCRIBE"
    GATEWAY = "GATEWAY"
    IMPORT = "IMPORT"
    MANUAL = "MANUAL"


# Sources that mean "opt out" whatever their text (the operator or web page already decided).
OPT_OUT_SOURCES = frozenset({Source.OPERATOR_NOTIFICATION, Source.WEB_UNSUBSCRIBE, Source.IMPORT})


class IngestOutcome(Enum):
    """What was done with an event."""

    QUARANTINED = "QUARANTINED"
    ALREADY_QUARANTINED = "ALREADY_QUARANTINED"
    RELEASED = "RELEASED"
    DUPLICATE = "DUPLICATE"
    NO_ACTION = "NO_ACTION"
    REJECTED = "REJECTED"


@dataclass(frozen=True, slots=True)
class Inbound:
    """An inbound event as ingress sent it, read and valid: its number in E.164, its shortcode (the
    recipient's digits in ASCII, "" when the recipient is no shortcode), `intent_hint` None when not given."""

    event_id: str
    phone: str
    received_at: datetime
    source: Source
    recipient: str
    shortcode: str
    network: str
    text: str
    country_prefix: str
    reason: str
    licence_hint: str
    intent_hint: Intent | None


@dataclass(frozen=True, slots=True)
class Classified:
    """An event and what it asks for."""

    event: Inbound
    classification: Classification


@dataclass(frozen=True)
class Rejected:
    """An event refused before it could be applied, kept with its raw input (invariant 6)."""

    event_id: str
    received_at: datetime | None
    raw_json: str
    error: str


_DIGITS = re.compile(r"\d{8,15}")

CONFIRMATIONS = {
    "en": "You are unsubscribed and will receive no more messages from us. Reply START to subscribe again.",
    "fr": "Vous êtes désinscrit(e) et ne recevrez plus de messages. Répondez START pour vous réinscrire.",
    "de": "Sie sind abgemeldet und erhalten keine Nachrichten mehr. Antworten Sie START, um sich anzumelden.",
    "es": "Se ha dado de baja y no recibirá más mensajes. Responda START para volver a suscribirse.",
    "nl": "U bent afgemeld en ontvangt geen berichten meer. Antwoord START om u opnieuw aan te melden.",
    "it": "La cancellazione è avvenuta: non riceverà più messaggi. Risponda START per iscriversi di nuovo.",
    "pt": "Cancelou a subscrição e não receberá mais mensagens. Responda START para voltar a subscrever.",
    "no": "Du er avmeldt og vil ikke motta flere meldinger. Svar START for å melde deg på igjen.",
    "sv": "Du är avregistrerad och får inga fler meddelanden. Svara START för att registrera dig igen.",
}
HELP_REPLIES = {
    "en": "Reply STOP to unsubscribe, START to subscribe again.",
    "fr": "Répondez STOP pour vous désinscrire, START pour vous réinscrire.",
    "de": "Antworten Sie STOP zum Abmelden, START zum Anmelden.",
    "es": "Responda BAJA para darse de baja, START para volver a suscribirse.",
    "nl": "Antwoord STOP om u af te melden, START om u opnieuw aan te melden.",
    "it": "Risponda STOP per annullare l'iscrizione, START per iscriversi di nuovo.",
    "pt": "Responda STOP para cancelar a subscrição, START para voltar a subscrever.",
    "no": "Svar STOPP for å melde deg av, START for å melde deg på.",
    "sv": "Svara STOPP för att avregistrera dig, START för att registrera dig igen.",
}


def read_phone(raw: str, default_region: str) -> str | None:
    """The E.164 form of an event's number. Gateways often drop the "+" ("447777777777"): a bare run of
    8 to 15 digits that reads as nothing in the default region is read as international."""
    e164 = phones.to_e164(raw, default_region)
    if e164 is None and _DIGITS.fullmatch(raw.strip()):
        e164 = phones.to_e164("+" + raw.strip())
    return e164


ATTRIBUTION_WINDOW = timedelta(days=90)
"""How far back before an opt-out a send through another route than the event's shortcode may be and still
be the campaign it is attributed to (MOST_RECENT_SEND)."""
ATTRIBUTION_CLOCK_SKEW = timedelta(minutes=1)
"""A send is attributed an event only if it was made before the event, give or take this much: the clocks
of ingress (received_at) and of the sender services (sent_at) may differ a little; a send made after a STOP
is never the campaign it answers."""


class Attribution(Enum):
    """The rules that attribute an opt-out or opt-in to a licence and campaign, in the order they are
    tried ("regardless of the unsubscribe method, a STOP is assigned to a campaign / a licence according to
    the most recent campaign sent to this number"), over the sends made before the event (give or take
    ATTRIBUTION_CLOCK_SKEW). Applied in SQL, in the same statement as the event (store/queries.sql,
    ingest_round)."""

    SHORTCODE_ROUTE = "SHORTCODE_ROUTE"
    """The event names a shortcode: the most recent send routed through it, sent from that shortcode or
    from an alias whose reply shortcode it is (the operator's "STOP 00000")."""
    MOST_RECENT_SEND = "MOST_RECENT_SEND"
    """The event names no shortcode: the most recent send to the number. Or, for an opt-out only, no send
    went through the event's shortcode: the most recent send within ATTRIBUTION_WINDOW. An opt-in to a
    shortcode never falls back so: it releases only the licence its own route reached."""
    LICENCE_HINT = "LICENCE_HINT"
    """No send is found: the licence ingress named in the event, with no campaign."""
    UNATTRIBUTED = "UNATTRIBUTED"
    """Neither: the event reaches only its shortcode's stop list, and no licence's quarantine."""


@dataclass(frozen=True)
class AttributionBounds:
    """The times that bound which send an event is attributed to: ATTRIBUTION_WINDOW and
    ATTRIBUTION_CLOCK_SKEW, or others in a test."""

    window: timedelta
    clock_skew: timedelta


@dataclass(frozen=True, slots=True)
class Applied:
    """What was done with one event (for a duplicate: what was done the first time)."""

    outcome: IngestOutcome
    intent: Intent
    keyword: str
    match_kind: MatchKind
    licence_id: str
    campaign_id: str
    attribution: Attribution | None  # the rule that attributed it; None for other intents
    blocked: bool = False


def intent_of(
    source: Source,
    text: str,
    hint: Intent | None,
    country: str,
    custom: Mapping[str, tuple[Intent, str]] | None = None,
) -> Classification:
    """What the event asks for: the ingress hint when given, opt-out for operator notifications, web
    unsubscribes and imports, else what the text says (with the `custom` keywords of its shortcode and
    licence, see `keywords.classify`)."""
    read = keywords.classify(text, country, custom)
    if hint is not None and read.intent is not hint:
        return Classification(hint, f"{hint.value} (hint)", MatchKind.EXACT, read.language, "intent hint")
    if hint is None and source in OPT_OUT_SOURCES and read.intent is not Intent.OPT_OUT:
        keyword = f"{source.value} (source)"
        return Classification(Intent.OPT_OUT, keyword, MatchKind.EXACT, read.language, "source")
    return read


@dataclass(frozen=True)
class Reply:
    confirmation_allowed: bool
    text: str


def reply_for(intent: Intent, language: str, blocked: bool, received_at: datetime, now: datetime) -> Reply:
    """The reply to suggest: a confirmation for an opt-out (allowed once, within the window, when the
    number is blocked somewhere), the help text for a help request, nothing otherwise."""
    if intent is Intent.OPT_OUT and blocked:
        allowed = now - received_at <= CONFIRMATION_WINDOW
        return Reply(allowed, CONFIRMATIONS.get(language, CONFIRMATIONS["en"]))
    if intent is Intent.HELP:
        return Reply(False, HELP_REPLIES.get(language, HELP_REPLIES["en"]))
    return Reply(False, "")
