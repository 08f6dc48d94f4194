"""The FreeSWITCH XML preprocessor, emulated, and a parsed tree that remembers file:line.

FreeSWITCH (switch_xml.c, preprocess()) reads freeswitch.xml line by line before parsing:
  - "$${name}" is replaced by the global variable (unknown names become "");
  - a line containing "<include>", "</include>" or "<?" is dropped whole;
  - a line mentioning X-PRE-PROCESS runs the instruction and is otherwise dropped, so any
    other text on that line is lost; cmd = set | env-set | exec-set | stun-set | include | exec;
  - include globs relative to the directory of the file being read; a pattern with no match
    is silently skipped (GLOB_NOCHECK), a missing plain file only prints to stderr.
The result is one document; XML errors in it are reported at the original file and line.
"""
from __future__ import annotations

import glob
import os
import re
import xml.parsers.expat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_PRE = re.compile(r"x-pre-process", re.IGNORECASE)
_INSTR = re.compile(r'<X-PRE-PROCESS\s+cmd\s*=\s*"([^"]*)"\s+data\s*=\s*"([^"]*)"\s*/>', re.IGNORECASE)
_GLOBAL = re.compile(r"\$\$\{([^}]*)\}")
_MAX_DEPTH = 100  # FreeSWITCH's own recursion limit


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Line:
    text: str
    file: str
    lineno: int


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    file: str
    line: int
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)

    def iter(self, tag: str | None = None) -> Iterator[Node]:
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            yield from child.iter(tag)

    def findall(self, tag: str) -> list[Node]:
        return [c for c in self.children if c.tag == tag]

    def find(self, tag: str) -> Node | None:
        return next((c for c in self.children if c.tag == tag), None)

    @property
    def where(self) -> tuple[str, int]:
        return self.file, self.line


