"""The machine formats validate against their schemas: our report schema, OASIS SARIF 2.1.0 and
the Jenkins xUnit JUnit XSD; and their mapping decisions hold."""

from __future__ import annotations

import copy
import dataclasses
import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest
import xmlschema

from auditor.model import Evidence, Finding, Location, Severity, Status
from auditor.render import junit, sarif
from auditor.schema import REPORT_SCHEMA_PATH, load_report_schema
from auditor.schema.generate import schema_text
from auditor.serialize import report_to_dict
from tests.conftest import SCHEMAS, need_shared
from tests.unit.render.fixtures import CATALOG, golden_report, judged


def _report_validator() -> jsonschema.Draft202012Validator:
    schema = load_report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_the_generated_one() -> None:
    committed = REPORT_SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == schema_text(), (
        "the model changed: python -m auditor.schema.generate > auditor/schema/report-2.schema.json"
    )


def test_report_document_validates_against_committed_schema() -> None:
    _report_validator().validate(report_to_dict(golden_report(partial=True)))
    _report_validator().validate(report_to_dict(judged(())))


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.update(schema="backscatter-audit/1"),
        lambda d: d["findings"][0].update(status="failed"),
        lambda d: d["findings"][0].update(severity="urgent"),
        lambda d: d["findings"][0].pop("target"),
        lambda d: d["findings"][0].update(extra=1),
        lambda d: d["findings"][0]["evidence"][0]["location"].update(line=0),
        lambda d: d["run"].pop("command"),
        lambda d: d["observations"][0].pop("kind"),
        lambda d: d.pop("assessment"),
        lambda d: d["assessment"].update(verdict="maybe"),
        lambda d: d["assessment"]["by_status"].update(failed=1),
        lambda d: d["plan"][0].update(effort="weeks"),
        lambda d: d["plan"][0]["steps"][0]["commands"][0].update(safe="no"),
        lambda d: d["compliance"][0].update(status="not assessed"),
        lambda d: d["rules"][0].pop("family"),
    ],
)
def test_schema_rejects_broken_documents(breakage: object) -> None:
    doc = copy.deepcopy(report_to_dict(golden_report()))
    breakage(doc)  # type: ignore[operator]
    assert not _report_validator().is_valid(doc)


