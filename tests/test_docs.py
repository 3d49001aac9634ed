"""The commands in README.md, MODEL_CARD.md and docs/ are written as they run: every `edgesharp ...` line parses
with the real command line, every `python -m edgesharp...` module exists, every `make` target is in the Makefile,
and the cheap ones run (the Python API example too). docs/model-history.md is a record of past runs and keeps
their commands as they were."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgesharp.edge.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", REPO / "MODEL_CARD.md",
             *sorted(p for p in (REPO / "docs").glob("*.md") if p.name != "model-history.md")]
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


def _blocks(text: str, inline: bool = False) -> list[str]:
    """Commands of the fenced shell blocks (continuations joined, comments dropped), or with `inline` the code
    spans of the prose (mentions such as `edgesharp calibrate --slim`)."""
    if inline:
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        return [span.strip() for span in re.findall(r"`([^`\n]+)`", prose)]
    commands = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def _words(command: str) -> list[str]:
    words = shlex.split(command.split(" | ")[0].split(" && ")[-1].split("; ")[0])
    while words and _ENV.match(words[0]):  # VAR=value prefixes
        words = words[1:]
    return words


def _commands(program: str, inline: bool = False) -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCUMENTS:
        for command in _blocks(doc.read_text(), inline):
            try:
                words = _words(command)
            except ValueError:
                continue
            if words[:1] == [program] or words[:3] == ["python", "-m", program]:
                found.append((f"{doc.name}: {command}", words))
    return found


EDGESHARP = _commands("edgesharp")
MENTIONS = [(where, words) for where, words in _commands("edgesharp", inline=True)
            if words[0] == "edgesharp" and len(words) > 1]


def test_the_documents_have_commands():
    assert len(EDGESHARP) >= 20
    assert any(words[1:2] == ["run"] for _, words in EDGESHARP)


@pytest.mark.parametrize("where, words", EDGESHARP, ids=[w for w, _ in EDGESHARP])
def test_every_edgesharp_command_parses(where, words):
    argv = words[3:] if words[0] == "python" else words[1:]
    if argv in ([], ["--help"], ["-h"]) or argv[0].startswith("edgesharp."):
        return
    if "..." in argv or any(w.isupper() and w.isalpha() and len(w) > 2 and not w.startswith("-") for w in argv):
        argv = [w for w in argv if w != "..."]  # a placeholder such as BUNDLE or DIR still has to parse
    parser = build_parser(argv[0])
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{where}: does not parse (exit {exc.code})")


def _parser_for(words: list[str]):
    """The (sub)parser that `words` (after `edgesharp`) reach: `bench fps` gives bench fps's parser."""
    import argparse

    parser = build_parser(words[0])
    for word in words:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers or word not in subparsers[0].choices:
            break
        parser = subparsers[0].choices[word]
    return parser


@pytest.mark.parametrize("where, words", MENTIONS, ids=[w for w, _ in MENTIONS])
def test_every_option_mentioned_in_prose_exists(where, words):
    parser = _parser_for(words[1:])
    known = {s for a in parser._actions for s in a.option_strings}
    flags = {w.split("=")[0] for w in words[1:] if w.startswith("--")}
    assert flags <= known, f"{where}: no such option {sorted(flags - known)}"


MODULES = sorted({words[2] for _, words in _commands("python") if len(words) > 2 and words[1] == "-m"
                  and words[2].startswith("edgesharp")} |
                 {words[2] for _, words in EDGESHARP if words[0] == "python"})


@pytest.mark.parametrize("module", MODULES)
def test_every_python_module_command_exists(module):
    assert importlib.util.find_spec(module) is not None, module


def test_every_make_target_exists():
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    used = {words[1] for doc in DOCUMENTS for c in _blocks(doc.read_text())
            for words in [c.split()] if len(words) > 1 and words[0] == "make"}
    assert used and used <= targets, used - targets


