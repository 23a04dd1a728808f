"""Seeded mutations of the bundled charts, for the chart fuzzer.

Each mutation takes a bundled chart's text and breaks it one way an author, a
bad merge, a copy from a chat window or a hostile upload would: lines dropped,
duplicated or re-indented; values swapped for out-of-range numbers, wrong types,
YAML tags and special floats; control and invisible characters; keys that are
lists (``? [a, b]``); nesting thousands deep; alias bombs and self-referring
aliases; documents past the size limit; hostile ``extends``, naming templates
and rendition sizes. The same seed gives the same mutations, so a failure
reproduces from its seed alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from charts.loader import BUNDLED_DIR

#: Values that replace a scalar: out of range, wrong type, special, hostile.
HOSTILE_VALUES = [
    "-1", "0", "1e308", "-1e308", ".nan", ".inf", "-.inf", "30000", "999999999999999999999999", "0x7fffffff",
    "null", "~", "yes", "off", "''", '""', "[]", "{}", "[1, 2]", "{a: 1}", "4:5", "'4:5'", "'0:5'", "'999:1'",
    "2020-13-45", "2020-02-30 25:61:61", "!!binary '@@not base64@@'", "!!python/object/apply:os.system ['true']",
    "!!float 'x'", "!!int '1.5'", "!!timestamp 'never'", "!!set {a, b}", "!!omap [a: 1]", "&anchor 3", "*nowhere",
    "'" + "x" * 5000 + "'", "'\u202eevil'", "'\u200b'", '"\\x00"', '"\\u0007"', "'{stem.__class__}'", "'../../x'",
    "|\n  multi\n  line", ">-\n  folded", "'{seq:>100}.{ext}'", "@reserved", "`backtick", "%TAG", "'\U0001F600'",
]  # fmt: skip
HOSTILE_TEMPLATES = [
    "{stem}.{ext}", "{shoot}/" * 40 + "{stem}.{ext}", "x" * 300 + "{stem}.{ext}", "{stem}" * 5 + ".{ext}",
    "{client}_{shoot}_{date}_{seq:09d}_{stem}_{rendition}.{ext}", "a/" * 300 + "{stem}.{ext}", "{stem}.{ext}\n",
    "/{stem}.{ext}", "../{stem}.{ext}", "{seq:03d}.{ext}", "{date}.{ext}", "日本" * 50 + "/{stem}.{ext}",
    "{stem}\u202e.{ext}", "{stem}\u0085.{ext}", "CON/{stem}.{ext}", "{rendition}.{ext}",
]  # fmt: skip
KEYS = ["exposure", "target_ev", "renditions", "crops", "naming", "metadata", "extends", "faces", "schema_version"]


def bundled_charts() -> dict[str, str]:
    """Name -> text of every bundled chart."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(BUNDLED_DIR.glob("*.yaml"))}


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _drop_line(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    del lines[rng.randrange(len(lines))]
    return "\n".join(lines)


def _duplicate_line(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    return "\n".join(lines)


def _swap_lines(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def _reindent(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines[i] = " " * rng.choice([1, 2, 3, 4, 7]) + lines[i] if rng.random() < 0.6 else lines[i].lstrip()
    return "\n".join(lines)


def _rewrite_a_setting(rng: random.Random, text: str, rewrite: Callable[[str], str]) -> str:
    """``text`` with one line that sets a key (not a comment), drawn by ``rng``, passed through ``rewrite``."""
    lines = _lines(text)
    settings = [i for i, ln in enumerate(lines) if ":" in ln and not ln.lstrip().startswith("#")]
    if not settings:
        return text
    i = rng.choice(settings)
    lines[i] = rewrite(lines[i])
    return "\n".join(lines)


def _replace_value(rng: random.Random, text: str) -> str:
    def rewrite(line: str) -> str:
        key, _, _ = line.partition(":")
        return f"{key}: {rng.choice(HOSTILE_VALUES)}"

    return _rewrite_a_setting(rng, text, rewrite)


def _insert_character(rng: random.Random, text: str) -> str:
    c = rng.choice(["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028", "\ufeff", "\ud800"[:0] + "\ufffe", "\t", "\r",
                    "\u200b", "\u202e", "\x0c", "\U0001F600", "\\", '"', "'", "{", "}", "[", "]", "&", "*", "!", "%"])
    i = rng.randrange(len(text) + 1)
    return text[:i] + c + text[i:]


def _truncate(rng: random.Random, text: str) -> str:
    return text[: rng.randrange(len(text) + 1)]


def _complex_key(rng: random.Random, text: str) -> str:
    block = rng.choice(["? [a, b]\n: 1\n", "? {x: 1}\n: 2\n", "[a, b]: 1\n", "{x: 1}: 2\n", "? - a\n  - b\n: 3\n"])
    where = rng.choice(["top", "nested"])
    if where == "top":
        return text + "\n" + block
    return text + "\nexposure:\n" + "".join("  " + ln + "\n" for ln in block.splitlines())


def _deep_nesting(rng: random.Random, text: str) -> str:
    depth = rng.choice([50, 200, 1000, 5000, 20000])
    if rng.random() < 0.5:
        return text + f"\ndescription: {'[' * depth}{']' * depth}\n"
    nested = "".join(" " * i + f"k{i}:\n" for i in range(min(depth, 3000)))
    return text + "\nexposure:\n" + "".join("  " + ln + "\n" for ln in nested.splitlines()) + " " * 3002 + "x: 1\n"


def _alias_bomb(rng: random.Random, text: str) -> str:
    width, levels = rng.choice([(9, 9), (10, 12), (5, 20), (2, 60)])
    lines = ["a0: &a0 [lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    key = rng.choice(["description", "metadata", "crops", "bomb"])
    return "\n".join(["x_anchors:"] + ["  " + ln for ln in lines]) + f"\n{key}: *a{levels - 1}\n" + text


def _self_alias(rng: random.Random, text: str) -> str:
    return text + rng.choice(["\nloop: &x [*x]\n", "\nmetadata: &m {keywords: *m}\n", "\ncrops: &c [*c, *c]\n"])


def _oversized(rng: random.Random, text: str) -> str:
    return text + "\n# " + "x" * rng.choice([2 << 20, 5 << 20]) + "\n"


def _bad_extends(rng: random.Random, text: str) -> str:
    target = rng.choice(["../../../etc/passwd", "/etc/passwd", "nope", "fuzzed", "base\x00", "[a]", "{}", "''", "~",
                         "' '", "a" * 300, "日本", "../charts/base.yaml", "/dev/zero", "/proc/self/environ"])
    lines = [ln for ln in _lines(text) if not ln.startswith("extends:")]
    return "\n".join(lines) + f"\nextends: {target}\n"


def _bad_naming(rng: random.Random, text: str) -> str:
    lines = [ln for ln in _lines(text) if not ln.startswith("naming:")]
    template = rng.choice(HOSTILE_TEMPLATES).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "\n".join(lines) + f'\nnaming: "{template}"\n'


def _huge_box(rng: random.Random, text: str) -> str:
    w = rng.choice([16, 1080, 20000, 30000, 30001, 65536])
    h = rng.choice([16, 1080, w, 30000])
    aspect = f"{w // __import__('math').gcd(w, h)}:{h // __import__('math').gcd(w, h)}"
    fmt = rng.choice(["jpeg", "webp", "png", "tiff"])
    return (text + f"\ncrops:\n  - {{aspect: '{aspect}'}}\nrenditions:\n  huge:\n    crop: '{aspect}'\n"
            f"    width_px: {w}\n    height_px: {h}\n    format: {fmt}\n")


def _huge_long_edge(rng: random.Random, text: str) -> str:
    fmt = rng.choice(["jpeg", "webp", "png", "tiff"])
    return text + f"\nrenditions:\n  big:\n    long_edge_px: {rng.choice([16000, 16384, 20000, 30000, 65536])}\n    format: {fmt}\n"


def _bad_key(rng: random.Random, text: str) -> str:
    def rewrite(line: str) -> str:
        indent = len(line) - len(line.lstrip())
        _, _, value = line.partition(":")
        key = rng.choice(["exposur", "Exposure", "1", "null", "true", "<<", "日本", "a b", "\u202ekey", "''", "x" * 2000])
        return " " * indent + key + ":" + value

    return _rewrite_a_setting(rng, text, rewrite)


MUTATIONS: list[Callable[[random.Random, str], str]] = [
    _drop_line, _duplicate_line, _swap_lines, _reindent, _replace_value, _replace_value, _insert_character,
    _truncate, _complex_key, _deep_nesting, _alias_bomb, _self_alias, _oversized, _bad_extends, _bad_naming,
    _huge_box, _huge_long_edge, _bad_key,
]  # fmt: skip


def mutate(seed: int, charts: dict[str, str]) -> tuple[str, str, list[str]]:
    """One mutated chart: (base chart name, text, names of the mutations applied), from ``seed`` alone."""
    rng = random.Random(seed)
    name = rng.choice(sorted(charts))
    text = charts[name]
    applied = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        mutation = rng.choice(MUTATIONS)
        text = mutation(rng, text)
        applied.append(mutation.__name__.lstrip("_"))
    return name, text, applied


def write_mutant(folder: Path, seed: int, charts: dict[str, str]) -> tuple[Path, str, list[str]]:
    """Write mutant ``seed`` as ``folder/fuzzed.yaml`` (bytes as the text says; invalid UTF-8 kept)."""
    name, text, applied = mutate(seed, charts)
    path = folder / "fuzzed.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path, name, applied
