"""The project stands alone: nothing it builds, tests or runs reads the
team's reference folder beside the checkout (../shared) or the old
NODO_SHARED_DIR override. Documentation may tell that history (Markdown is
not read at build, test or run time); code, scripts, units and data may
not. `.ci/run` proves the rest by running `make check` from a clone in an
empty temporary folder."""
import re
import subprocess

from conftest import ROOT

# What reaching outside looked like.
OUTSIDE = re.compile(r"\.\./shared|shared/(reference|spec|seed)\b|"
                     r"NODO_SHARED_DIR|/work/shared|['\"]shared['\"]")

# The one line allowed to name the old variable: the test that proves it is
# ignored now (it sets it and checks nothing changes).
ALLOWED = {
    "tests/integration/test_fake_cloudflare.py":
        'monkeypatch.setenv("NODO_SHARED_DIR"',
}

SELF = "tests/integration/test_standalone.py"


def tracked_files():
    r = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT,
                       capture_output=True, timeout=60)
    if r.returncode == 0 and r.stdout:
        return [p for p in r.stdout.decode().split("\0") if p]
    # Not a git checkout (an exported tree): every file but build output.
    return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
            if p.is_file() and not str(p.relative_to(ROOT)).startswith(
                ("build", ".git/"))]


def offending_lines():
    bad = []
    for rel in tracked_files():
        if rel == SELF or rel.endswith(".md"):
            continue
        path = ROOT / rel
        try:
            text = path.read_text(errors="strict")
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue  # binary (fuzz inputs) or gone
        for n, line in enumerate(text.splitlines(), 1):
            if not OUTSIDE.search(line):
                continue
            allowed = ALLOWED.get(rel)
            if allowed is not None and allowed in line:
                continue
            bad.append(f"{rel}:{n}: {line.strip()}")
    return bad


def test_nothing_reads_outside_the_repository():
    files = tracked_files()
    assert "Makefile" in files and "tests/fakes/fake_cloudflare.py" in files
    assert offending_lines() == []


def test_the_check_catches_a_reference(tmp_path, monkeypatch):
    """The grep above is not blind: a line like the old schema search is
    found."""
    assert OUTSIDE.search('os.environ.get("NODO_SHARED_DIR")')
    # The old fake's sibling-folder search, as it was written.
    assert OUTSIDE.search('[Path(__file__).resolve().parents[3] / "shared" '
                          '/ "reference"]')
    assert OUTSIDE.search('Path(root, "../shared/reference")')
    assert OUTSIDE.search("cp /work/shared/spec/CONTRACT.md .")


def test_ci_runs_the_suite_from_a_fresh_clone():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "mktemp -d" in ci
    assert re.search(r"git clone [^\n]*\"\$\w+\"", ci), ci
    assert re.search(r"make -C \"\$\w+\" check|cd \"\$\w+\"[^\n]*\n"
                     r"(.*\n)*?make check", ci), ci
