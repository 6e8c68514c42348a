"""Create the database if it is missing and bring every service's schema up
to date. Safe to run any number of times.

    python -m order_pipeline.migrate [--config config.yml]
"""
import argparse
import sys

from nameko.exceptions import ConfigurationError

from order_pipeline.config import load_config, setting
from order_pipeline.database import create_database_if_missing
from order_pipeline.migrations import upgrade_all


def migrate(db_uri):
    create_database_if_missing(db_uri)
    upgrade_all(db_uri)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yml")
    args = parser.parse_args(argv)
    try:
        db_uri = setting(load_config(args.config), "DB_URI", str)
        migrate(db_uri)
    except ConfigurationError as exc:
        sys.exit("Error: {}".format(exc))
    print("schema is up to date")


if __name__ == "__main__":
    main()
