"""What the Exim collector observes: one configuration as Exim reads it, with file:line evidence.

Facts only: main options, named lists, ACL statements in order, routers and transports, the
conditional branches taken, and the files the configuration names (does each exist in what was
given, what does it hold). The rules in ``auditor/rules/exim.py`` judge them; the collector
(``auditor/collect/exim/``) fills them. Secret values (``hide`` options, authenticator settings,
option names that say password/secret/key) are replaced by :data:`REDACTED`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor.model import Location, Observation

REDACTED = "<redacted>"
ACL_VERBS = ("accept", "defer", "deny", "discard", "drop", "require", "warn")


@dataclass(frozen=True)
class EximSetting:
    """One ``name = value`` (main option, driver option); booleans are "true" / "false"."""

    name: str
    value: str
    location: Location
    hidden: bool = False  # ``hide`` prefix, or a secret by name: value redacted in the observation


@dataclass(frozen=True)
class EximNamedList:
    """``domainlist|hostlist|addresslist|localpartlist NAME = value`` (macros expanded)."""

    type: str  # domain | host | address | localpart
    name: str
    value: str
    location: Location
    hidden: bool = False

    @property
    def ref(self) -> str:
        return "+" + self.name


@dataclass(frozen=True)
class EximCondition:
    """One condition or modifier of an ACL statement (``!verify = recipient/callout=30s``)."""

    name: str
    value: str
    negated: bool
    location: Location
    bare: bool = False  # written without ``= value`` (``endpass``)

    def __str__(self) -> str:
        neg = "!" if self.negated else ""
        return f"{neg}{self.name}" if self.bare else f"{neg}{self.name} = {self.value}"


@dataclass(frozen=True)
class EximAclStatement:
    verb: str
    location: Location
    conditions: tuple[EximCondition, ...] = ()

    def __str__(self) -> str:
        return " ".join([self.verb, *(str(c) for c in self.conditions)])


@dataclass(frozen=True)
class EximAcl:
    name: str
    location: Location
    statements: tuple[EximAclStatement, ...] = ()


@dataclass(frozen=True)
class EximDriver:
    """A router, transport or authenticator instance with its options as written."""

    kind: str  # router | transport | authenticator
    name: str
    location: Location
    options: dict[str, EximSetting] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        st = self.options.get(name)
        return st.value if st else default

    @property
    def driver(self) -> str:
        return self.get("driver")


@dataclass(frozen=True)
class EximFile:
    """A file the configuration names (lookup file, list file, filter), as found in what was given.

    ``exists`` is None when the file lies outside what was given (not read, not guessed).
    ``lines`` holds the file's non-comment lines with their numbers, up to a limit
    (``truncated`` says it stopped); ``wildcard_keys`` are keys that match any key in a
    wildcard lookup (``*``, ``*@domain``, regular expressions), with their line numbers.
    """

    path: str  # as the configuration names it
    used_at: Location
    resolved: str = ""  # where it was read
    exists: bool | None = None
    readable: bool = False
    entries: int = 0
    lines: tuple[tuple[int, str], ...] = ()
    truncated: bool = False
    wildcard_keys: tuple[tuple[int, str], ...] = ()
    error: str = ""


@dataclass(frozen=True)
class EximBranch:
    """One ``.ifdef``-style directive and its outcome."""

    directive: str
    argument: str
    taken: bool  # was a macro found on that line
    location: Location
    builtins_assumed: tuple[str, ...] = ()  # built-in macros assumed undefined (no Exim binary)


@dataclass(frozen=True)
class EximTemplateToken:
    """An unrendered template placeholder (``{{ x }}``, Debian ``DEBCONFxDEBCONF``): not what runs."""

    token: str
    location: Location


@dataclass(frozen=True)
class EximConfig(Observation):
    """The configuration of one Exim instance (a file, or Debian's /etc/exim4 directory)."""

    kind = "exim.config"

    layout: str = "file"  # file | debian-split | debian-template | debian-exim4.conf
    main_file: str = ""
    files: tuple[str, ...] = ()  # every configuration file read, in order
    options: dict[str, EximSetting] = field(default_factory=dict)
    lists: dict[str, EximNamedList] = field(default_factory=dict)
    macros: dict[str, EximSetting] = field(default_factory=dict)
    acls: tuple[EximAcl, ...] = ()
    routers: tuple[EximDriver, ...] = ()
    transports: tuple[EximDriver, ...] = ()
    authenticators: tuple[EximDriver, ...] = ()
    branches: tuple[EximBranch, ...] = ()
    referenced: tuple[EximFile, ...] = ()
    templates: tuple[EximTemplateToken, ...] = ()
    logical_lines: int = 0
    builtins_source: str = ""  # where the built-in macro list came from ("" = none consulted)
    server_paths: bool = False  # the linted files are the live ones: absolute paths were read as named
    notes: tuple[str, ...] = ()

    def option(self, name: str) -> EximSetting | None:
        return self.options.get(name)

    def value(self, name: str, default: str = "") -> str:
        st = self.options.get(name)
        return st.value if st else default

    def acl(self, name: str) -> EximAcl | None:
        return next((a for a in self.acls if a.name == name), None)

    def file(self, path: str) -> EximFile | None:
        return next((f for f in self.referenced if f.path == path), None)

    def router(self, name: str) -> EximDriver | None:
        return next((r for r in self.routers if r.name == name), None)
