"""Every observation type, and the one registry of observation kinds.

Observations are what collectors saw, as frozen dataclasses with their evidence: no I/O and no
judgement live here. Rules read only these types (import-linter keeps it so, see pyproject.toml).
A saved report names each observation by its ``kind``; :data:`KINDS` maps that name back to its
type. Adding an observation type means adding it to :data:`KINDS`, nowhere else.
"""

from __future__ import annotations

from auditor.model import Observation
from auditor.observations.amavis import AmavisConfig
from auditor.observations.audit import AuditGap
from auditor.observations.directory import DirectoryRecipients
from auditor.observations.dns import DnsMx
from auditor.observations.exchange import ExchangeCmdletOutput, ExchangeRun
from auditor.observations.exim import EximConfig
from auditor.observations.logs import PostfixLogEvidence, PostfixQueueSnapshot
from auditor.observations.ndr import CapturedNdr
from auditor.observations.postfix import LdapMapCheck, PostfixConfig
from auditor.observations.smtp import DataProbeResult, ProbeResult

KINDS: dict[str, type[Observation]] = {
    cls.kind: cls
    for cls in (
        AmavisConfig,
        AuditGap,
        CapturedNdr,
        DataProbeResult,
        DirectoryRecipients,
        DnsMx,
        ExchangeCmdletOutput,
        ExchangeRun,
        EximConfig,
        LdapMapCheck,
        PostfixConfig,
        PostfixLogEvidence,
        PostfixQueueSnapshot,
        ProbeResult,
    )
}
