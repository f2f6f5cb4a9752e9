"""Parser details: PowerShell's JSON quirks, CLIXML safety, console-text truncation and wrapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.collect.exchange import collect, read_file
from auditor.judge import judge
from auditor.model import InputError, RunInfo
from auditor.observations.exchange import ExchangeCmdletOutput, ExchangeRun
from auditor.observations.exchange_values import parse_size, timespan_text
from auditor.serialize import report_from_dict, report_to_dict
from tests.unit.exchange.helpers import ex_findings, summary


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return str(p)


# ------------------------------------------------------------------ plain ConvertTo-Json


def test_numeric_enum_single_object_and_dates(tmp_path: Path) -> None:
    # Windows PowerShell 5.1: one object is not wrapped in an array, enums are numbers.
    doc = {"Identity": "legacy.example", "DomainName": "legacy.example", "DomainType": 2,
           "WhenChanged": "/Date(1700000000000)/"}  # fmt: skip
    path = write(tmp_path, "out.json", json.dumps(doc))
    (out,) = read_file(path).outputs
    assert out.cmdlet == "Get-AcceptedDomain" and out.form == "convertto-json"
    (obj,) = out.objects
    assert obj.text("DomainType") == "InternalRelay"
    assert obj.text("WhenChanged") == "2023-11-14T22:13:20Z"
    assert ("EX-DOM-001", "fail", "legacy.example") in summary(ex_findings([path]))


def test_value_count_wrapper(tmp_path: Path) -> None:
    rows = [{"Identity": "a.example", "DomainName": "a.example", "DomainType": 0},
            {"Identity": "star", "DomainName": "*", "DomainType": 1}]  # fmt: skip
    path = write(tmp_path, "w.json", json.dumps({"value": rows, "Count": 2}))
    got = summary(ex_findings([path]))
    assert ("EX-RELAY-001", "fail", "star") in got
    assert ("EX-DOM-001", "pass", "a.example") in got


def test_unverified_enum_number_is_not_guessed(tmp_path: Path) -> None:
    doc = [{"Identity": "Default", "DomainName": "*", "AllowedOOFType": 0, "NDREnabled": True}]
    path = write(tmp_path, "rd.json", json.dumps(doc))
    assert summary(ex_findings([path])) == {("EX-AR-001", "inconclusive", "Default")}


def test_depth_truncated_json_is_inconclusive(tmp_path: Path) -> None:
    # ConvertTo-Json past -Depth writes the type name instead of the value.
    marker = "Microsoft.Exchange.Data.Unlimited`1[Microsoft.Exchange.Data.ByteQuantifiedSize]"
    doc = {"Identity": "Transport Settings", "ExternalDsnMaxMessageAttachSize": marker,
           "ExternalPostmasterAddress": None}  # fmt: skip
    path = write(tmp_path, "tc.json", json.dumps(doc))
    (out,) = read_file(path).outputs
    v = out.objects[0].get("ExternalDsnMaxMessageAttachSize")
    assert v is not None and v.truncated
    assert summary(ex_findings([path])) == {("EX-DSN-001", "inconclusive", "Transport Settings")}


def test_missing_property_is_never_a_pass(tmp_path: Path) -> None:
    # RecipientValidationEnabled defaults to $false: an object without it proves nothing.
    path = write(
        tmp_path, "rf.json", json.dumps([{"Identity": "RecipientFilterConfig", "BlockListEnabled": True}])
    )
    got = summary(ex_findings([path]))
    assert ("EX-RCPT-001", "inconclusive", "RecipientFilterConfig") in got
    assert not any(s == "pass" for _, s, _ in got)


def test_collector_error_makes_rule_inconclusive(tmp_path: Path) -> None:
    doc = {
        "schema": "backscatter-audit-exchange/1",
        "manifest": {"environment": "OnPremises", "server": "MBX01", "cmdlets": [
            {"name": "Get-SenderFilterConfig", "when": "x", "count": 0,
             "error": "The term 'Get-SenderFilterConfig' is not recognized as the name of a cmdlet"}]},
        "data": {},
    }  # fmt: skip
    path = write(tmp_path, "c.json", json.dumps(doc))
    obs = collect([path])
    run = next(o for o in obs if isinstance(o, ExchangeRun))
    assert run.environment == "OnPremises" and run.environment_source == "collector manifest"
    (f,) = [f for f in ex_findings([path]) if f.rule_id == "EX-NULL-001"]
    assert f.status.value == "inconclusive" and "not recognized" in f.message


def test_unknown_schema_and_unattributable_json(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown schema"):
        read_file(write(tmp_path, "s.json", '{"schema": "other/9", "data": {}}'))
    with pytest.raises(InputError, match="cannot tell which Exchange cmdlet"):
        read_file(write(tmp_path, "x.json", '{"a": 1, "b": [1, 2]}'))
    with pytest.raises(InputError, match="not valid JSON") as err:
        read_file(write(tmp_path, "bad.json", '{\n  "Identity": "x",\n  oops\n}'))
    assert err.value.line == 3


# ------------------------------------------------------------------ CLIXML


def test_doctype_is_refused(tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S>&b;</S></Objs>'
    )
    with pytest.raises(InputError, match="DOCTYPE"):
        read_file(write(tmp_path, "bomb.xml", bomb))


def test_empty_clixml_is_attributed_by_file_name(tmp_path: Path) -> None:
    empty = '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">\n</Objs>\n'
    (out,) = read_file(write(tmp_path, "Get-EdgeSubscription.xml", empty)).outputs
    assert out.cmdlet == "Get-EdgeSubscription" and out.objects == ()
    with pytest.raises(InputError, match="no objects"):
        read_file(write(tmp_path, "export.xml", empty))


def test_malformed_xml_names_line(tmp_path: Path) -> None:
    text = '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">\n<Obj>\n</Objs>'
    with pytest.raises(InputError) as err:
        read_file(write(tmp_path, "m.xml", text))
    assert err.value.line == 3 and "malformed XML" in str(err.value)


# ------------------------------------------------------------------ console text


def test_truncated_console_values(tmp_path: Path) -> None:
    text = (
        "PS C:\\> Get-ReceiveConnector | fl Identity,Bindings,RemoteIPRanges,PermissionGroups\n\n"
        "Identity         : MBX01\\Default Frontend MBX01\n"
        "Bindings         : {[::]:25, 0.0.0.0:25}\n"
        "RemoteIPRanges   : {10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 192.0.2.0/24...}\n"
        "PermissionGroups : AnonymousUsers, ExchangeServers, ExchangeLegacyS...\n"
    )
    (out,) = read_file(write(tmp_path, "t.txt", text)).outputs
    (obj,) = out.objects
    ranges = obj.get("RemoteIPRanges")
    assert ranges is not None and ranges.truncated and ranges.items[:2] == ("10.0.0.0/8", "172.16.0.0/12")
    perms = obj.get("PermissionGroups")
    assert perms is not None and perms.truncated
    assert summary(ex_findings([out.path])) == {
        ("EX-RCPT-003", "inconclusive", "MBX01\\Default Frontend MBX01")
    }


def test_wrapped_values_are_joined(tmp_path: Path) -> None:
    text = (
        "Identity         : MBX01\\Default Frontend MBX01\n"
        "Bindings         : {[::]:25,\n"
        "                   0.0.0.0:25}\n"
        "RemoteIPRanges   : {::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,\n"
        "                   0.0.0.0-255.255.255.255}\n"
        "PermissionGroups : AnonymousUsers, ExchangeServers\n"
    )
    (out,) = read_file(write(tmp_path, "w.txt", text)).outputs
    assert out.cmdlet == "Get-ReceiveConnector"  # inferred from property names
    b = out.objects[0].get("Bindings")
    r = out.objects[0].get("RemoteIPRanges")
    assert b is not None and b.items == ("[::]:25", "0.0.0.0:25")
    assert r is not None and r.items == (
        "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "0.0.0.0-255.255.255.255",
    )


def test_utf16_crlf_paste(tmp_path: Path) -> None:
    text = "SCLRejectEnabled : True\r\nEnabled          : True\r\nIdentity         : ContentFilterConfig\r\n"
    path = write(tmp_path, "u16.txt", b"\xff\xfe" + text.encode("utf-16-le"))
    (out,) = read_file(path).outputs
    assert out.cmdlet == "Get-ContentFilterConfig"
    assert out.objects[0].text("Identity") == "ContentFilterConfig"
    # No receive connector data: whether this hop is the perimeter is unknown.
    assert summary(ex_findings([path])) == {("EX-CF-001", "inconclusive", "ContentFilterConfig")}


def test_environment_inferred_from_cmdlets(tmp_path: Path) -> None:
    path = write(tmp_path, "h.txt", "Identity   : Default\nSpamAction : MoveToJmf\nBulkThreshold : 7\n")
    run = next(o for o in collect([path]) if isinstance(o, ExchangeRun))
    assert run.environment == "ExchangeOnline" and "Get-HostedContentFilterPolicy" in run.environment_source


# ------------------------------------------------------------------ values and round trip


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10 MB (10,485,760 bytes)", 10485760), ("0 B (0 bytes)", 0), ("10MB", 10485760), ("Unlimited", None),
     ("35 MB (36,700,160 bytes)", 36700160), ("1.5 KB", 1536)],
)  # fmt: skip
def test_parse_size(text: str, expected: int | None) -> None:
    assert parse_size(text) == expected


def test_timespan_text() -> None:
    assert timespan_text("PT5S") == "00:00:05"
    assert timespan_text("P1DT2H") == "1.02:00:00"


def test_observations_round_trip_through_report_json(tmp_path: Path) -> None:
    from tests.unit.exchange.helpers import files

    obs = collect(files("onprem-bad", "format-list"))
    run = RunInfo(tool="t", tool_version="0", started="s", finished="f", command="c")
    report = judge((), obs, run=run)
    back = report_from_dict(json.loads(json.dumps(report_to_dict(report))))
    assert back.observations == report.observations
    assert any(isinstance(o, ExchangeCmdletOutput) for o in back.observations)


def test_hostile_values_parse_in_linear_time(tmp_path: Path) -> None:
    import time

    started = time.process_time()
    assert parse_size("(" + " " * 50_000 + "x") is None  # once took seconds (overlapping classes)
    long_paste = "Identity : x\nDescription : a\n" + ("        wrapped text\n" * 50_000)
    with pytest.raises(InputError):
        read_file(write(tmp_path, "long.txt", long_paste))  # parsed, but no known cmdlet in it
    assert time.process_time() - started < 5
