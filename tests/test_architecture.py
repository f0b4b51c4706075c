"""The floors of the house, as pyproject.toml's import-linter contracts state them: an app imports
only from the floors below it (core, labels, inventory, traceability, recalls, audit, then api and
web, which never import each other)."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("core", "labels", "inventory", "traceability", "recalls", "audit", "api", "web", "config")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"],
        cwd=cwd, capture_output=True, text=True, env={"PYTHONPATH": str(cwd), "PATH": ""},
    )


def test_every_app_keeps_to_its_floor():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _house(tmp_path: Path, imports: dict[str, str]) -> Path:
    """A stand-in house with the project's contracts, whose apps import what `imports` says."""
    tmp_path.mkdir(exist_ok=True)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    lines = ["[importlinter]", "root_packages =\n    " + "\n    ".join(config["root_packages"])]
    for n, contract in enumerate(config["contracts"]):
        lines.append(f"\n[importlinter:contract:{n}]")
        for key, value in contract.items():
            lines.append(f"{key} =\n    " + "\n    ".join(value) if isinstance(value, list) else f"{key} = {value}")
    (tmp_path / ".importlinter").write_text("\n".join(lines) + "\n")
    for app in APPS:
        (tmp_path / app).mkdir()
        (tmp_path / app / "__init__.py").write_text(imports.get(app, ""))
    return tmp_path


def test_the_contracts_refuse_a_domain_app_that_imports_upward(tmp_path):
    house = _house(tmp_path, {"inventory": "import traceability\n"})
    result = lint_imports(house)
    assert result.returncode != 0
    assert "inventory -> traceability" in result.stdout


def test_the_contracts_refuse_core_importing_an_app_and_web_importing_api(tmp_path):
    assert lint_imports(_house(tmp_path / "a", {"core": "import labels\n"})).returncode != 0
    assert lint_imports(_house(tmp_path / "b", {"web": "import api\n"})).returncode != 0
    assert lint_imports(_house(tmp_path / "c", {"web": "import audit\n", "api": "import recalls\n"})).returncode == 0
