"""Recognise unrendered template placeholders in config files.

Config management ships main.cf/master.cf as templates: Jinja and Go (``{{ x }}``, ``{{ .X }}``,
``{% if %}``, ``{# #}``), Template Toolkit (``[% x %]``), ERB (``<%= x %>``, ``<% if %>``), Mason
(``<% $x %>``, ``<& comp &>``, ``% perl`` lines), ``%{x}`` (modoboa), ``PH_X`` (iRedMail samples)
and autoconf ``@X@``. A value holding one is not what the server runs, so it is marked templated.
"""

from __future__ import annotations

import re

# ``(?<!\$)``: Postfix's own ``${{$a} == {b} ? …}`` starts with ``{{`` and is not Jinja.
_TOKEN = re.compile(
    r"(?<!\$)\{\{.*?\}\}"
    r"|\{%.*?%\}"
    r"|\{#.*?#\}"
    r"|\[%.*?%\]"
    r"|%\{[A-Za-z_][\w.]*\}"
    r"|\bPH_[A-Z0-9_]+\b"
    r"|@[A-Z][A-Z0-9_]*@"
    r"|<%.*?%>"  # ERB (<%= x %>, <% if %>) and Mason (<% $x %>)
    r"|<&.*?&>"  # Mason component calls
)
_BLOCK = re.compile(r"\{%.*?%\}|\{#.*?#\}|\[%.*?%\]|\{\{-?\s*\"\\n\"\s*-?\}\}|<%(?!=).*?%>")
_PREFIX = re.compile(r"\s*(%\{[A-Za-z_][\w.]*\})")


def find_tokens(text: str) -> list[str]:
    """Every template token in ``text``, in order."""
    return [m.group() for m in _TOKEN.finditer(text)] if _might_hold(text) else []


def _might_hold(text: str) -> bool:
    # Cheap pre-check keeps a 10 MB line fast when it holds no template syntax.
    return (
        "{{" in text
        or "{%" in text
        or "{#" in text
        or "[%" in text
        or "%{" in text
        or "PH_" in text
        or ("@" in text)
        or "<%" in text
        or "<&" in text
    )


def is_template_only_line(stripped: str) -> bool:
    """A line that is only template control (``{% if x %}``, ``[% END %]``): skipped, with a token."""
    if stripped.startswith("% ") or stripped == "%":
        return True  # a Mason Perl line; no Postfix line starts with "% "
    if not (stripped.startswith("{") or stripped.startswith("[%") or stripped.startswith("<%")):
        return False
    return not _BLOCK.sub("", stripped).strip()


def strip_leading_token(line: str) -> tuple[str, str]:
    """``%{flag}smtp inet …`` (a template that comments a line in or out) → (``smtp inet …``, token)."""
    m = _PREFIX.match(line)
    if not m:
        return line, ""
    return line[m.end() :], m.group(1)


def rendered_words(text: str) -> str:
    """The Postfix words of a template line: control blocks and a line-prefix flag removed.

    ``[%- IF verify %] reject_unverified_recipient[% END %]`` → ``reject_unverified_recipient``;
    ``%{enabled}   proxy:%{db}:/etc/x.cf`` → ``proxy:%{db}:/etc/x.cf`` (value placeholders stay).
    """
    text, _flag = strip_leading_token(_BLOCK.sub(" ", text))
    return " ".join(text.split())
