"""`nameko shell`, with the broker's passwords masked in its banner.

nameko 2.14's shell prints AMQP_URI as it is in its first lines, password
and all (nameko/cli/shell.py). This runs the same shell, with the same `n`
helper and options, after a banner built from the masked URI:

    python -m order_pipeline.commands.shell --config config.yml   (make shell)
"""

import sys

from order_pipeline.broker import mask_uri, nameko_config
from order_pipeline.config import load_config
from order_pipeline.nameko_internals import start_shell
from order_pipeline.settings import amqp_uri

SHELLS = ["bpython", "ipython", "plain"]


def banner(uri: str) -> str:
    return (
        f"Nameko Python {sys.version} shell on {sys.platform}\n"
        f"Broker: {mask_uri(uri)} (from --config)"
    )


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m order_pipeline.commands.shell")
    parser.add_argument("--config", default="config.yml")
    parser.add_argument("--interface", choices=SHELLS)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    # A StartupError (a bad AMQP_SSL_* file) exits with its one line.
    start_shell(banner(amqp_uri(config)), nameko_config(config), args.interface)


if __name__ == "__main__":
    main()