def test_the_readme_python_example_runs(tiny_bundle_dir):
    readme = (REPO / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    code = code.replace("Sharpener()", f"Sharpener({str(tiny_bundle_dir)!r})").replace("...", "outs.append(out)")
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    scope = {"frame_bgr": frame, "frames": [frame] * 3, "outs": []}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["sharp"].shape == frame.shape and len(scope["outs"]) == 3


def test_the_readme_enhance_commands_run(tiny_bundle_dir, tmp_path, shared_data):
    """The enhance examples as written, on a photo, a folder and a clip made here (the tiny model stands in)."""
    image = cv2.imread(str(shared_data / "kodak24" / "kodim01.png"))[:96, :128]
    cv2.imwrite(str(tmp_path / "photo.jpg"), image)
    writer = cv2.VideoWriter(str(tmp_path / "clip.mkv"), cv2.VideoWriter_fourcc(*"XVID"), 10, (128, 96))
    for _ in range(5):
        writer.write(image)
    writer.release()
    enhance = [words for _, words in EDGESHARP if words[1:2] == ["enhance"] and "photo.jpg" in words or
               words[1:2] == ["enhance"] and "clip.mkv" in words]
    assert len(enhance) >= 2
    for words in enhance:
        argv = [*words[1:], "--model", str(tiny_bundle_dir), "-q"]
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(tmp_path)
            assert main(argv) == 0, words
        assert (tmp_path / words[3]).exists()


def test_edgesharp_help_runs():
    out = subprocess.run([sys.executable, "-m", "edgesharp", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "enhance" in out.stdout


def _results(name: str) -> dict:
    import json

    return json.loads((REPO / "benchmarks" / "results" / name / "results.json").read_text())


def _levels(rows: list[dict], method: str) -> list[float]:
    first = {}
    for row in rows:
        if row["method"] == method and row["level"] not in first:  # the first model of that name: the default
            first[row["level"]] = row["ssim"]
    return [first[level] for level in ("heavy", "medium", "low")]


def test_quoted_figures_match_the_stored_runs_they_cite():
    """The README's and model card's prose quote stored results; a re-run that changes them must change the prose."""
    readme, card = (REPO / "README.md").read_text(), (REPO / "MODEL_CARD.md").read_text()
    e2e = next(r for r in _results("amd-epyc-2c-as-avx2-v12")["fps"]
               if r["kind"] == "e2e" and r["model"] == "edgesharp-default" and r["size"] == "1280x720")
    assert f"{e2e['fps']:.1f} FPS" in card
    governed, free = sorted(_results("amd-epyc-2c-as-avx2-governor-720")["governor"]["runs"],
                            key=lambda r: not r["governed"])
    assert f"{governed['fps']:.1f} FPS, {governed['drop_pct']:.0f} % dropped" in readme
    assert f"v12 alone {free['fps']:.1f}" in readme
    method = "edgesharp-default openvino auto (fp16)"
    kodak = " / ".join(f"{v:.4f}" for v in _levels(_results("amd-epyc-2c-as-avx2-v12-quality")["quality"]["rows"], method))
    val = _levels(_results("amd-epyc-2c-v12-quality-val")["quality"]["rows"], method)
    assert f"AVX2 class {kodak}" in readme and kodak in card
    assert " / ".join(f"{v:.4f}" for v in val) in readme and " | ".join(f"**{v:.4f}**" for v in val) in card
    governed, free = sorted(_results("amd-epyc-2c-as-avx2-governor")["governor"]["runs"], key=lambda r: not r["governed"])
    assert (f"governed {governed['settled_fps']:.1f} FPS, {governed['drop_pct']:.0f} % dropped" in readme
            and f"{free['settled_fps']:.1f} FPS, {free['drop_pct']:.0f} % dropped" in readme)
    assert f"{governed['settled_fps']:.1f} FPS with {governed['drop_pct']:.0f} % dropped" in card


def test_every_stored_run_is_cited_by_a_document():
    text = "".join(doc.read_text() for doc in [*DOCUMENTS, REPO / "docs" / "model-history.md", REPO / "CHANGELOG.md"])
    runs = sorted(p.name for p in (REPO / "benchmarks" / "results").iterdir() if p.is_dir())
    assert runs and [name for name in runs if name not in text] == []
