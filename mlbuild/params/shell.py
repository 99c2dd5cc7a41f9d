"""Which parameter values may be pasted into a string ``cmd``, which ``/bin/sh -c`` parses.

Quoting cannot make pasted text safe: a quoted value is safe only where the reference sits
unquoted — ``shlex.quote`` output inside ``"…"``, inside ``sh -c '…'`` or in a here-document is
parsed again, and ``$(…)`` in it runs. No quoting works in every context, and telling the contexts
apart means parsing the shell. So mlbuild pastes a value as it is, and only if it is *inert*: made
of ASCII letters, digits and ``._-/:=+,@%``, non-empty, and not a shell keyword.

Why that is safe wherever the reference sits: none of those characters means anything to the POSIX
shell grammar in any context — no quote, escape, expansion (``$``, backtick), blank or line break,
operator (``;|&<>()``), glob (``*?[``), brace, tilde or comment character — so an inert value is
read as the same literal characters unquoted, inside ``"…"``, inside ``'…'``, in a nested
``sh -c '…'`` or ``bash -c "…"`` at any depth, in ``$(…)`` and in a here-document, and it can
neither end the word it is in nor start a new one. Two ways remain for a literal word to change a
command's structure, and both are refused: a keyword (``fi``, ``done``…) where a command starts,
and a line of a here-document that equals its delimiter. The inert set is ``shlex.quote``'s own
"needs no quotes" set, so an accepted value pastes exactly as it did when values were quoted, and
no fingerprint changes.

A value that is not inert is refused when the recipe is compiled, with the step and the reason;
a list ``cmd`` (never parsed by a shell) and the ``MLBUILD_PARAMS`` file take any value.
"""

from __future__ import annotations

import re

_INERT = re.compile(r"[A-Za-z0-9._\-/:=+,@%]+")
# reserved words of POSIX sh and bash: a command word that is one changes the command's grammar
_KEYWORDS = frozenset(
    {"case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in"}
    | {"select", "then", "time", "until", "while"}
)
# ``<<WORD``, ``<<-WORD``, ``<< 'WORD'``, ``<<"WORD"``, ``<<\WORD``; ``<<<`` is a here-string
_HEREDOC = re.compile(r"(?<!<)<<-?[ \t]*(?:'([^'\n]*)'|\"([^\"\n]*)\"|\\?([^\s;&|<>()'\"]+))")
_NAMES = {" ": "a space", "\t": "a tab", "\n": "a line break", "\r": "a carriage return"}


def unsafe_reason(value: str) -> str | None:
    """Why ``value`` cannot be pasted into a shell command, or None if it is inert."""
    if value == "":
        return "it is empty, so it would vanish from the command line"
    if not _INERT.fullmatch(value):
        bad = next(c for c in value if not _INERT.fullmatch(c))
        return f"it contains {_NAMES.get(bad, repr(bad))}"
    if value in _KEYWORDS:
        return f"it is the shell keyword '{value}'"
    return None


def heredoc_clash(template: str, pasted: str) -> tuple[str, str] | None:
    """How pasting turned ``template`` into ``pasted`` changes a here-document, or None: the part
    of ``template`` at fault (a line, or a ``<<`` delimiter) and the reason.

    ``pasted`` has the same lines as ``template`` (inert values hold no line break). A line that
    changed and now equals a delimiter (after the tabs ``<<-`` strips) would end that
    here-document early and run the lines after it as commands. A delimiter that a value is part
    of is refused too: then the value decides which later line ends it.
    """
    if "<<" not in pasted:
        return None
    for match in _HEREDOC.finditer(template):
        if "${params." in match.group(0):
            return match.group(0), "a here-document's delimiter cannot come from a param"
    delimiters = {_word(m) for m in _HEREDOC.finditer(pasted)}
    for before, after in zip(template.split("\n"), pasted.split("\n"), strict=True):
        word = after.lstrip("\t")
        if before != after and word in delimiters:
            return before, f"it would end the here-document <<{word} early"
    return None


def _word(match: re.Match[str]) -> str:
    return next(group for group in match.groups() if group is not None)
