"""FreeSWITCH's XML preprocessor, as reloadxml runs it over <conf>/freeswitch.xml.

Line based, like switch_xml.c: each line has its `$${var}` globals expanded first (an unset one
becomes an empty string), lines holding `<include>`, `</include>` or `<?...?>` are dropped, and a
line holding an `<X-PRE-PROCESS cmd=... data=.../>` instruction is replaced by what it does:
  set       data="name=value"        sets a global
  env-set   data="name=$ENV_NAME"    sets a global from the environment (unset: stays unset)
  include   data="path or glob"      the matching files, preprocessed in turn; a relative path is
                                     resolved against the directory of the file that includes it
                                     (preprocess_glob's cwd), so "../acl.d/*.xml" in
                                     autoload_configs/acl.conf.xml reads <conf>/acl.d/*.xml
Other commands (exec, exec-set, stun-set) are ignored: the simulator runs no shell and no STUN.
Kept independent of fsconf.xmltree on purpose: the simulator is the reference the project's own
checker is tested against, so it must not share that checker's bugs.
"""
from __future__ import annotations

import glob
import os
import re
import xml.etree.ElementTree as ET  # noqa: S405 - our own configuration tree
from collections.abc import Mapping
from pathlib import Path

_INSTR = re.compile(r'<X-PRE-PROCESS\s+cmd\s*=\s*"([^"]*)"\s+data\s*=\s*"([^"]*)"\s*/>', re.IGNORECASE)
_GLOBAL = re.compile(r"\$\$\{([^}]*)\}")
_DROPPED = re.compile(r"</?include>|<\?")
MAX_DEPTH = 100  # FreeSWITCH's recursion limit for includes


class ConfError(Exception):
    """The preprocessed document does not parse (FreeSWITCH keeps its previous XML)."""


class Preprocessor:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = os.environ if env is None else env
        self.globals: dict[str, str] = {}

    def document(self, path: Path) -> ET.Element:
        """Preprocess `path` and parse the result."""
        lines: list[str] = []
        self._file(path, lines, 0)
        try:
            return ET.fromstring("\n".join(lines))  # noqa: S314
        except ET.ParseError as exc:
            raise ConfError(f"{path}: {exc}") from None

    def _file(self, path: Path, out: list[str], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ConfError(f"{path}: include depth over {MAX_DEPTH}")
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ConfError(f"cannot read {path}: {exc}") from None
        for raw in text.splitlines():
            line = _GLOBAL.sub(lambda m: self.globals.get(m.group(1), ""), raw)
            if _DROPPED.search(line):
                continue
            match = _INSTR.search(line)
            if match:
                self._instruction(match.group(1).lower(), match.group(2), path.parent, out, depth)
            else:
                out.append(line)

    def _instruction(self, cmd: str, data: str, cwd: Path, out: list[str], depth: int) -> None:
        name, sep, value = data.partition("=")
        if cmd == "set" and sep:
            self.globals[name.strip()] = value.strip()
        elif cmd == "env-set" and sep:
            found = self.env.get(value.strip().removeprefix("$"))
            if found is not None:
                self.globals[name.strip()] = found
        elif cmd == "include":
            pattern = data if os.path.isabs(data) else str(cwd / data)
            for match in sorted(glob.glob(pattern)):  # a glob matching nothing is fine
                self._file(Path(match), out, depth + 1)
