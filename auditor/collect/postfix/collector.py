"""collect(DIR): files (and the real postconf when installed) → one PostfixConfig observation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from auditor.collect.postfix import postconf as postconf_mod
from auditor.collect.postfix.parse import Parsed, parse_files
from auditor.collect.postfix.redact import Redactor
from auditor.collect.postfix.tables import collect_tables
from auditor.model import InputError
from auditor.observations.postfix import PostfixConfig


def collect(directory: str, *, use_postconf: bool | None = None) -> PostfixConfig:
    """Collect the effective configuration of the Postfix config directory ``directory``.

    ``use_postconf``: None = read through the real ``postconf`` when it is installed, else parse
    the files; False = parse the files only; True = require ``postconf``. Bad input raises
    :class:`auditor.model.InputError` (file and line) in every mode.
    """
    parsed = parse_files(directory)
    redactor = Redactor(parsed.secret_flow)
    _learn(redactor, parsed)  # the secrets are known before postconf runs: its messages are scrubbed
    binary = postconf_mod.find_postconf() if use_postconf is not False else None
    if use_postconf and binary is None:
        raise InputError("the postconf command is not installed (use --no-postconf)", directory)
    source = "parser"
    mail_version = parsed.main.params["mail_version"].raw if "mail_version" in parsed.main.params else ""
    if binary is not None and parsed.templates and not use_postconf:
        # postconf stops at the first template line ("missing '='"): the parser's view is the best.
        parsed.notes.append("unrendered template: read by the file parser, postconf not used")
        binary = None
    if binary is not None:
        try:
            used = postconf_mod.apply_postconf(parsed, binary)
        except InputError as exc:
            raise redactor.error(exc) from None
        source = "postconf" if used else "parser"
    if source == "postconf":
        own = parsed.defaults.values.get("config_directory", "/etc/postfix")
        if parsed.directory.resolve() == Path(own).resolve() and "mail_version" in parsed.params:
            mail_version = parsed.params["mail_version"].value  # the live config of this Postfix
        else:
            parsed.notes.append(
                "postconf of the installed Postfix was used; its version need not be the linted server's"
            )
    tables, table_notes = collect_tables(parsed)
    if source == "postconf":
        _learn(redactor, parsed)  # postconf's values may hold secrets the parser's did not show
    scrub = redactor.text
    params = {n: redactor.scrub_param(redactor.param(pv)) for n, pv in parsed.params.items()}
    services = tuple(
        replace(
            svc,
            overrides={n: redactor.scrub_param(redactor.param(pv)) for n, pv in svc.overrides.items()},
            args=tuple(scrub(a) for a in redactor.args(svc.args)),
        )
        for svc in parsed.services
    )
    return PostfixConfig(
        target=str(parsed.directory),
        source=source,
        main_cf=str(parsed.directory / "main.cf"),
        master_cf=parsed.master.path,
        mail_version=mail_version,
        defaults_version=parsed.defaults.version,
        params=params,
        services=services,
        tables=tuple(
            replace(t, spec=scrub(t.spec), name=scrub(t.name), error=scrub(t.error)) for t in tables
        ),
        templates=tuple(
            replace(t, token=scrub(t.token), skipped_text=scrub(t.skipped_text)) for t in parsed.templates
        ),
        notes=tuple(scrub(n) for n in parsed.notes + table_notes),
    )


def _learn(redactor: Redactor, parsed: Parsed) -> None:
    """Redact every value once so that the redactor knows each secret string."""
    for pv in parsed.params.values():
        redactor.param(pv)
    for svc in parsed.services:
        for pv in svc.overrides.values():
            redactor.param(pv)
        redactor.args(svc.args)
