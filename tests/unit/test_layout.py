"""The layout the import contracts (pyproject.toml, `lint-imports`) rest on:
production code never imports the test harness, the tests or the
benchmark, and every helper module of order_pipeline is under the contract
that keeps helpers below extensions and commands."""

import ast
import tomllib
from pathlib import Path

from harness.processes import ROOT

PRODUCTION = [
    "order_contract",
    "order_pipeline",
    "generator_service",
    "processor_service",
    "gateway",
]
NOT_FOR_PRODUCTION = {"tests", "harness", "bench"}


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every module `path` imports, deferred
    imports inside functions included."""
    packages = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            packages.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            packages.add(node.module.split(".")[0])
    return packages


def test_no_production_module_imports_the_tests_the_harness_or_the_benchmark():
    offenders = {
        path.relative_to(ROOT).as_posix(): sorted(imported_packages(path) & NOT_FOR_PRODUCTION)
        for package in PRODUCTION
        for path in Path(ROOT, package).rglob("*.py")
        if imported_packages(path) & NOT_FOR_PRODUCTION
    }
    assert offenders == {}


def test_the_scan_sees_a_deferred_import(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("def f():\n    from harness.processes import ROOT\n    import bench.cli\n")
    assert imported_packages(module) & NOT_FOR_PRODUCTION == {"harness", "bench"}


def test_every_plumbing_helper_is_kept_below_extensions_and_commands():
    with open(Path(ROOT, "pyproject.toml"), "rb") as pyproject:
        contracts = tomllib.load(pyproject)["tool"]["importlinter"]["contracts"]
    (helpers_contract,) = [c for c in contracts if c["name"].startswith("The plumbing's helpers")]
    helpers = {
        f"order_pipeline.{path.stem}"
        for path in Path(ROOT, "order_pipeline").glob("*.py")
        if path.stem != "__init__"
    }
    assert set(helpers_contract["source_modules"]) == helpers


def test_harness_and_bench_are_not_installed_with_the_package():
    with open(Path(ROOT, "pyproject.toml"), "rb") as pyproject:
        include = tomllib.load(pyproject)["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.rstrip("*") for pattern in include} == set(PRODUCTION)
