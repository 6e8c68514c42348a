"""TLS as the services use it as clients, to the broker and the database:
the files a setting group names (`AMQP_SSL_*`, `DB_SSL_*`), checked at
start-up; the one kind of context they make (the server's certificate and
host name always checked); and a failed handshake said in one line that
names the setting to fix."""

import ssl
from dataclasses import dataclass

from order_pipeline.errors import StartupError

# OpenSSL's verify codes for a certificate of another host or address.
NAME_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
# What OpenSSL says when the other end does not speak TLS at all.
NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")


@dataclass(frozen=True)
class TlsFiles:
    """A TLS client's files: the CA to trust (None: the system's, which
    SSL_CERT_FILE can replace), and its own certificate and key (optional;
    the certificate file may hold the key too). `prefix` names the settings
    they came from (`AMQP_SSL`: AMQP_SSL_CA_FILE...), for messages."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    prefix: str = "AMQP_SSL"

    def names(self, field: str) -> str:
        """`ca_file` -> e.g. `AMQP_SSL_CA_FILE=/etc/ca.pem`."""
        return f"{self.prefix}_{field.upper()}={getattr(self, field)}"


def tls_files(prefix: str, ca_file: str, cert_file: str, key_file: str) -> TlsFiles | None:
    """The files of one setting group, or None if none is set; each is
    checked (readable, the CA file a CA, the certificate and key a pair),
    and a StartupError names the setting that is not usable."""
    ca_file, cert_file, key_file = (name.strip() or None for name in (ca_file, cert_file, key_file))
    if not (ca_file or cert_file or key_file):
        return None
    files = TlsFiles(ca_file, cert_file, key_file, prefix)
    client_context(files)
    return files


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """A client context that checks the server's certificate (against the
    CA file, or the system's CAs) and host name, and presents the client
    certificate if there is one."""
    if files.key_file and not files.cert_file:
        raise StartupError(f"{files.names('key_file')} is set without {files.prefix}_CERT_FILE")
    try:
        # ssl's, looked up now: eventlet's green one under nameko.
        context = ssl.create_default_context(cafile=files.ca_file)
    except (OSError, ssl.SSLError) as exc:  # only with a CA file
        raise StartupError(f"cannot use {files.names('ca_file')}: {_reason(exc)}") from None
    if files.cert_file:
        try:
            context.load_cert_chain(files.cert_file, files.key_file)
        except (OSError, ssl.SSLError) as exc:
            named = files.names("cert_file")
            if files.key_file:
                named += " with " + files.names("key_file")
            raise StartupError(f"cannot use {named}: {_reason(exc)}") from None
    return context


def describe_tls_failure(exc: BaseException, files: TlsFiles, address: str) -> str | None:
    """What failed in a TLS handshake, and which setting to fix (`address`:
    the setting that names the server); None if `exc` (or what caused it)
    is no TLS failure."""
    cause = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    if isinstance(cause, ssl.SSLCertVerificationError):
        if cause.verify_code in NAME_MISMATCH:
            return (
                f"its certificate is not valid for the name {address} gives it "
                f"({cause.verify_message}); use a host name there that the certificate holds"
            )
        trusted = files.names("ca_file") if files.ca_file else "any of the system's CAs"
        return (
            f"its certificate is not signed by {trusted} ({cause.verify_message}); "
            f"set {files.prefix}_CA_FILE to the CA that signed it"
        )
    reason = cause.reason or cause.strerror or str(cause)
    if cause.reason in NOT_TLS:
        return f"it does not speak TLS there ({reason}); check the port in {address}"
    if files.cert_file:
        return (
            f"it refused the client certificate {files.names('cert_file')} ({reason}); "
            "use one signed by a CA the server trusts"
        )
    if "CERTIFICATE_REQUIRED" in reason:
        return (
            f"it asks for a client certificate ({reason}); "
            f"set {files.prefix}_CERT_FILE and {files.prefix}_KEY_FILE"
        )
    return f"the TLS handshake failed ({reason})"


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
