"""Translate the PCRE expressions FreeSWITCH uses into Python `re` patterns.

FreeSWITCH compiles dialplan expressions with PCRE (switch_regex_compile). Python's `re` is
close but differs in a few places that matter for a checker: a pattern Python rejects or
reads differently would give a wrong verdict. What is translated:
  /expr/flags      FreeSWITCH's own delimiter form: flags i (caseless) and s (dotall)
  (?<name>...)     named group (Python 3.11 only knows (?P<name>...)); also (?'name'...)
  \\k<name>        named backreference  -> (?P=name)
  \\z  \\Z          end of subject / end or before a final newline
  \\Q...\\E         literal text
  [[:class:]]      POSIX classes inside brackets
  \\h  \\R          horizontal space / any newline sequence
Anything else PCRE-only (recursion (?R), callouts, \\K, backtracking verbs) raises PcreError.
"""
from __future__ import annotations

import re

_POSIX = {
    "alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "digit": "0-9", "xdigit": "0-9A-Fa-f",
    "lower": "a-z", "upper": "A-Z", "space": r" \t\n\r\f\v", "blank": r" \t",
    "punct": r"!-/:-@\[-`{-~", "word": r"\w", "cntrl": r"\x00-\x1f\x7f", "print": r"\x20-\x7e",
    "graph": r"\x21-\x7e",
}
_UNSUPPORTED = [(r"(?R", "recursion"), (r"(?C", "callouts"), (r"\K", "\\K"), (r"(*", "backtracking verbs"),
                (r"(?|", "branch reset")]


class PcreError(ValueError):
    """The expression is not valid PCRE, or uses a PCRE feature this translator does not cover."""


def split_delimited(expression: str) -> tuple[str, int]:
    """FreeSWITCH accepts /expr/flags; return (expr, re flags)."""
    if len(expression) >= 2 and expression.startswith("/"):
        end = expression.rfind("/")
        if end > 0:
            flags = 0
            for letter in expression[end + 1:]:
                if letter == "i":
                    flags |= re.IGNORECASE
                elif letter == "s":
                    flags |= re.DOTALL
                else:
                    return expression, 0  # not the delimited form after all
            return expression[1:end], flags
    return expression, 0


def _translate_quoted(expr: str) -> str:
    out, i = [], 0
    while i < len(expr):
        start = expr.find(r"\Q", i)
        if start < 0:
            out.append(expr[i:])
            break
        out.append(expr[i:start])
        end = expr.find(r"\E", start + 2)
        literal = expr[start + 2:] if end < 0 else expr[start + 2:end]
        out.append(re.escape(literal))
        i = len(expr) if end < 0 else end + 2
    return "".join(out)


def to_python(expression: str) -> tuple[str, int]:
    """Return (python pattern, flags) for a FreeSWITCH/PCRE expression, or raise PcreError."""
    expr, flags = split_delimited(expression)
    for token, name in _UNSUPPORTED:
        if token in expr:
            raise PcreError(f"PCRE feature not supported by the checker: {name}")
    expr = _translate_quoted(expr)
    out: list[str] = []
    i, in_class = 0, False
    while i < len(expr):
        ch = expr[i]
        if ch == "\\" and i + 1 < len(expr):
            nxt = expr[i + 1]
            mapping = {"z": r"\Z", "Z": r"(?=\n?\Z)", "h": r"[ \t]", "R": r"(?:\r\n|\n|\r)"}
            if nxt in mapping and not in_class:
                out.append(mapping[nxt])
            elif nxt == "h" and in_class:
                out.append(r" \t")
            elif nxt == "k" and expr[i + 2:i + 3] in ("<", "{", "'"):
                close = {"<": ">", "{": "}", "'": "'"}[expr[i + 2]]
                end = expr.find(close, i + 3)
                if end < 0:
                    raise PcreError("unterminated \\k<name>")
                out.append(f"(?P={expr[i + 3:end]})")
                i = end + 1
                continue
            else:
                out.append(expr[i:i + 2])
            i += 2
            continue
        if in_class:
            if expr.startswith("[:", i):
                end = expr.find(":]", i)
                name = expr[i + 2:end] if end > 0 else ""
                negated = name.startswith("^")
                if negated or name not in _POSIX:
                    raise PcreError(f"unknown or negated POSIX class [:{name}:]")
                out.append(_POSIX[name])
                i = end + 2
                continue
            if ch == "]" and not _class_start(out):
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            if expr.startswith("[^]", i) or expr.startswith("[]", i):
                # a leading ] is a literal in both dialects
                take = 3 if expr[i + 1] == "^" else 2
                out.append(expr[i + 1:i + take])
                i += take
                continue
            i += 1
            continue
        if expr.startswith("(?<", i) and expr[i + 3:i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
            continue
        if expr.startswith("(?'", i):
            end = expr.find("'", i + 3)
            out.append(f"(?P<{expr[i + 3:end]}>")
            i = end + 1
            continue
        if expr.startswith("(?P>", i) or expr.startswith("(?&", i):
            raise PcreError("PCRE feature not supported by the checker: subroutine calls")
        out.append(ch)
        i += 1
    return "".join(out), flags


def _class_start(out: list[str]) -> bool:
    """True when the ']' being read would be the first character of a bracket class."""
    return bool(out) and (out[-1] == "[" or (out[-1] == "^" and len(out) > 1 and out[-2] == "["))


def compile_pcre(expression: str) -> re.Pattern[str]:
    """Compile a FreeSWITCH expression, raising PcreError with Python's reason when it is invalid."""
    pattern, flags = to_python(expression)
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise PcreError(str(exc)) from exc
