"""docs/ci.md stays true: its configuration example is valid and its commands parse."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

from verify.cli import build_parser
from verify.config import parse

CI_DOC = (Path(__file__).parent.parent / "docs" / "ci.md").read_text()


def test_the_configuration_example_is_valid() -> None:
    (block,) = re.findall(r"```toml\n(.*?)```", CI_DOC, re.S)
    settings = parse(tomllib.loads(block)["tool"]["verify"], "docs/ci.md")
    assert settings.models == ("kvvec-v6/u8", "kvvec-v6/pow2", "binder/v6") and settings.jobs == 2


def test_every_verify_run_command_parses() -> None:
    commands = re.findall(r"(?:^|run: |entry: |exec )(verify run [^\n#]*)", CI_DOC, re.M)
    assert len(commands) >= 7
    for command in commands:
        args = build_parser().parse_args(shlex.split(command)[1:])
        assert args.command == "run"
