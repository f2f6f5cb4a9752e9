"""collect(DIR): files (and the real postconf when installed) → one PostfixConfig observation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from auditor.collect.postfix import postconf as postconf_mod
from auditor.collect.postfix.parse import parse_files
from auditor.collect.postfix.redact import (
    redact_params,
    redact_service,
    scrub_param,
    scrub_text,
    secret_values,
)
from auditor.collect.postfix.tables import collect_tables
from auditor.observations.postfix import PostfixConfig


def collect(directory: str, *, use_postconf: bool | None = None) -> PostfixConfig:
    """Collect the effective configuration of the Postfix config directory ``directory``.

    ``use_postconf``: None = read through the real ``postconf`` when it is installed, else parse
    the files; False = parse the files only; True = require ``postconf``. Bad input raises
    :class:`auditor.model.InputError` (file and line) in every mode.
    """
    parsed = parse_files(directory)
    binary = postconf_mod.find_postconf() if use_postconf is not False else None
    if use_postconf and binary is None:
        from auditor.model import InputError

        raise InputError("the postconf command is not installed (use --no-postconf)", directory)
    source = "parser"
    mail_version = parsed.main.params["mail_version"].raw if "mail_version" in parsed.main.params else ""
    if binary is not None and parsed.templates and not use_postconf:
        # postconf stops at the first template line ("missing '='"): the parser's view is the best.
        parsed.notes.append("unrendered template: read by the file parser, postconf not used")
        binary = None
    if binary is not None:
        postconf_mod.apply_postconf(parsed, binary)
        source = "postconf"
        own = parsed.defaults.values.get("config_directory", "/etc/postfix")
        if parsed.directory.resolve() == Path(own).resolve() and "mail_version" in parsed.params:
            mail_version = parsed.params["mail_version"].value  # the live config of this Postfix
        else:
            parsed.notes.append(
                "postconf of the installed Postfix was used; its version need not be the linted server's"
            )
    tables, table_notes = collect_tables(parsed)
    main_cf = str(parsed.directory / "main.cf")
    master_cf = parsed.master.path
    # Secret values, wherever else they were expanded into (``alias_maps = $x_bind_pw``).
    secrets = secret_values(parsed.params, parsed.services)
    return PostfixConfig(
        target=str(parsed.directory),
        source=source,
        main_cf=main_cf,
        master_cf=master_cf,
        mail_version=mail_version,
        defaults_version=parsed.defaults.version,
        params={n: scrub_param(pv, secrets) for n, pv in redact_params(parsed.params).items()},
        services=tuple(
            replace(
                svc,
                overrides={n: scrub_param(pv, secrets) for n, pv in svc.overrides.items()},
                args=tuple(scrub_text(a, secrets) for a in svc.args),
            )
            for svc in (redact_service(s) for s in parsed.services)
        ),
        tables=tables,
        templates=tuple(parsed.templates),
        notes=tuple(parsed.notes + table_notes),
    )
