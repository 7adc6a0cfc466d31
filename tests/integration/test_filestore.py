"""The filestore copy and removal against a hostile tree, and the order
that makes a tenant's files durable before it is visible (CONTRACT 8).

* A template's filestore holding symbolic links (to /, to /etc/passwd, to
  a sibling tenant's folder, to a folder outside the data dir) and a fifo:
  the create succeeds, copies none of them, reads nothing they point at
  (strace shows no path of theirs), and the reply names what it skipped.
* A tenant's folder holding the same links, or being itself a link to a
  sibling's folder: DELETE removes the links, never what they point at.
* strace of a create shows every byte-copied file and every directory
  made fsynced, then the rename, then an fsync of filestore/, then the
  ALTER DATABASE ... RENAME that publishes the tenant.
"""
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import FILESTORE_FILES

STRACE = shutil.which("strace") or "/usr/bin/strace"
LINE = re.compile(r"^(\d+)\s+(\w+)\((.*?)(?:\)\s+=\s+(-?\d+).*|"
                  r" <unfinished \.\.\.>)$")


class Strace:
    """strace -f attached to a running daemon (every thread, and the
    threads it starts), -y: descriptors printed with their paths."""

    def __init__(self, pid, out, calls):
        self.pid = pid
        self.out = Path(out)
        self.calls = calls
        self.attached = 0
        self.proc = None

    def _read(self):
        for line in self.proc.stderr:
            if "attached" in line:
                self.attached += 1

    def __enter__(self):
        self.proc = subprocess.Popen(
            [STRACE, "-f", "-y", "-s", "256", "-e",
             "trace=" + ",".join(self.calls), "-o", str(self.out), "-p",
             str(self.pid)], stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        # One line, "Process N attached with M threads", once all are.
        deadline = time.monotonic() + 20
        while self.attached == 0:
            assert self.proc.poll() is None, "strace exited"
            assert time.monotonic() < deadline, "strace did not attach"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGINT)  # detaches, the daemon runs on
        self.proc.wait(30)

    def events(self):
        """(pid, syscall, args) in the order the calls were entered."""
        ev = []
        for line in self.out.read_text(errors="replace").splitlines():
            m = LINE.match(line)
            if m:
                ev.append((int(m.group(1)), m.group(2), m.group(3)))
        return ev


def own_data_dir(tmp_path, template_dir=None):
    """A data dir of this test's own; filestore/tcs holds Odoo's files, or
    is a link to template_dir (another file system: byte copies)."""
    data = tmp_path / "data"
    fs = data / "filestore"
    fs.mkdir(parents=True)
    src = template_dir if template_dir is not None else fs / "tcs"
    for rel, content in FILESTORE_FILES.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(content)
    if template_dir is not None:
        (fs / "tcs").symlink_to(template_dir)
    return data


def tree(path):
    """{relative path: kind} of everything under path, links unfollowed."""
    out = {}
    for dirpath, dirs, files in os.walk(path, followlinks=False):
        for n in dirs + files:
            p = Path(dirpath) / n
            m = os.lstat(p).st_mode
            kind = ("dir" if stat.S_ISDIR(m) else "file" if stat.S_ISREG(m)
                    else "link" if stat.S_ISLNK(m) else "other")
            out[str(p.relative_to(path))] = kind
    return out


def expected_tree():
    out = {}
    for rel in FILESTORE_FILES:
        out[rel] = "file"
        out[str(Path(rel).parent)] = "dir"
    return out


# -- links in a template are never followed ---------------------------------

def test_template_links_are_skipped_and_named(node, pg, tmp_path):
    data = own_data_dir(tmp_path)
    fs = data / "filestore"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("not the tenant's")
    api = node(ODOO_DATA_DIR=str(data))
    r = api.create("victim", "pw")
    assert r.status_code == 201, r.text
    (fs / "victim" / "secret").write_text("victim's own")

    tpl = fs / "tcs"
    hostile = {"rootlink": "/", "0a/passwd": "/etc/passwd",
               "sibling": "../victim", "d7/victim_abs": str(fs / "victim"),
               "checklist/outside": str(outside)}
    for rel, target in hostile.items():
        (tpl / rel).symlink_to(target)
    os.mkfifo(tpl / "fifo")
    kinds = dict({rel: "symlink" for rel in hostile}, fifo="fifo")

    calls = ["openat", "open", "newfstatat", "getdents64", "linkat",
             "mkdirat", "read", "readlinkat", "fsync", "renameat2"]
    with Strace(api.proc.pid, tmp_path / "trace", calls) as st:
        r = api.create("fromlinks", "pw")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["filestore"]["skipped"] == len(kinds)
    shown = body["filestore"]["skipped_entries"]
    assert len(shown) == 5  # FS_SKIP_SHOWN
    for e in shown:
        assert kinds[e["path"]] == e["type"], e
    assert f"{len(kinds)} entries not copied" in body["warning"]
    for e in shown:
        assert e["path"] in body["warning"]
    assert "not copied" in api.log()

    # The tenant has Odoo's files and nothing else: no link, no fifo.
    assert tree(fs / "fromlinks") == expected_tree()
    for rel, content in FILESTORE_FILES.items():
        assert (fs / "fromlinks" / rel).read_bytes() == content
    # Nothing the links point at was read, copied or changed.
    text = (tmp_path / "trace").read_text(errors="replace")
    assert st.events(), "strace saw nothing"
    assert "fromlinks" in text
    assert str(outside) not in text
    assert "/etc/passwd" not in text
    assert str(fs / "victim") not in text
    assert (fs / "victim" / "secret").read_text() == "victim's own"
    assert (outside / "sentinel").read_text() == "not the tenant's"
    assert tree(fs / "victim") == dict(expected_tree(), secret="file")


