"""site.toml: the template parses; unknown keys, wrong types and missing files name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.cli import main
from auditor.config import SITE_TOML_TEMPLATE, load_site_config, parse_site_config
from auditor.model import InputError


def test_template_parses_to_defaults() -> None:
    cfg = parse_site_config(SITE_TOML_TEMPLATE, "site.toml")
    assert cfg.site.domains == ("example.com",)
    assert cfg.probe.data_probes is False
    assert cfg.report.formats == ("html", "markdown", "json")


def test_values_are_typed() -> None:
    cfg = parse_site_config(
        '[site]\ndomains=["a.test"]\n[probe]\ntimeout = 5\n'
        '[[mx_override]]\ndomain="a.test"\nhosts=["mx.a.test"]\n',
        "s.toml",
    )
    assert cfg.probe.timeout == 5.0 and isinstance(cfg.probe.timeout, float)
    assert cfg.mx_override[0].hosts == ("mx.a.test",)


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ('[site]\ndomains = ["a.test"]\n\n[probe]\nalow_external_mx = true\n', 5, "unknown key 'probe.alow"),
        ('[site]\ndomains = "a.test"\n', 2, "site.domains must be a list of strings"),
        ("[probe]\nconcurrency = 1.5\n", 2, "probe.concurrency must be an integer"),
        ("[site]\n[[mx_override]]\ndomain = 'x'\nport = 25\n", 4, "unknown key 'mx_override.port'"),
        ("[report]\nfail_on = 'severe'\n", 2, "report.fail_on must be one of"),
        ("[site\n", 1, "invalid TOML"),
        ("[bogus]\nx = 1\n", None, "unknown key 'bogus'"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int | None, needle: str) -> None:
    with pytest.raises(InputError) as err:
        parse_site_config(text, "site.toml")
    assert needle in str(err.value)
    assert err.value.path == "site.toml"
    if line is not None:
        assert err.value.line == line


def test_missing_password_file_and_unreadable_export(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[directory]\nurls = ["ldap://127.0.0.1"]\npassword_file = "nope.pw"\n')
    with pytest.raises(InputError) as err:
        load_site_config(str(site))
    assert err.value.line == 3 and "nope.pw" in str(err.value)
    site.write_text('[exchange]\nexports = ["missing.json"]\n')
    with pytest.raises(InputError, match="no such file"):
        load_site_config(str(site))


def test_cli_reports_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.toml"
    site.write_text("[site]\ndomains = ['a.test']\nfoo = 1\n")
    assert main(["audit", "--config", str(site)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{site}:3:" in err[0]


def test_deeply_nested_inputs_are_input_errors(tmp_path: Path) -> None:
    """A hostile file nested a million deep is one clear error, not a RecursionError traceback."""
    from auditor.serialize import load_report
    from auditor.suppress import parse_suppressions

    deep_toml = "x = " + "[" * 100_000 + "]" * 100_000 + "\n"
    with pytest.raises(InputError, match=r"nested too deeply|invalid TOML"):
        parse_site_config(deep_toml, "site.toml")
    with pytest.raises(InputError, match=r"nested too deeply|not valid TOML"):
        parse_suppressions(deep_toml, "s.toml")
    deep_json = tmp_path / "r.json"
    deep_json.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match=r"nested too deeply|not JSON|not a backscatter"):
        load_report(str(deep_json))


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("[probe]\ntimeout = inf\n", 2, "probe.timeout must be a finite number"),
        ("[probe]\ntimeout = nan\n", 2, "probe.timeout must be a finite number"),
        ("[probe]\ntimeout = 1e308\n", 2, "probe.timeout must be more than 0 and at most 3600"),
        ("[probe]\nsession_delay = -1\n", 2, "probe.session_delay must be at least 0"),
        ("[probe]\nbounce_wait = -5\n", 2, "probe.bounce_wait must be more than 0"),
        ("[probe]\n\nconcurrency = 100000000000000000000\n", 3, "probe.concurrency must be at least 1"),
        ("[probe]\nport = 99999\n", 2, "probe.port must be at least 1 and at most 65535"),
        ("[dns]\ntimeout = -inf\n", 2, "dns.timeout must be a finite number"),
        ('[probe]\nsink_listen = "127.0.0.1:99999"\n', 2, "port must be 1-65535"),
        # dotted keys keep their own line
        ('probe.timeout = 5\n\nprobe.retry_after = inf\n[site]\ndomains = ["a.test"]\n', 3, "retry_after"),
        ('report.fail_on = "low"\nreport.formats = ["html", "pdf"]\n', 2, "unknown format 'pdf'"),
        ('[report]\nformats = ["pdf"]\n', 2, "unknown format 'pdf'"),
        # a bad domain names file and line
        ('[site]\nname = "x"\ndomains = ["ok.test", "exa mple.test"]\n', 3, "bad domain 'exa mple.test'"),
        ('[site]\ndomains = ["faß.test"]\n', 2, "IDNA 2003 gives fass.test"),
        ('[site]\nnon_mail_domains = ["-x.test"]\n', 2, "bad non-mail domain"),
        ('[site]\ndomains = ["a.test"]\n[[mx_override]]\ndomain = "a.test"\nhosts = []\n', 5, "at least one"),
        ('[site]\ndomains = ["a.test"]\n[probe]\ncontrols = ["bob@b.test"]\n', 4, "one of site.domains"),
        ('[dns]\nnameservers = ["resolver.example"]\n', 2, "not an IP address"),
        ('[site]\ntrusted_networks = ["10.0.0.0/33"]\n', 2, "not a network"),
        ("[probe]\ntimeout = 5\n[probe.extra]\nx = 1\n", 3, "unknown key 'probe.extra'"),
    ],
)
def test_values_are_checked_with_file_and_line(text: str, line: int, needle: str) -> None:
    with pytest.raises(InputError) as err:
        parse_site_config(text, "site.toml")
    assert needle in str(err.value)
    assert (err.value.path, err.value.line) == ("site.toml", line), str(err.value)


def test_domains_are_normalised_to_a_labels() -> None:
    cfg = parse_site_config('[site]\ndomains = ["Bücher.TEST.", "b.test"]\n', "site.toml")
    assert cfg.site.domains == ("xn--bcher-kva.test", "b.test")


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_bytes(b'\xef\xbb\xbf[site]\ndomains = ["a.test"]\n')
    assert load_site_config(str(site)).site.domains == ("a.test",)


@pytest.mark.timeout(20)
def test_a_fifo_or_a_device_is_not_read(tmp_path: Path) -> None:
    """A FIFO would block open() forever, /dev/zero would be read until memory runs out."""
    import os

    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.toml"
    zero.symlink_to("/dev/zero")
    for path in (fifo, zero):
        with pytest.raises(InputError, match="not a regular file"):
            load_site_config(str(path))
    with pytest.raises(InputError, match="is a directory"):
        load_site_config(str(tmp_path))


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    with pytest.raises(InputError, match="larger than"):
        load_site_config(str(site))


def test_every_value_is_checked_before_any_probe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """formats = ["pdf"] used to fail after all probes had run."""
    from tests.unit.dns.fakedns import serve
    from tests.unit.smtp.fakes import Scripted
    from tests.unit.smtp.test_cli import ZONE, smtp_in_thread

    srv = Scripted()
    with serve(ZONE) as ns, smtp_in_thread(srv) as port:
        site = tmp_path / "site.toml"
        site.write_text(
            f'[site]\ndomains = ["example.test"]\n[dns]\nnameservers = ["{ns}"]\n'
            f'[probe]\nport = {port}\nsession_delay = 0\n[report]\nformats = ["html", "pdf"]\n'
        )
        assert main(["audit", "--config", str(site)]) == 2
    err = capsys.readouterr().err
    assert f"{site}:9:" in err and "pdf" in err and len(err.strip().splitlines()) == 1
    assert srv.connections == 0


def test_init_and_output_do_not_create_directories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "dir" / "site.toml"
    assert main(["init", str(target)]) == 2
    assert not (tmp_path / "missing").exists()
    pf = tmp_path / "pf"
    pf.mkdir()
    (pf / "main.cf").write_text("compatibility_level = 3.6\n")
    out = tmp_path / "nope" / "r.json"
    assert main(["lint", "postfix", str(pf), "--no-postconf", "-o", str(out)]) == 2
    assert not (tmp_path / "nope").exists()
    err = capsys.readouterr().err
    assert err.count("no such directory") == 2 and "Traceback" not in err


def test_unreadable_directories_are_input_errors_not_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    """A config directory with mode 000, read as nobody (root reads everything).

    The interpreter lives under /root (mode 700), so a process started as nobody cannot even run
    it: the test drops the effective uid of this process instead (real uid root, restored after).
    """
    import os
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("needs root to act as nobody (a non-root user cannot switch users)")
    import pwd

    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="bsa-mode000-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        locked = base / "locked"
        locked.mkdir()
        (locked / "main.cf").write_text("compatibility_level = 3.6\n")
        (locked / "site.toml").write_text('[site]\ndomains = ["a.test"]\n')
        site = base / "site.toml"
        site.write_text('[probe]\nenabled = false\n[postfix]\nconfig_dirs = ["locked"]\n')
        os.chmod(site, 0o644)
        os.chmod(locked, 0)
        runs = [
            ["lint", "postfix", str(locked), "--no-postconf"],
            ["audit", "--config", str(locked / "site.toml")],
            ["audit", "--config", str(site), "-o", "-"],
        ]
        codes = []
        os.setegid(nobody.pw_gid)
        os.seteuid(nobody.pw_uid)
        try:
            for argv in runs:
                codes.append(main(argv))
        finally:
            os.seteuid(0)
            os.setegid(0)
        err = capsys.readouterr().err
        assert codes == [2, 2, 2], err
        lines = err.strip().splitlines()
        assert len(lines) == 3 and "Traceback" not in err, err
        assert all("permission denied" in line.lower() for line in lines), err
        assert f"{site}:4:" in lines[2]
    finally:
        os.chmod(base / "locked", 0o755)
        shutil.rmtree(base)
