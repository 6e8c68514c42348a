"""Certificates made for one test or benchmark run by openssl, as PEM files
in a directory of the run's own:

- `ca`: the CA every server and client certificate here is signed by;
- `server`: a server certificate for `localhost` only (no IP address, so
  that the same server reached as 127.0.0.1 shows a wrong host name);
- `client`: a client certificate whose common name is `CLIENT_USER` (the
  user RabbitMQ's EXTERNAL mechanism logs it in as);
- `other_ca`: a CA that signed nothing here (a wrong CA to trust).

Each is a `Pem` with `cert` and `key` paths. openssl rather than a Python
package: one that pulls in `cryptography` makes dnspython (which eventlet
imports) print deprecation warnings at every service start.
"""

import os
import subprocess
from dataclasses import dataclass

SERVER_NAME = "localhost"
CLIENT_USER = "order-pipeline"
DAYS = "2"
NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pem:
    cert: str
    key: str


class Certificates:
    def __init__(self, directory: str):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.ca = self._ca("ca", "order pipeline test CA")
        self.other_ca = self._ca("other-ca", "an unrelated test CA")
        self.server = self._leaf("server", SERVER_NAME, f"DNS:{SERVER_NAME}", "serverAuth")
        self.client = self._leaf("client", CLIENT_USER, f"DNS:{CLIENT_USER}", "clientAuth")

    def _path(self, name):
        return os.path.join(self.directory, name)

    def _openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    def _ca(self, name, common_name):
        pem = Pem(self._path(name + ".pem"), self._path(name + ".key"))
        self._openssl(
            "req", "-x509", *NEW_KEY, "-days", DAYS, "-subj", f"/CN={common_name}",
            "-keyout", pem.key, "-out", pem.cert,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        return pem

    def _leaf(self, name, common_name, alt_names, usage):
        pem = Pem(self._path(name + ".pem"), self._path(name + ".key"))
        request, extensions = self._path(name + ".csr"), self._path(name + ".ext")
        with open(extensions, "w") as ext:
            ext.write(
                f"subjectAltName=critical,{alt_names}\n"
                f"extendedKeyUsage={usage}\n"
                "keyUsage=critical,digitalSignature\n"
                "basicConstraints=critical,CA:FALSE\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid\n"
            )
        self._openssl(
            "req", *NEW_KEY, "-subj", f"/CN={common_name}", "-keyout", pem.key, "-out", request
        )
        self._openssl(
            "x509", "-req", "-in", request, "-CA", self.ca.cert, "-CAkey", self.ca.key,
            "-CAcreateserial", "-days", DAYS, "-extfile", extensions, "-out", pem.cert,
        )  # fmt: skip
        # The servers may run as another user than the one running the tests.
        os.chmod(pem.key, 0o644)
        return pem