# -- delete never follows links -----------------------------------------------

def test_delete_removes_links_not_their_targets(node, pg, tmp_path):
    data = own_data_dir(tmp_path)
    fs = data / "filestore"
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir" / "sentinel").write_text("keep")
    api = node(ODOO_DATA_DIR=str(data))
    for name in ("victim", "dellinks", "dellink2"):
        assert api.create(name, "pw").status_code == 201
    (fs / "victim" / "secret").write_text("victim's own")
    victim_tree = tree(fs / "victim")

    t = fs / "dellinks"
    (t / "rootlink").symlink_to("/")
    (t / "sib").symlink_to("../victim")
    (t / "0a" / "passwd").symlink_to("/etc/passwd")
    (t / "d7" / "sub").mkdir()
    (t / "d7" / "sub" / "outside").symlink_to(outside)
    (t / "d7" / "sub" / "sentinel").symlink_to(outside / "dir" / "sentinel")
    os.mkfifo(t / "fifo")
    # A tenant's folder that is itself a link to a sibling's.
    shutil.rmtree(fs / "dellink2")
    (fs / "dellink2").symlink_to(fs / "victim")

    # One deleted for good, one to the trash and then purged from it.
    for name, purge in (("dellinks", "true"), ("dellink2", "false")):
        r = api.delete("/api/tenant", params={"subdomain": name,
                                              "purge": purge})
        assert r.status_code == 200, r.text
        assert not os.path.lexists(fs / name)
        assert name not in pg.databases()
        if purge == "false":
            tid = r.json()["trash"]["id"]
            assert os.path.lexists(fs / ("_nodo_t" + tid))
            assert api.delete(f"/api/trash/{tid}").status_code == 200
            assert not os.path.lexists(fs / ("_nodo_t" + tid))
    assert tree(fs / "victim") == victim_tree
    assert (fs / "victim" / "secret").read_text() == "victim's own"
    assert (outside / "dir" / "sentinel").read_text() == "keep"
    assert os.path.isfile("/etc/passwd")


# -- durable before visible ---------------------------------------------------

@pytest.fixture
def other_fs_template():
    """The template's files on /dev/shm (tmpfs): the data dir is on another
    file system, hard links fail with EXDEV and bytes are copied."""
    d = Path(tempfile.mkdtemp(prefix="nodo-tpl-", dir="/dev/shm"))
    try:
        yield d / "tcs"
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("layout", ["hard-links", "byte-copy"])
def test_files_fsynced_before_publish(node, pg, tmp_path, other_fs_template,
                                      layout):
    data = own_data_dir(tmp_path, other_fs_template
                        if layout == "byte-copy" else None)
    fs = data / "filestore"
    if layout == "byte-copy":
        assert os.stat(fs).st_dev != os.stat(other_fs_template).st_dev
    api = node(ODOO_DATA_DIR=str(data))
    calls = ["fsync", "renameat2", "sendto", "linkat", "openat"]
    with Strace(api.proc.pid, tmp_path / "trace", calls) as st:
        r = api.create("durable", "pw")
    assert r.status_code == 201, r.text
    assert "filestore" not in r.json()  # nothing skipped

    ev = st.events()
    ren = [e for e in ev if e[1] == "renameat2" and "/durable\"" in e[2]]
    assert len(ren) == 1, ren
    tid, _, args = ren[0]
    tmp = re.search(r'"([^"]*/filestore/[^"/]+)"', args).group(1)
    mine = [e for e in ev if e[0] == tid]  # the create's own thread
    i_ren = mine.index(ren[0])
    # The copy runs on a thread of its own while PostgreSQL clones; strace
    # -f writes every thread's calls in the order they were made.
    i_ren_all = ev.index(ren[0])

    def fsynced(events):
        out = []
        for _, call, a in events:
            m = re.match(r"\d+<(.*)>$", a)
            if call == "fsync" and m:
                out.append(m.group(1))
        return out

    before = fsynced(ev[:i_ren_all])
    dirs = {tmp} | {f"{tmp}/{Path(rel).parent}" for rel in FILESTORE_FILES}
    files = {f"{tmp}/{rel}" for rel in FILESTORE_FILES}
    want = dirs | (files if layout == "byte-copy" else set())
    assert set(before) == want, (before, want)
    assert len(before) == len(want)  # each once
    links = [e for e in ev[:i_ren_all] if e[1] == "linkat"]
    assert len(links) == len(FILESTORE_FILES)  # tried first, either way

    # After the rename: filestore/ itself, then the publishing statement.
    after = mine[i_ren + 1:]
    i_sync = next(i for i, e in enumerate(after)
                  if e[1] == "fsync" and e[2].endswith(f"<{fs}>"))
    i_pub = next(i for i, e in enumerate(after)
                 if e[1] == "sendto" and "ALTER DATABASE" in e[2])
    assert i_sync < i_pub
    assert fsynced(after[:i_sync]) == []
    for rel, content in FILESTORE_FILES.items():
        assert (fs / "durable" / rel).read_bytes() == content
    if layout == "byte-copy":
        src = os.stat(other_fs_template / "0a").st_dev
        assert os.stat(fs / "durable" / "0a").st_dev != src
