"""Is an article body visibly cut or spliced mid-sentence?

Aggregators shorten bodies to a character budget: either the text simply stops ("...the
five biggest") or a later part is glued on without punctuation ("...the five biggest
national President Vladimir Putin has..."). Two kinds of evidence, both tuned for
precision because news prose is full of lower-case words followed by capitalised names
("special envoy Steve Witkoff said"):

1. **Cut**: the last paragraph ends in an ellipsis, or ends mid-sentence: without sentence
   punctuation of its script (closing quotes and brackets looked through) *and* on a word that
   cannot end a sentence (lower case, a comma, a dash). A heading, a list item, a caption or a
   credit line without a full stop is no evidence; neither is a short last line after a properly
   ended paragraph ("Reporting by Ana Lind"), nor the end of a Thai or Lao text, whose scripts do
   not mark sentence ends. Chrome (promos, tag lists) is removed before this check.
2. **Splice**: inside a paragraph, a lower-case word runs, with no punctuation, into a
   capitalised word that can only start a new sentence:
   a. a sentence-opening word ("He", "However", "Meanwhile", ...) followed by lower case;
   b. an article ("The", "A", "An") right after an adjective or a modal ("biggest The");
   c. a modal verb followed by a capitalised name and a verb ("would Mayor Lind said");
   d. an adjective followed by a capitalised title ("President", "Mayor", ...), the name
      and a verb: "national President Vladimir Putin has". Adjectives that usually precede
      titles ("former", "new", "acting") and nouns that look like adjectives ("official",
      "executive") do not count;
   e. a preposition, an article, a title and a name, then a verb - "accounts for nearly a
      quarter of the Foreign Minister Mirela Voss told" - when the clause before the
      preposition already has a finite verb. Without one the name phrase is the subject
      ("A spokesman for the Foreign Minister Ana Lind said" is fine).
"""

from __future__ import annotations

import re

from newsstance.normalize.prose import SENTENCE_END, ends_without_punctuation_by_script, word_units

_CLOSERS = "\"'”’»)]*"
_ELLIPSIS = re.compile(r"(?:\.\.\.|…|\[\s*(?:\.\.\.|…)\s*\]|\(\s*(?:\.\.\.|…)\s*\))$")
TRAILER_MAX_WORDS = 8
CASELESS_MIN_WORDS = 12
_CONTINUING = frozenset(",;、，—–-&/+")
_LAST_WORD = re.compile(r"([^\W_]+)\W*$")
_LIST_ITEM = re.compile(r"^(?:[-•·*▪◦‣]\s|\d{1,2}[.)]\s)")

_PAIR = re.compile(r"\b([a-z][a-z'’-]*) ([A-Z][A-Za-z'’-]*)")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’.-]*|\S")