class Preprocessor:
    """Runs the preprocessor over a tree. `mounts` maps a directory to another one (the repo
    keeps dialplan/ beside freeswitch/; the image copies it inside)."""

    def __init__(self, env: Mapping[str, str] | None = None, mounts: Mapping[Path, Path] | None = None,
                 display_root: Path | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.mounts = {Path(os.path.abspath(k)): Path(os.path.abspath(v)) for k, v in (mounts or {}).items()}
        self.display_root = display_root
        self.variables: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.files: list[Path] = []

    def name(self, path: Path) -> str:
        if self.display_root:
            try:
                return os.path.relpath(path, self.display_root)
            except ValueError:
                pass
        return str(path)

    def _remap(self, path: Path) -> Path:
        absolute = Path(os.path.abspath(path))
        for src, dst in self.mounts.items():
            try:
                rest = absolute.relative_to(src)
            except ValueError:
                continue
            return dst / rest
        return absolute

    def run(self, path: Path) -> list[Line]:
        out: list[Line] = []
        self._file(Path(path), out, 0)
        return out

    def _file(self, path: Path, out: list[Line], depth: int) -> None:
        path = self._remap(path)
        if depth > _MAX_DEPTH:
            self.problems.append(Problem(self.name(path), 1, "include depth over 100 (include loop?)"))
            return
        self.files.append(path)
        fname = self.name(path)
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, raw in enumerate(text.splitlines(), start=1):
            self._line(raw, path, fname, number, out, depth)

    def _expand(self, raw: str, fname: str, number: int) -> str:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.variables:
                self.problems.append(Problem(fname, number, f"$${{{name}}} is not set before this line "
                                                            "(FreeSWITCH expands it to an empty string)"))
                return ""
            return self.variables[name]
        return _GLOBAL.sub(sub, raw)

    def _line(self, raw: str, path: Path, fname: str, number: int, out: list[Line], depth: int) -> None:
        text = self._expand(raw, fname, number)
        if "<include>" in raw or "</include>" in raw or "<?" in raw:
            rest = re.sub(r"</?include>|<\?.*?\?>", "", raw).strip()
            if rest:
                self.problems.append(Problem(fname, number, "FreeSWITCH drops this whole line because it "
                                                            "contains <include>, </include> or <?; put them "
                                                            "on lines of their own"))
            return
        mention = _PRE.search(text)
        if mention:
            self._instruction(text, mention.start(), path, fname, number, out, depth)
            return
        out.append(Line(text, fname, number))

    def _instruction(self, text: str, at: int, path: Path, fname: str, number: int, out: list[Line],
                     depth: int) -> None:
        match = _INSTR.search(text)
        if at == 0 or text[at - 1] != "<" or not match:
            self.problems.append(Problem(fname, number, "line mentions X-PRE-PROCESS but is not one "
                                                        "instruction: FreeSWITCH drops it"))
            return
        if text[:match.start()].strip() or text[match.end():].strip():
            self.problems.append(Problem(fname, number, "text beside an X-PRE-PROCESS instruction is lost"))
        cmd, data = match.group(1).lower(), match.group(2)
        if cmd == "set":
            name, sep, value = data.partition("=")
            if not sep:
                self.problems.append(Problem(fname, number, f"set needs name=value, got {data!r}"))
                return
            self.variables[name.strip()] = value.strip()
        elif cmd == "env-set":
            self._env_set(data, fname, number)
        elif cmd in ("exec-set", "stun-set"):
            name = data.partition("=")[0].strip()
            self.variables[name] = f"{cmd}:{name}"
        elif cmd == "include":
            self._include(data, path.parent, fname, number, out, depth)
        elif cmd == "exec":
            self.problems.append(Problem(fname, number, "exec runs a shell command at every load: not allowed"))
        else:
            self.problems.append(Problem(fname, number, f"unknown preprocessor command {cmd!r}"))

    def _env_set(self, data: str, fname: str, number: int) -> None:
        # FreeSWITCH: data="name=$ENV"; the global is only set when the environment has it.
        name, sep, value = data.partition("=")
        if not sep or not value.startswith("$") or value.startswith("$$"):
            self.problems.append(Problem(fname, number, f"env-set needs name=$ENV_NAME, got {data!r}"))
            return
        env_name = value[1:]
        self.variables[name] = self.env.get(env_name, f"env:{env_name}")

    def _include(self, pattern: str, cwd: Path, fname: str, number: int, out: list[Line], depth: int) -> None:
        full = Path(pattern) if os.path.isabs(pattern) else cwd / pattern
        full = self._remap(full)
        matches = sorted(glob.glob(str(full)))
        if not matches:
            if not glob.has_magic(pattern):
                self.problems.append(Problem(fname, number, f"include {pattern!r}: no such file ({full})"))
            return
        for match in matches:
            self._file(Path(match), out, depth + 1)


def check_well_formed(path: Path, display: str) -> Problem | None:
    """Parse one file on its own, as a validator would."""
    parser = xml.parsers.expat.ParserCreate()
    try:
        parser.Parse(path.read_bytes(), True)
    except xml.parsers.expat.ExpatError as exc:
        return Problem(display, exc.lineno, f"malformed XML: {xml.parsers.expat.ErrorString(exc.code)}")
    return None


def parse_lines(lines: list[Line]) -> tuple[Node | None, Problem | None]:
    """Parse the preprocessed document, mapping positions back to the original files."""
    parser = xml.parsers.expat.ParserCreate()
    stack: list[Node] = []
    root: list[Node] = []

    def origin() -> tuple[str, int]:
        index = max(0, min(parser.CurrentLineNumber - 1, len(lines) - 1))
        return (lines[index].file, lines[index].lineno) if lines else ("<empty>", 1)

    def start(tag: str, attrs: dict[str, str]) -> None:
        file, line = origin()
        node = Node(tag, dict(attrs), file, line)
        (stack[-1].children if stack else root).append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    def data(text: str) -> None:
        if stack:
            stack[-1].text += text

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    try:
        parser.Parse("\n".join(line.text for line in lines).encode(), True)
    except xml.parsers.expat.ExpatError as exc:
        index = max(0, min(exc.lineno - 1, len(lines) - 1))
        where = (lines[index].file, lines[index].lineno) if lines else ("<empty>", 1)
        return None, Problem(where[0], where[1], "malformed XML after preprocessing: "
                                                 f"{xml.parsers.expat.ErrorString(exc.code)}")
    return (root[0] if root else None), None