def _sarif_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(need_shared(SCHEMAS / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft4Validator
    return cls(schema)


def test_sarif_validates_with_and_without_registry_metadata() -> None:
    validator = _sarif_validator()
    validator.validate(sarif.to_sarif(golden_report()))
    validator.validate(sarif.to_sarif(judged(golden_report().findings, catalog={})))  # no entries


def test_sarif_mapping() -> None:
    log = sarif.to_sarif(golden_report(), information_uri="https://example.org/bsa")
    run = log["runs"][0]
    assert run["tool"]["driver"]["informationUri"] == "https://example.org/bsa"
    # the headline is the assessment's
    assert run["invocations"][0]["exitCode"] == 1 and run["properties"]["verdict"] == "fail"
    high = sarif.to_sarif(golden_report(fail_on=Severity.CRITICAL))["runs"][0]
    assert high["invocations"][0]["exitCode"] == 1 and high["properties"]["failOn"] == "critical"
    results = {(r["ruleId"], r["properties"]["target"]): r for r in run["results"]}
    # pass and not-applicable are not results; fail, inconclusive and suppressed are
    assert {k[0] for k in results} == {
        "SMTP-RCPT-002",
        "PF-RCPT-003",
        "LDAP-SYNC-001",
        "DNS-NULLMX-001",
        "NDR-FMT-005",
        "SMTP-NULL-001",
        "PF-DSN-001",
    }
    pf = results[("PF-RCPT-003", "etc/postfix-backup/main.cf")]
    assert pf["level"] == "error" and pf["kind"] == "fail"
    phys = pf["locations"][0]["physicalLocation"]
    assert phys["artifactLocation"]["uri"] == "etc/postfix-backup/main.cf"
    assert phys["region"]["startLine"] == 12
    dn = results[("LDAP-SYNC-001", "uid=old.user,ou=people,dc=example,dc=com")]
    assert dn["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].startswith("uid=old.user")
    # GitHub code scanning rejects logical-only locations: non-file targets anchor to the run's input
    assert dn["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "site.toml"}}
    assert all("physicalLocation" in r["locations"][0] for r in run["results"])
    bare = dataclasses.replace(golden_report(), run=dataclasses.replace(golden_report().run, inputs=()))
    bare_results = sarif.to_sarif(bare)["runs"][0]["results"]
    dn_bare = next(r for r in bare_results if r["ruleId"] == "LDAP-SYNC-001")
    assert "physicalLocation" not in dn_bare["locations"][0]
    _sarif_validator().validate(sarif.to_sarif(bare))
    inc = results[("SMTP-NULL-001", "mx1.example.com[192.0.2.10]")]
    assert (inc["kind"], inc["level"]) == ("review", "none")
    sup = results[("PF-DSN-001", "etc/postfix-backup/main.cf")]
    assert sup["suppressions"][0]["justification"] == "accepted until the backup MX is retired"
    assert results[("DNS-NULLMX-001", "example.net")]["level"] == "note"
    fps = [r["partialFingerprints"][sarif.FINGERPRINT] for r in run["results"]]
    assert len(set(fps)) == len(fps)
    # fingerprints depend on (rule, target) only, so a reworded message keeps its identity
    f = golden_report().findings[0]
    assert sarif.fingerprint(f) == sarif.fingerprint(dataclasses.replace(f, message="other words"))
    rules = run["tool"]["driver"]["rules"]
    for r in run["results"]:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
    by_id = {r["id"]: r for r in rules}
    assert by_id["PF-RCPT-003"]["shortDescription"]["text"].startswith("relay domains without")
    assert by_id["SMTP-RCPT-002"]["defaultConfiguration"]["level"] == "error"


def test_sarif_uses_the_rule_page_the_report_carries() -> None:
    catalog = {**CATALOG, "PF-RCPT-003": dataclasses.replace(CATALOG["PF-RCPT-003"], title="Catalog title")}
    log = sarif.to_sarif(judged(golden_report().findings, catalog=catalog))
    rule = next(r for r in log["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "PF-RCPT-003")
    assert rule["shortDescription"]["text"] == "Catalog title"
    assert rule["fullDescription"]["text"] == "Relay domains accepted without a list."
    assert rule["help"]["markdown"].startswith("## What it flags")
    assert "postconf(5) relay_recipient_maps" in rule["help"]["markdown"]
    assert rule["properties"]["tags"] == ["security", "backscatter", "postfix"]
    _sarif_validator().validate(log)


def test_sarif_absolute_paths_become_file_uris() -> None:
    f = Finding(
        "PF-RCPT-001",
        Status.FAIL,
        Severity.CRITICAL,
        "/etc/postfix dir/main.cf",
        "m",
        evidence=(Evidence("x", Location("/etc/postfix dir/main.cf", 3, column=5)),),
    )
    log = sarif.to_sarif(judged((f,)))
    phys = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert phys["artifactLocation"]["uri"] == "file:///etc/postfix%20dir/main.cf"
    assert phys["region"] == {"startLine": 3, "startColumn": 5}
    _sarif_validator().validate(log)


def _junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(need_shared(SCHEMAS / "junit.xsd")))


def test_junit_validates_and_counts() -> None:
    text = junit.render(golden_report())
    _junit_schema().validate(text)
    root = ET.fromstring(text)
    assert root.get("tests") == "9" and root.get("failures") == "5" and root.get("errors") == "1"
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases))
        assert suite.get("failures") == str(sum(c.find("failure") is not None for c in cases))
        assert suite.get("errors") == str(sum(c.find("error") is not None for c in cases))
        assert suite.get("skipped") == str(sum(c.find("skipped") is not None for c in cases))
    names = {s.get("name") for s in root.iter("testsuite")}
    assert {"postfix", "smtp", "directory", "dns", "exchange", "ndr"} <= names
    case = {c.get("name"): c for c in root.iter("testcase")}
    assert case["SMTP-NULL-001 mx1.example.com[192.0.2.10]"].find("error") is not None
    assert case["PF-DSN-001 etc/postfix-backup/main.cf"].find("skipped").get("type") == "suppressed"  # type: ignore[union-attr]
    assert case["EX-RCPT-001 (site)"].find("skipped").get("type") == "not-applicable"  # type: ignore[union-attr]
    assert "S: 250 2.1.5 Ok" in (case["SMTP-RCPT-002 mx2.example.com[192.0.2.25]"].find("failure").text or "")  # type: ignore[union-attr]


def test_junit_survives_control_characters() -> None:
    f = Finding("SMTP-RCPT-001", Status.FAIL, Severity.CRITICAL, "mx\x00.example", "reply \x01\x1b[31m")
    text = junit.render(judged((f,)))
    _junit_schema().validate(text)
    assert "\\x01" in text and "\x01" not in text
