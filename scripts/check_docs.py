#!/usr/bin/env python3
"""Checks that tuneloop's files speak of the software as it is, not of how it was made.

    python3 scripts/check_docs.py            # history scan (exit 1 lists file:line)
    python3 scripts/check_docs.py --readme   # README: length, the two commands, first steps

The history scan reads README.md, NEWS, docs/**/*.md, scripts/*, studies/*.yaml,
config/default.yaml, the top-level CMakeLists.txt and the sources (*.cpp, *.hpp,
CMakeLists.txt, and the web player's and test helpers' *.js, *.html, *.css, *.py, *.sh)
under the top-level code folders. A line fails when it names a numbered round of work (the
word "session" or "sessions" followed by a number, "round N of work"), an issue number, or
an absolute path of a build machine (under /work or /root). A study session, or an example
path such as /home/me/music, is fine.

The README check: at most 150 lines; its first fenced code block holds exactly the run and
test commands (.ci/run copies the test line); and it says how to install and run, open the
player, rate, add songs, start an iteration and roll back, with the real commands.
Standard library only.
"""

import argparse
import pathlib
import re
import sys

CODE_FOLDERS = ["adapters", "audio", "bench", "cli", "client", "config", "corpus", "daemon",
                "loop", "model", "mpd", "pilot", "player", "store", "study", "tests", "ui"]
SKIP_DIRS = {"build", "runs", "node_modules", ".git", ".cache"}
SOURCE_SUFFIXES = {".cpp", ".hpp", ".js", ".html", ".css", ".py", ".sh"}

# Each pattern names what it catches; matched case-insensitively, line by line.
HISTORY_PATTERNS = [
    ("a numbered session of work", re.compile(r"\bsessions?[- ]\d", re.I)),
    ("a set of sessions", re.compile(r"\b(?:earlier|previous|past|later|next) (?:set of )?sessions\b", re.I)),
    ("a numbered round of work", re.compile(r"\brounds? \d+ of work", re.I)),
    ("an issue number", re.compile(r"\bissues?\s+(?:#\s*\d|\d+\b)", re.I)),
    ("a build machine's absolute path", re.compile(r"(?<![\w.~-])/(?:work|root)/")),
]

MAX_README_LINES = 150
RUN_LINE = "bash scripts/run.sh     # set up (apt), build (Release), run the daemon on config/default.yaml"
TEST_LINE = "bash scripts/test.sh    # set up (apt), build, run the whole test suite through ctest"

# What a reader must be able to do from the README alone, and the command that does it.
README_CHECKLIST = [
    ("install and run", r"bash scripts/run\.sh"),
    ("open the web player", r"\btuneloop ui\b"),
    ("rate a track", r"\btuneloop rate \d"),
    ("add your songs", r"\btuneloop songs add\b"),
    ("start an iteration", r"\btuneloop iterate\b"),
    ("roll back", r"\btuneloop iterations activate\b"),
]


def history_files(root):
    """The files the history scan reads, relative to root, sorted and without repeats."""
    found = set()

    def add(path):
        if path.is_file() and not (SKIP_DIRS & set(path.relative_to(root).parts)):
            found.add(path)

    for name in ["README.md", "NEWS", "CMakeLists.txt", "config/default.yaml"]:
        add(root / name)
    for pattern in ["docs/**/*.md", "scripts/*", "studies/*.yaml"]:
        for path in root.glob(pattern):
            add(path)
    for folder in CODE_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            if path.suffix in SOURCE_SUFFIXES or path.name == "CMakeLists.txt":
                add(path)
    return sorted(found)


def scan_history(root):
    files = history_files(root)
    findings = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            findings.append(f"{path.relative_to(root)}: unreadable: {e}")
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for what, pattern in HISTORY_PATTERNS:
                m = pattern.search(line)
                if m:
                    findings.append(f"{path.relative_to(root)}:{number}: {what}: "
                                    f"'{m.group(0).strip()}' in: {line.strip()[:120]}")
                    break
    if findings:
        print("\n".join(findings))
        print(f"check_docs: {len(findings)} lines in {len(files)} files speak of history "
              "(rounds of work, issue numbers, build-machine paths)")
        return 1
    print(f"check_docs: {len(files)} files clean")
    return 0


def first_code_block(lines):
    """The lines inside the first fenced code block, or None when there is none."""
    start = None
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            if start is None:
                start = i
            else:
                return lines[start + 1:i]
    return None


def check_readme(root):
    problems = []
    readme = root / "README.md"
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError as e:
        print(f"check_docs: README.md: {e}")
        return 1
    lines = text.splitlines()
    if len(lines) > MAX_README_LINES:
        problems.append(f"README.md has {len(lines)} lines; at most {MAX_README_LINES}")

    block = first_code_block(lines)
    wanted = [RUN_LINE, TEST_LINE]
    if block is None:
        problems.append("README.md has no fenced code block; the first must hold the run and test commands")
    elif [line.rstrip() for line in block if line.strip()] != wanted:
        problems.append("README.md's first code block must hold exactly these two lines:\n    "
                        + "\n    ".join(wanted) + "\n  it holds:\n    "
                        + "\n    ".join(block))

    ci = root / ".ci" / "run"
    if ci.is_file():
        commands = [l.strip() for l in ci.read_text(encoding="utf-8").splitlines()
                    if l.strip().startswith("bash ")]
        if commands != [TEST_LINE]:
            problems.append(f".ci/run must run the README's test line verbatim: {TEST_LINE}")

    for what, pattern in README_CHECKLIST:
        if not re.search(pattern, text):
            problems.append(f"README.md does not say how to {what} (expects /{pattern}/)")

    if problems:
        print("\n".join(problems))
        print(f"check_docs: README.md: {len(problems)} problem(s)")
        return 1
    print(f"check_docs: README.md ok ({len(lines)} lines, {len(README_CHECKLIST)} first steps)")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", action="store_true",
                        help="check README.md's length, its first code block and its first steps "
                             "instead of scanning for history")
    parser.add_argument("--root", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parent.parent,
                        help="the source tree (default: this script's parent folder)")
    args = parser.parse_args()
    root = args.root.resolve()
    return check_readme(root) if args.readme else scan_history(root)


if __name__ == "__main__":
    sys.exit(main())