SENTENCE_OPENERS = frozenset(
    {
        "The",
        "He",
        "She",
        "They",
        "We",
        "It",
        "However",
        "Meanwhile",
        "Moreover",
        "Furthermore",
        "Nevertheless",
        "Nonetheless",
        "Additionally",
        "Instead",
        "Earlier",
        "Later",
        "According",
        "Although",
        "Despite",
        "Since",
        "There",
        "This",
        "These",
        "Those",
        "Some",
        "Many",
        "Most",
        "Both",
        "Several",
        "Yet",
        "Still",
        "Officials",
        "Critics",
        "Residents",
        "Experts",
        "Analysts",
    }
)
ARTICLES = frozenset({"The", "A", "An"})
MODALS = frozenset({"would", "could", "should", "will", "can", "must", "may", "might", "shall"})
TITLES = frozenset(
    {
        "President",
        "Prime",
        "Premier",
        "Minister",
        "Chancellor",
        "Mayor",
        "Governor",
        "Senator",
        "Secretary",
        "General",
        "King",
        "Queen",
        "Prince",
        "Princess",
        "Pope",
        "Councillor",
        "Councilor",
        "Judge",
        "Justice",
        "Chairman",
        "Chairwoman",
        "Chair",
        "Director",
        "Chief",
        "Commissioner",
        "Ambassador",
        "Foreign",
        "Defence",
        "Defense",
        "Finance",
        "Deputy",
        "Vice",
        "Speaker",
        "Sheriff",
        "Professor",
        "Dr",
        "Mr",
        "Mrs",
        "Ms",
        "Sir",
        "Lord",
        "Lady",
        "Archbishop",
        "Bishop",
        "Admiral",
        "Captain",
        "Colonel",
        "Commander",
        "Inspector",
        "Representative",
        "Rep",
        "Sen",
        "Congressman",
        "Congresswoman",
        "Leader",
        "Spokesman",
        "Spokeswoman",
    }
)
# Adjectives that normally stand before a title: "former President", "the new Mayor".
TITLE_MODIFIERS = frozenset(
    {
        "former",
        "late",
        "new",
        "current",
        "outgoing",
        "incoming",
        "acting",
        "then",
        "deputy",
        "vice",
        "interim",
        "future",
        "ex",
        "sitting",
        "incumbent",
        "elected",
        "newly",
        "first",
        "second",
        "third",
        "last",
        "next",
        "previous",
        "longtime",
        "long-time",
        "veteran",
        "embattled",
        "beleaguered",
        "retired",
        "disgraced",
    }
)
# Words with adjective endings that are mostly nouns or function words in front of names.
NOT_ADJECTIVES = frozenset(
    {
        "official",
        "general",
        "rival",
        "criminal",
        "principal",
        "professional",
        "individual",
        "capital",
        "hospital",
        "festival",
        "journal",
        "animal",
        "signal",
        "proposal",
        "approval",
        "arrival",
        "survival",
        "trial",
        "material",
        "editorial",
        "manual",
        "terminal",
        "tribunal",
        "ritual",
        "admiral",
        "cardinal",
        "marshal",
        "corporal",
        "chemical",
        "radical",
        "liberal",
        "neutral",
        "local",
        "total",
        "mural",
        "rascal",
        "critic",
        "republic",
        "public",
        "clinic",
        "music",
        "logic",
        "topic",
        "traffic",
        "panic",
        "mechanic",
        "cleric",
        "magic",
        "comic",
        "tactic",
        "executive",
        "representative",
        "detective",
        "relative",
        "native",
        "initiative",
        "objective",
        "incentive",
        "motive",
        "directive",
        "narrative",
        "alternative",
        "collective",
        "archive",
        "operative",
        "captive",
        "fugitive",
        "conservative",
        "progressive",
        "interest",
        "protest",
        "contest",
        "request",
        "arrest",
        "forest",
        "guest",
        "west",
        "test",
        "quest",
        "chest",
        "nest",
        "rest",
        "crest",
        "harvest",
        "conquest",
        "manifest",
        "priest",
        "suggest",
        "digest",
        "invest",
        "attest",
        "behest",
        "inquest",
        "unrest",
        "honest",
        "modest",
        "unless",
        "regardless",
        "nevertheless",
        "constable",
        "vegetable",
        "timetable",
        "table",
        "cable",
        "variable",
        "stable",
        "reveal",
        "deal",
        "appeal",
        "heal",
        "seal",
        "conceal",
        "repeal",
        "steal",
        "meal",
    }
)
_ADJECTIVE_SUFFIXES = ("al", "ic", "ous", "ive", "ful", "less", "able", "ible", "est")
COMMON_ADJECTIVES = frozenset(
    {
        "big",
        "small",
        "major",
        "key",
        "top",
        "senior",
        "high",
        "low",
        "large",
        "great",
        "main",
        "military",
        "necessary",
        "primary",
        "ordinary",
        "temporary",
        "voluntary",
        "monetary",
        "parliamentary",
        "secondary",
        "foreign",
        "domestic",
        "western",
        "eastern",
        "northern",
        "southern",
        "modern",
        "several",
        "many",
    }
)
VERB_HINTS = frozenset(
    {
        "has",
        "have",
        "had",
        "is",
        "was",
        "are",
        "were",
        "will",
        "would",
        "can",
        "could",
        "may",
        "might",
        "must",
        "should",
        "shall",
        "did",
        "does",
        "do",
        "said",
        "says",
        "told",
        "tells",
        "added",
        "adds",
        "noted",
        "notes",
        "warned",
        "warns",
        "argued",
        "argues",
        "claimed",
        "claims",
        "stated",
        "states",
        "insisted",
        "insists",
        "announced",
        "announces",
        "suggested",
        "suggests",
        "urged",
        "urges",
        "called",
        "calls",
        "wrote",
        "writes",
        "declared",
        "denied",
        "denies",
        "confirmed",
        "confirms",
        "accused",
        "accuses",
        "expressed",
        "described",
        "reported",
        "believes",
        "believed",
        "thinks",
        "thought",
        "wants",
        "wanted",
        "plans",
        "planned",
        "signed",
        "met",
        "meets",
        "spoke",
        "speaks",
        "visited",
        "visits",
        "ordered",
        "agreed",
        "agrees",
        "rejected",
        "rejects",
        "welcomed",
        "praised",
        "criticised",
        "criticized",
        "vowed",
        "pledged",
        "promised",
        "admitted",
        "explained",
        "revealed",
        "emphasised",
        "emphasized",
        "stressed",
        "recalled",
        "asked",
        "replied",
        "responded",
        "proposed",
        "launched",
        "became",
        "remains",
        "remained",
        "continues",
        "continued",
    }
)
ADVERBS = frozenset(
    {
        "also",
        "earlier",
        "previously",
        "recently",
        "reportedly",
        "later",
        "then",
        "again",
        "repeatedly",
        "already",
        "once",
        "now",
        "still",
        "has",
        "had",
        "have",
    }
)


