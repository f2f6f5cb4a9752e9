"""A private slapd for tests and the lab: own cn=config, own mdb database, own test CA.

Nothing here touches the system slapd: the configuration is built with ``slapadd -n0`` into
``workdir`` (lab.md §5), data is loaded with ``slapadd -n1``, and the daemon runs in the foreground
(``-d 0``) so that its pid is ours to stop. TLS uses a throw-away CA made with ``openssl``, so
tests can exercise ldaps://, StartTLS and a certificate that names another host.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from auditor.lab.ldap_data import ADLIKE_SCHEMA_LDIF

_SYSTEM_SCHEMAS = ("core", "cosine", "inetorgperson", "misc")
_SCHEMA_DIR = Path("/etc/ldap/schema")
_MODULE_DIR = Path("/usr/lib/ldap")


class SlapdError(RuntimeError):
    """The private slapd could not be configured or started (message names the step)."""


def _tool(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        raise SlapdError(f"{name} is not installed")
    return path


def _run(cmd: Sequence[str], what: str, stdin: str | None = None, timeout: float = 60) -> None:
    try:
        proc = subprocess.run(
            list(cmd), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise SlapdError(f"{what}: timed out after {timeout} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SlapdError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")


def make_test_ca(
    directory: Path, names: Sequence[str], *, ca_name: str = "BSA test CA"
) -> tuple[Path, Path, Path]:
    """Create a CA and a server certificate for ``names`` (IPs or DNS names) with ``openssl``.

    Returns (ca_file, cert_file, key_file). EC P-256 keys keep this fast (~50 ms).
    """
    openssl = _tool("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_pem = directory / "ca.key", directory / "ca.pem"
    key, csr, pem, ext = (
        directory / "server.key",
        directory / "server.csr",
        directory / "server.pem",
        directory / "ext.cnf",
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(
        [openssl, "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_pem), "-days", "7",
         "-subj", f"/CN={ca_name}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        "openssl CA",
    )  # fmt: skip
    alt = []
    for n in names:
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in n else socket.AF_INET, n)
            alt.append(f"IP:{n}")
        except OSError:
            alt.append(f"DNS:{n}")
    ext.write_text(
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        f"keyUsage=digitalSignature,keyEncipherment\nsubjectAltName={','.join(alt)}\n"
    )
    _run(
        [openssl, "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={names[0]}"],
        "openssl CSR",
    )
    _run(
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(pem), "-days", "7", "-extfile", str(ext)],
        "openssl sign",
    )  # fmt: skip
    os.chmod(key, 0o600)
    return ca_pem, pem, key


class Slapd:
    """One private slapd instance.

    ``size_limit`` is written to ``olcSizeLimit`` of the frontend and the database (e.g. ``500`` or
    ``"size.soft=50 size.hard=50 size.prtotal=50"``); the root DN is exempt from limits, so size-limit
    tests bind anonymously or as ``reader_dn``. ``cert_names`` are the names the server certificate
    carries (default: the host), so a test can serve a certificate made for another name.
    """

    def __init__(
        self,
        workdir: Path,
        suffix: str = "dc=example,dc=test",
        *,
        netns: str | None = None,
        host: str = "127.0.0.1",
        port: int = 3389,
        tls_port: int | None = 6636,
        password: str = "secret",
        reader_password: str = "reader-secret",
        size_limit: int | str = 500,
        cert_names: Sequence[str] | None = None,
        indexes: Sequence[str] = ("mail", "mailLocalAddress", "mailAlternateAddress", "proxyAddresses"),
    ) -> None:
        self.workdir = Path(workdir)
        self.suffix = suffix
        self.netns = netns
        self.host = host
        self.port = port
        self.tls_port = tls_port
        self._password = password
        self._reader_password = reader_password
        self.size_limit = size_limit
        self.cert_names = tuple(cert_names) if cert_names else (host,)
        self.indexes = tuple(indexes)
        self._proc: subprocess.Popen[bytes] | None = None
        self._ca_file: Path | None = None
        self._sockdir: str | None = None
        self._configured = False

    def __repr__(self) -> str:  # never show the passwords
        return f"Slapd({self.url!r}, suffix={self.suffix!r}, netns={self.netns!r})"

    # --- addresses -------------------------------------------------------------------------------
    @property
    def root_dn(self) -> str:
        return f"cn=admin,{self.suffix}"

    @property
    def reader_dn(self) -> str:
        """A plain (non-root) account subject to the size limit; :meth:`load` creates it."""
        return f"cn=reader,{self.suffix}"

    @property
    def url(self) -> str:
        return f"ldap://{self._hostport(self.port)}"

    @property
    def ldaps_url(self) -> str:
        if self.tls_port is None:
            raise SlapdError("this slapd has no ldaps port")
        return f"ldaps://{self._hostport(self.tls_port)}"

    @property
    def ca_file(self) -> Path:
        if self._ca_file is None:
            raise SlapdError("configure() has not run: no CA yet")
        return self._ca_file

    @property
    def ldapi_path(self) -> str:
        if self._sockdir is None:
            # AF_UNIX paths are limited to ~107 bytes; pytest's tmp paths can be longer.
            self._sockdir = tempfile.mkdtemp(prefix="bsa-slapd-")
        return os.path.join(self._sockdir, "ldapi")

    def _hostport(self, port: int) -> str:
        return f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"

    # --- configuration ---------------------------------------------------------------------------
    def config_ldif(self) -> str:
        """The cn=config LDIF (contains the root password: written to a 0600 file, never printed)."""
        run = self.workdir / "run"
        tls = ""
        if self._ca_file is not None:
            tdir = self.workdir / "tls"
            tls = (
                f"olcTLSCACertificateFile: {tdir / 'ca.pem'}\n"
                f"olcTLSCertificateFile: {tdir / 'server.pem'}\n"
                f"olcTLSCertificateKeyFile: {tdir / 'server.key'}\n"
            )
        includes = "".join(f"include: file://{_SCHEMA_DIR / s}.ldif\n\n" for s in _SYSTEM_SCHEMAS)
        idx = ",".join(self.indexes)
        return (
            "dn: cn=config\nobjectClass: olcGlobal\ncn: config\n"
            f"olcPidFile: {run / 'slapd.pid'}\nolcArgsFile: {run / 'slapd.args'}\n{tls}\n"
            "dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n"
            f"olcModulePath: {_MODULE_DIR}\nolcModuleLoad: back_mdb\n\n"
            "dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n"
            f"{includes}{ADLIKE_SCHEMA_LDIF}\n"
            "dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\n"
            "objectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\n"
            f"olcSizeLimit: {self.size_limit}\n\n"
            "dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {0}config\n"
            "olcAccess: {0}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth manage"
            " by * none\n\n"
            "dn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n"
            f"olcDatabase: {{1}}mdb\nolcSuffix: {self.suffix}\nolcDbDirectory: {self.workdir / 'db'}\n"
            f"olcRootDN: {self.root_dn}\nolcRootPW: {self._password}\nolcDbMaxSize: 1073741824\n"
            f"olcSizeLimit: {self.size_limit}\n"
            f"olcDbIndex: objectClass eq\nolcDbIndex: {idx} eq\n"
            "olcAccess: {0}to attrs=userPassword by self read by anonymous auth by * none\n"
            "olcAccess: {1}to * by * read\n"
        )

    def configure(self) -> None:
        """Create the test CA (when a TLS port is set) and the cn=config database."""
        slapadd = _tool("slapadd")
        for sub in ("slapd.d", "db", "run"):
            d = self.workdir / sub
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
        if self.tls_port is not None:
            self._ca_file, _, _ = make_test_ca(self.workdir / "tls", self.cert_names)
        cfg = self.workdir / "run" / "config.ldif"
        fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.config_ldif())
        try:
            _run([slapadd, "-n0", "-F", str(self.workdir / "slapd.d"), "-l", str(cfg)], "slapadd -n0")
        finally:
            cfg.unlink()  # holds the root password
        self._configured = True

    def load(self, ldif: str, *, with_base: bool = True) -> None:
        """Load entries with ``slapadd -q -n1`` (slapd must be stopped: mdb is single-writer offline).

        ``with_base`` prepends the suffix entry and the ``cn=reader`` account.
        """
        if not self._configured:
            self.configure()
        if self.running:
            raise SlapdError("load() needs slapd stopped (slapadd writes the database directly)")
        path = self.workdir / "run" / "data.ldif"
        with open(path, "w", encoding="utf-8") as fh:
            if with_base:
                fh.write(self.base_ldif())
            fh.write(ldif)
        self.load_file(path)

    def load_file(self, path: Path) -> None:
        """Load a (possibly huge) LDIF file as-is."""
        if not self._configured:
            self.configure()
        _run(
            [_tool("slapadd"), "-q", "-n1", "-F", str(self.workdir / "slapd.d"), "-l", str(path)],
            "slapadd -n1",
            timeout=600,
        )

    def base_ldif(self) -> str:
        first = self.suffix.split(",", 1)[0]
        attr, _, value = first.partition("=")
        if attr.lower() == "dc":
            top = (
                f"dn: {self.suffix}\nobjectClass: dcObject\nobjectClass: organization\n"
                f"dc: {value}\no: {value}\n\n"
            )
        else:
            top = f"dn: {self.suffix}\nobjectClass: organization\no: {value}\n\n"
        return (
            f"{top}dn: {self.reader_dn}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\n"
            f"cn: reader\nuserPassword: {self._reader_password}\n\n"
        )

    # --- process ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def urls(self) -> list[str]:
        ldapi = "ldapi://" + self.ldapi_path.replace("/", "%2F")
        out = [f"ldap://{self._hostport(self.port)}/", ldapi]
        if self.tls_port is not None:
            out.append(f"ldaps://{self._hostport(self.tls_port)}/")
        return out

    def start(self, timeout: float = 10.0) -> None:
        """Start slapd in the foreground (in ``netns`` if given) and wait until it accepts connections.

        Readiness is polled on the ldapi socket (reachable from outside a network namespace); slapd
        binds every listener before it serves any, so the TCP ports are then ready too.
        """
        if self.running:
            return
        if not self._configured:
            self.configure()
        cmd = [_tool("slapd"), "-d", "0", "-F", str(self.workdir / "slapd.d"), "-h", " ".join(self.urls())]
        if self.netns:
            cmd = [_tool("ip"), "netns", "exec", self.netns, *cmd]
        if os.path.exists(self.ldapi_path):
            os.unlink(self.ldapi_path)
        log = open(self.workdir / "run" / "slapd.log", "wb")  # noqa: SIM115 - lives as long as the daemon
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = (self.workdir / "run" / "slapd.log").read_text(errors="replace").strip().splitlines()
                self._proc = None
                raise SlapdError(f"slapd exited at start-up: {' | '.join(tail[-3:])}")
            if self._ready():
                return
            time.sleep(0.05)
        self.stop()
        raise SlapdError(f"slapd did not accept connections within {timeout} s")

    def _ready(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect(self.ldapi_path)
        except OSError:
            return False
        if self.netns:
            return True
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM our slapd (by pid), then SIGKILL if it has not exited within ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)

    def cleanup(self) -> None:
        """Stop and remove the short socket directory (the workdir belongs to the caller)."""
        self.stop()
        if self._sockdir is not None:
            shutil.rmtree(self._sockdir, ignore_errors=True)
            self._sockdir = None

    def __enter__(self) -> Slapd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
