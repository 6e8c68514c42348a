"""Create the database if it is missing and bring every service's schema up
to date. Safe to run any number of times.

    python -m order_pipeline.migrate [--config config.yml]
"""
import argparse


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
    # A StartupError exits with status 1 and a one-line message.
    migrate(setting(load_config(args.config), "DB_URI", str))
    print("schema is up to date")


if __name__ == "__main__":
    main()