PREPOSITIONS = frozenset(
    {
        "of",
        "for",
        "to",
        "with",
        "from",
        "by",
        "about",
        "among",
        "between",
        "against",
        "than",
        "into",
        "over",
        "under",
        "at",
        "on",
        "in",
        "across",
        "after",
        "before",
        "without",
        "within",
        "despite",
        "towards",
        "toward",
    }
)
DETERMINERS = frozenset({"the", "a", "an", "his", "her", "their", "its", "our"})
# Words after which a new clause (with its own subject) may start.
CLAUSE_OPENERS = frozenset(
    {
        "and",
        "but",
        "or",
        "that",
        "which",
        "who",
        "whom",
        "whose",
        "while",
        "when",
        "whereas",
        "because",
        "although",
        "though",
        "if",
        "unless",
        "as",
        "where",
        "whether",
        "so",
        "said",
        "says",
        "told",
        "tells",
        "added",
        "warned",
        "claimed",
        "argued",
        "insisted",
        "noted",
        "believes",
        "believed",
        "thinks",
        "thought",
    }
)
_CLAUSE_BREAK = re.compile(r"[.;:!?,()\"“”—–]|\s['‘’]|['‘’]\s")
_COMMON_VERBS = (
    "account",
    "add",
    "agree",
    "allow",
    "announce",
    "appear",
    "argue",
    "ask",
    "become",
    "begin",
    "believe",
    "bring",
    "build",
    "buy",
    "call",
    "carry",
    "cause",
    "change",
    "claim",
    "close",
    "come",
    "confirm",
    "consider",
    "continue",
    "cost",
    "cover",
    "create",
    "cut",
    "decide",
    "deliver",
    "deny",
    "depend",
    "describe",
    "drop",
    "earn",
    "employ",
    "end",
    "expect",
    "explain",
    "face",
    "fall",
    "feel",
    "find",
    "follow",
    "force",
    "form",
    "gain",
    "get",
    "give",
    "go",
    "grow",
    "happen",
    "help",
    "hit",
    "hold",
    "hope",
    "include",
    "increase",
    "involve",
    "join",
    "keep",
    "know",
    "lack",
    "lead",
    "leave",
    "let",
    "like",
    "limit",
    "live",
    "look",
    "lose",
    "make",
    "mean",
    "meet",
    "move",
    "need",
    "offer",
    "open",
    "order",
    "own",
    "pay",
    "plan",
    "play",
    "produce",
    "promise",
    "propose",
    "provide",
    "publish",
    "push",
    "put",
    "raise",
    "reach",
    "receive",
    "reduce",
    "refuse",
    "reject",
    "release",
    "remain",
    "report",
    "represent",
    "require",
    "rise",
    "rule",
    "run",
    "say",
    "see",
    "seek",
    "seem",
    "sell",
    "send",
    "serve",
    "set",
    "show",
    "sign",
    "stand",
    "start",
    "stay",
    "stop",
    "suggest",
    "supply",
    "support",
    "take",
    "talk",
    "tell",
    "tend",
    "think",
    "threaten",
    "total",
    "turn",
    "use",
    "vote",
    "want",
    "warn",
    "win",
    "work",
    "write",
)
_IRREGULAR_PAST = (
    "became",
    "began",
    "brought",
    "built",
    "bought",
    "came",
    "cost",
    "cut",
    "fell",
    "felt",
    "found",
    "gave",
    "went",
    "grew",
    "hit",
    "held",
    "kept",
    "knew",
    "led",
    "left",
    "let",
    "lost",
    "made",
    "meant",
    "met",
    "paid",
    "put",
    "rose",
    "ran",
    "said",
    "saw",
    "sought",
    "sold",
    "sent",
    "set",
    "stood",
    "took",
    "told",
    "thought",
    "won",
    "wrote",
    "got",
)


def _verb_forms() -> frozenset[str]:
    forms = set(_IRREGULAR_PAST) | {"is", "was", "are", "were", "has", "had", "have", "does", "did"}
    for verb in _COMMON_VERBS:
        if verb.endswith("y") and verb[-2] not in "aeiou":
            forms.update({verb[:-1] + "ies", verb[:-1] + "ied"})
        elif verb.endswith(("s", "sh", "ch", "x", "o")):
            forms.update({verb + "es", verb + "ed"})
        else:
            forms.update({verb + "s", verb + ("d" if verb.endswith("e") else "ed")})
    return frozenset(forms | MODALS)


FINITE_VERBS = _verb_forms()


_CANDIDATE_CAPITALS = SENTENCE_OPENERS | ARTICLES | TITLES


def _strip_closers(text: str) -> str:
    return text.rstrip().rstrip(_CLOSERS).rstrip()


def ends_cleanly(paragraph: str) -> bool:
    """Ends in sentence punctuation of any script (closing quotes/brackets looked through), not in an ellipsis."""
    core = _strip_closers(paragraph)
    if not core or _ELLIPSIS.search(core) or _ELLIPSIS.search(paragraph.rstrip()):
        return False
    return core[-1] in SENTENCE_END


def has_cut_marker(paragraph: str) -> bool:
    """A visible cut: the text ends in an ellipsis ("...", "…", "[…]")."""
    return bool(_ELLIPSIS.search(_strip_closers(paragraph)) or _ELLIPSIS.search(paragraph.rstrip()))


def ends_mid_sentence(paragraph: str) -> bool:
    """The last word cannot end a sentence: a lower-case word, a comma or a dash; in scripts without
    letter case (CJK, Arabic, ...), any long paragraph without sentence punctuation."""
    core = _strip_closers(paragraph)
    if not core:
        return False
    if core[-1] in _CONTINUING:
        return True
    match = _LAST_WORD.search(core)
    if not match:
        return False
    word = match.group(1)
    if word.lower() == word.upper():  # no letter case: digits, or a caseless script
        return not word.isdigit() and word_units(paragraph) >= CASELESS_MIN_WORDS
    return word.islower() and core[-1].isalpha()


def is_cut(paragraphs: list[str]) -> bool:
    """The body stops mid-sentence (see module docstring, rule 1). Only evidence counts: a list item,
    a heading or a credit line without a full stop, or a script without sentence punctuation, is no cut."""
    if not paragraphs:
        return False
    last = paragraphs[-1]
    if has_cut_marker(last):
        return True
    if ends_cleanly(last) or ends_without_punctuation_by_script(last) or _LIST_ITEM.match(last):
        return False
    trailer = len(paragraphs) > 1 and word_units(last) <= TRAILER_MAX_WORDS and ends_cleanly(paragraphs[-2])
    return not trailer and ends_mid_sentence(last)


def _is_adjective(word: str) -> bool:
    if word in COMMON_ADJECTIVES:
        return True
    if word in NOT_ADJECTIVES or word in TITLE_MODIFIERS or len(word) < 5:
        return False
    return word.endswith(_ADJECTIVE_SUFFIXES)


def _name_then_verb(tokens: list[str]) -> bool:
    """Capitalised run (a title and a name) followed by a verb, optionally after one adverb."""
    index = 0
    while index < len(tokens) and tokens[index][:1].isupper():
        index += 1
    if index == 0 or index >= len(tokens):
        return False
    following = tokens[index]
    if following in VERB_HINTS:
        return True
    return (
        following in ADVERBS
        and index + 1 < len(tokens)
        and (tokens[index + 1] in VERB_HINTS or tokens[index + 1].endswith("ed"))
    )


def splice_at(paragraph: str) -> int | None:
    """Character offset of the first splice in a paragraph (module docstring, rule 2), or None."""
    for match in _PAIR.finditer(paragraph):
        word, capital = match.group(1), match.group(2)
        if not (capital in _CANDIDATE_CAPITALS or word in MODALS):
            continue  # most pairs are "said Putin"-like: decided without tokenising further
        at = match.start(2)
        after = _TOKEN.findall(paragraph[match.end() : match.end() + 160])
        next_lower = bool(after) and after[0][:1].islower()
        if capital in SENTENCE_OPENERS and next_lower:
            return at
        if capital in ARTICLES and after and (word in MODALS or _is_adjective(word)):
            return at
        tokens = [capital, *after[:8]]
        if word in MODALS and _name_then_verb(tokens):
            return at
        if capital in TITLES and _is_adjective(word) and _name_then_verb(tokens):
            return at
        if (
            capital in TITLES
            and word in DETERMINERS
            and _name_then_verb(tokens)
            and _object_of_finite_clause(paragraph, match.start(1))
        ):
            return at
    return None


def _object_of_finite_clause(paragraph: str, determiner_at: int) -> bool:
    """Rule e: the determiner follows a preposition whose clause already has a finite verb."""
    before = paragraph[:determiner_at].rstrip()
    clause = _CLAUSE_BREAK.split(before)[-1].split()
    if len(clause) < 3 or clause[-1] not in PREPOSITIONS:
        return False
    words = clause[:-1]
    for index in range(len(words) - 1, -1, -1):
        if words[index] in CLAUSE_OPENERS:
            words = words[index + 1 :]
            break
    # A verb right after a determiner is a noun ("the accounts"); the first word may be the subject.
    return any(
        word in FINITE_VERBS and index > 0 and words[index - 1].lower() not in DETERMINERS
        for index, word in enumerate(words)
    )


def is_spliced(paragraphs: list[str]) -> bool:
    return any(splice_at(p) is not None for p in paragraphs)


def is_truncated(paragraphs: list[str]) -> bool:
    """Cut at the end or spliced in the middle."""
    return is_cut(paragraphs) or is_spliced(paragraphs)
