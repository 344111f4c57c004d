"""Starting the student's process: what it may see, what it may use, and the bubblewrap sandbox.

An assignment's :class:`Policy` names the third-party packages and the rnnkit modules its student
code may import. :class:`SiteLayout` turns that into a private ``site`` folder: those packages (with
the packages they depend on), a cut-down ``rnnkit`` holding only the allowed modules and what they
import, the student side of the protocol, and a stand-in ``course`` package. Nothing else of the
Python environment is on the student's path.

:func:`launch` starts ``python -m student_side`` on that path, either

* in a bubblewrap sandbox (grading): its own mount, PID, IPC, UTS and network namespaces; it sees
  ``/usr``, the system libraries, the Python installation, its site folder (read-only) and a small
  private home and ``/tmp`` (tmpfs), nothing else; as root it runs under an unprivileged uid of its
  own; limits on memory, CPU time, processes and file size; all its processes end with it; or
* as a plain child process (``sandboxed=False``: a laptop without bubblewrap): the same path and
  limits, but it can read what the grader's user can read.
"""
from __future__ import annotations

import ast
import fcntl
import hashlib
import importlib.metadata as metadata
import importlib.util
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

STUDENT_SIDE = Path(__file__).resolve().parent / "student_side"
OPT = "/opt/course"           # inside the sandbox: student_side and the stand-in course package
SITE = "/opt/site"            # inside the sandbox: the allowed packages
HOME = "/home/student"
FIRST_UID = 61000             # sandboxed processes run as FIRST_UID + slot when the grader is root
SLOTS = 256

COURSE_STANDIN = '''"""Stand-in for the course package inside the grading sandbox."""


def check(spec, **params):
    print(f"(check {spec!r}: the grader runs this check itself, outside your notebook)")
'''


class SandboxError(RuntimeError):
    """The sandbox cannot be set up (missing bubblewrap, unknown package...)."""


@dataclass(frozen=True)
class Policy:
    """What an assignment's student code may import: third-party packages by import name, and
    rnnkit modules (``"rnnkit.gradcheck"``) whose internal imports come along."""

    packages: tuple[str, ...] = ("numpy",)
    rnnkit: tuple[str, ...] = ()

    def union(self, other: "Policy") -> "Policy":
        return Policy(tuple(dict.fromkeys(self.packages + other.packages)),
                      tuple(dict.fromkeys(self.rnnkit + other.rnnkit)))


@dataclass
class Limits:
    """Resources of one student process. Times are CPU seconds, so a loaded machine does not turn
    a pass into a timeout; ``wall_factor`` only bounds a process that waits without computing."""

    memory: int = 2 * 2**30          # bytes of data segment (RLIMIT_DATA), per process
    cpu_per_request: float = 60.0    # CPU seconds for one cell or one call
    cpu_total: float = 600.0         # CPU seconds for the whole process (RLIMIT_CPU)
    wall_factor: float = 5.0         # a request may take wall_factor * its CPU limit + wall_slack s
    wall_slack: float = 30.0
    processes: int = 64              # RLIMIT_NPROC for the sandbox's own uid
    file_size: int = 64 * 2**20      # largest file it may write (RLIMIT_FSIZE)
    tmp_size: int = 128 * 2**20      # size of its private /tmp and home (tmpfs)

    def wall_limit(self, cpu: float) -> float:
        return self.wall_factor * cpu + self.wall_slack


# --------------------------------------------------------------------------------------------
# the site folder
# --------------------------------------------------------------------------------------------

@dataclass
class SiteLayout:
    """``entries``: path inside the site folder -> host path; ``generated``: path -> file text."""

    entries: dict[str, str] = field(default_factory=dict)
    generated: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_policy(cls, policy: Policy) -> "SiteLayout":
        """The packages of ``policy``, the allowed rnnkit modules, and the third-party packages
        those modules import (torch only when the policy names it: it would give autograd away)."""
        layout = cls()
        needed = layout.add_rnnkit(policy.rnnkit)
        installed = _packages_to_distributions()
        extra = tuple(sorted(p for p in needed if p in installed and p not in NEVER_IMPLIED))
        for dist in _distribution_closure(tuple(dict.fromkeys(policy.packages + extra))):
            layout.entries.update(_top_level_entries(dist))
        return layout

    def add_rnnkit(self, modules: tuple[str, ...]) -> set[str]:
        """The allowed rnnkit modules, what they import inside rnnkit, and an ``__init__`` that
        re-exports only their names. Returns the third-party packages these files import."""
        if not modules:
            return set()
        root = _package_dir("rnnkit")
        files = _rnnkit_closure(modules, root)
        for rel in sorted(files):
            self.entries[f"rnnkit/{rel}"] = str(root / rel)
        self.generated["rnnkit/__init__.py"] = _rnnkit_init(root, files)
        return set().union(*(_third_party_imports(root / rel) for rel in files))

    def materialise(self, where: Path) -> Path:
        """A real folder with the layout (symbolic links to the host's files): the student's path
        outside a sandbox, and the source of the generated files inside one."""
        where.mkdir(parents=True, exist_ok=True)
        for rel, host in self.entries.items():
            target = where / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(host)
        for rel, text in self.generated.items():
            target = where / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return where


@lru_cache(maxsize=None)
def _packages_to_distributions() -> dict:
    return metadata.packages_distributions()


def _distribution_closure(packages: tuple[str, ...]) -> list[metadata.Distribution]:
    """The distributions that provide ``packages``, and those they require (without extras)."""
    from packaging.requirements import Requirement

    names = []
    for package in packages:
        dists = _packages_to_distributions().get(package)
        if not dists:
            raise SandboxError(f"the assignment allows {package!r}, which is not installed here")
        names += dists
    seen, out = set(), []
    while names:
        name = names.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        out.append(dist)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                names.append(req.name)
    return out


def _top_level_entries(dist: metadata.Distribution) -> dict[str, str]:
    """Top-level files and folders of an installed distribution (packages, modules, .libs)."""
    base = Path(dist.locate_file(""))
    tops = {f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] not in ("..", "__pycache__")}
    return {top: str(base / top) for top in sorted(tops) if (base / top).exists()}


#: packages an allowed rnnkit module may import that are never added unless a policy names them
NEVER_IMPLIED = {"torch"}


def _third_party_imports(path: Path) -> set[str]:
    """Top-level names of the non-standard-library packages a file imports (at any depth)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name not in ("rnnkit", "__future__")}


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SandboxError(f"package {name} is not importable here")
    return Path(list(spec.submodule_search_locations)[0])


def _module_file(root: Path, module: str) -> str:
    """``rnnkit.cells.rnn`` -> ``cells/rnn.py`` (or ``cells/__init__.py`` for a package)."""
    parts = module.split(".")[1:]
    as_package = Path(*parts, "__init__.py") if parts else Path("__init__.py")
    if (root / as_package).is_file():
        return str(as_package)
    as_module = Path(*parts[:-1], parts[-1] + ".py") if parts else None
    if as_module is None or not (root / as_module).is_file():
        raise SandboxError(f"{module} is not a module of rnnkit")
    return str(as_module)


def _rnnkit_closure(modules: tuple[str, ...], root: Path) -> set[str]:
    """Files of rnnkit needed to import ``modules``: each module, the ``__init__`` of the
    subpackages on its way, and (transitively) every rnnkit module they import."""
    todo = [_module_file(root, m) for m in modules]
    files = set()
    while todo:
        rel = todo.pop()
        if rel in files:
            continue
        files.add(rel)
        parents = Path(rel).parents
        for parent in list(parents)[:-1]:  # subpackages' __init__ (not rnnkit's own)
            todo.append(str(parent / "__init__.py"))
        package = ".".join(["rnnkit", *Path(rel).parent.parts])
        for imported in _rnnkit_imports(root / rel, package):
            todo.append(_module_file(root, imported))
    files.discard("__init__.py")
    return files


def _rnnkit_imports(path: Path, package: str) -> set[str]:
    """The rnnkit modules that the file imports (absolute or relative, at any depth)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "rnnkit" or module.startswith("rnnkit."):
                found.add(module)
                for alias in node.names:  # `from . import text` imports a module
                    candidate = f"{module}.{alias.name}"
                    try:
                        _module_file(path.parents[len(package.split(".")) - 1], candidate)
                        found.add(candidate)
                    except SandboxError:
                        pass
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rnnkit.")}
    found.discard("rnnkit")
    return found


@lru_cache(maxsize=None)
def rnnkit_names(modules: tuple[str, ...]) -> frozenset[str]:
    """What ``rnnkit.<name>`` can be in a sandbox allowing ``modules``: its rnnkit modules (dotted)
    and the names its ``rnnkit/__init__`` re-exports."""
    if not modules:
        return frozenset()
    root = _package_dir("rnnkit")
    files = _rnnkit_closure(modules, root)
    names = {"rnnkit." + rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for rel in files}
    for node in ast.parse(_rnnkit_init(root, files)).body:
        if isinstance(node, ast.ImportFrom):
            names |= {f"rnnkit.{a.asname or a.name}" for a in node.names}
    return frozenset(names)


def _rnnkit_init(root: Path, files: set[str]) -> str:
    """An ``__init__`` for the cut-down rnnkit: the real one's re-exports of allowed modules."""
    lines = ['"""rnnkit, as far as this assignment allows."""']
    tree = ast.parse((root / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            if _module_file(root, "rnnkit." + node.module) in files:
                lines.append(ast.unparse(node))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# starting the process
# --------------------------------------------------------------------------------------------

def bubblewrap() -> str | None:
    """The bwrap executable, or None."""
    return shutil.which("bwrap")


def sandbox_available() -> tuple[bool, str]:
    """Whether a bubblewrap sandbox starts here, and why not."""
    bwrap = bubblewrap()
    if bwrap is None:
        return False, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net",
                            "--die-with-parent", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return False, f"bubblewrap cannot create namespaces here: {probe.stderr.strip()[:200]}"
    return True, ""


class UidSlot:
    """One of the unprivileged uids that sandboxed processes run as, held with a lock file for
    as long as the process lives, so that no two processes share a uid (and a process count)."""

    def __init__(self):
        folder = Path(tempfile.gettempdir()) / "course-sandbox-uids"
        folder.mkdir(mode=0o700, exist_ok=True)
        for slot in range(SLOTS):
            fd = os.open(folder / f"{slot}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.fd, self.uid = fd, FIRST_UID + slot
            return
        raise SandboxError(f"all {SLOTS} sandbox uids are in use")

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@dataclass
class Launch:
    """A started student process and what must be cleaned up after it."""

    proc: subprocess.Popen
    sandboxed: bool
    scratch: Path
    log_path: Path
    slot: UidSlot | None = None

    def cleanup(self) -> None:
        if self.slot is not None:
            self.slot.release()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def _environment(mpl_dir: str) -> dict[str, str]:
    return {"HOME": HOME, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": "/tmp",
            "PYTHONPATH": f"{OPT}:{SITE}", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": mpl_dir, "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _limit(limits: Limits, sandboxed: bool):
    """preexec_fn: the resource limits, set in the child before bubblewrap or Python starts."""
    def apply():
        os.setsid()
        if limits.memory:
            resource.setrlimit(resource.RLIMIT_DATA, (limits.memory, limits.memory))
        cpu = int(limits.cpu_total) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sandboxed and os.geteuid() == 0:  # counted for the sandbox's own uid
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    return apply


def _home_files_args(files: dict[str, bytes], scratch: Path) -> tuple[list[str], list[int]]:
    """bwrap arguments that copy ``files`` (name -> bytes) into the private home, writable."""
    args, fds = [], []
    for name, data in sorted(files.items()):
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            continue
        path = scratch / "files" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        fd = os.open(path, os.O_RDONLY)
        fds.append(fd)
        for parent in reversed(list(rel.parents)[:-1]):
            args += ["--perms", "0777", "--dir", f"{HOME}/{parent}"]
        args += ["--perms", "0666", "--file", str(fd), f"{HOME}/{rel}"]
    return args, fds


def _dirs(path: str) -> list[str]:
    """bwrap arguments creating ``path`` and each missing parent, readable by everyone (bwrap
    would otherwise make implicit parents 0700, closed to the unprivileged uid)."""
    args = []
    parts = Path(path).parts
    for i in range(2, len(parts) + 1):
        args += ["--perms", "0755", "--dir", str(Path(*parts[:i]))]
    return args


def _python_argv(command: list[str]) -> list[str]:
    """The base interpreter (not the virtual environment's), without site: only our path."""
    python = Path(sys.base_prefix, "bin", Path(sys.executable).name)
    if not python.exists():
        python = Path(sys.base_prefix, "bin", f"python{sys.version_info.major}.{sys.version_info.minor}")
    return [str(python), "-S", "-s", *command]


def _bwrap_argv(assets: "Assets", uid: int | None, limits: Limits, files_args: list[str],
                command: list[str], mpl_writable: Path | None) -> list[str]:
    prefix = Path(sys.base_prefix)
    argv = [bubblewrap(), "--clearenv", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "sandbox",
            "--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev"]
    for link in ("/bin", "/lib", "/lib64", "/lib32", "/sbin"):
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    if not str(prefix).startswith("/usr/"):
        argv += _dirs(str(prefix.parent)) + ["--ro-bind", str(prefix), str(prefix)]
        site_packages = next(prefix.glob("lib/python3*/site-packages"), None)
        if site_packages is not None:  # the base interpreter's own packages are not the student's
            argv += ["--tmpfs", str(site_packages)]
    argv += _dirs(OPT) + ["--ro-bind", str(STUDENT_SIDE), f"{OPT}/student_side",
                          "--ro-bind", str(assets.root / "course"), f"{OPT}/course"] + _dirs(SITE)
    bound = dict(assets.layout.entries)
    bound.update({rel: str(assets.root / "site" / rel) for rel in assets.layout.generated})
    made = set()
    for rel, host in sorted(bound.items()):
        parent = str(Path(rel).parent)
        if parent != "." and parent not in made:
            made.add(parent)
            argv += _dirs(f"{SITE}/{parent}")
        argv += ["--ro-bind", host, f"{SITE}/{rel}"]
    argv += ["--size", str(limits.tmp_size), "--perms", "1777", "--tmpfs", "/tmp", *_dirs("/home"),
             "--size", str(limits.tmp_size), "--perms", "0777", "--tmpfs", HOME, *files_args,
             "--perms", "1777", "--dir", "/tmp/matplotlib"]
    if mpl_writable is not None:
        argv += ["--bind", str(mpl_writable), "/tmp/matplotlib"]
    elif assets.mpl_cache is not None:
        for cache_file in sorted(assets.mpl_cache.glob("fontlist-*.json")):
            argv += ["--ro-bind", str(cache_file), f"/tmp/matplotlib/{cache_file.name}"]
    for key, value in _environment("/tmp/matplotlib").items():
        argv += ["--setenv", key, value]
    argv += ["--chdir", HOME]
    if uid is not None:
        argv += ["--cap-add", "CAP_SETUID,CAP_SETGID", "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}",
                 "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]
    return argv + _python_argv(command)


@dataclass
class Assets:
    """What every student process of one policy shares: the materialised site folder and the
    matplotlib font cache made for it (built once, then read-only)."""

    policy: Policy
    root: Path
    layout: SiteLayout
    mpl_cache: Path | None

    @classmethod
    def prepare(cls, policy: Policy, root: Path, sandboxed: bool) -> "Assets":
        layout = SiteLayout.for_policy(policy)
        key = hashlib.sha256(repr((policy, sorted(layout.entries.items()), sandboxed)).encode()).hexdigest()[:16]
        where = Path(root) / key
        layout.materialise(where / "site")
        (where / "course").mkdir(exist_ok=True)
        (where / "course" / "__init__.py").write_text(COURSE_STANDIN)
        for path in (Path(root), where, where / "site", where / "course"):
            path.chmod(0o755)
        assets = cls(policy, where, layout, None)
        if "matplotlib" in layout.entries:
            assets.mpl_cache = assets._font_cache(sandboxed)
        return assets

    def _font_cache(self, sandboxed: bool) -> Path | None:
        """Build matplotlib's font list once, in a process like the students' (same paths)."""
        cache = self.root / "matplotlib"
        if not any(cache.glob("fontlist-*.json")):
            cache.mkdir(exist_ok=True)
            cache.chmod(0o777)
            launch = start(self, Limits(cpu_per_request=120, cpu_total=300), sandboxed=sandboxed,
                           command=["-c", "import matplotlib.font_manager"], mpl_writable=cache)
            try:
                launch.proc.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                launch.proc.kill()
            finally:
                launch.cleanup()
        return cache if any(cache.glob("fontlist-*.json")) else None


STUDENT_COMMAND = ["-m", "student_side"]


def start(assets: Assets, limits: Limits, *, sandboxed: bool, files: dict[str, bytes] | None = None,
          command: list[str] = STUDENT_COMMAND, mpl_writable: Path | None = None) -> Launch:
    """Start ``python -m student_side`` for ``assets.policy``; the channel is its stdin/stdout.
    ``files`` (name -> bytes) are put in its home folder."""
    scratch = Path(tempfile.mkdtemp(prefix="course-student-"))
    scratch.chmod(0o755)
    log_path = scratch / "process.log"
    slot, fds = None, []
    try:
        if sandboxed:
            if bubblewrap() is None:
                raise SandboxError("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
            files_args, fds = _home_files_args(files or {}, scratch)
            slot = UidSlot() if os.geteuid() == 0 else None
            argv = _bwrap_argv(assets, slot and slot.uid, limits, files_args, command, mpl_writable)
            env, cwd = {}, "/"
        else:
            argv, env, cwd = _plain_argv(assets, scratch, files or {}, command, mpl_writable)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                    env=env, cwd=cwd, pass_fds=fds, preexec_fn=_limit(limits, sandboxed))
    except BaseException:
        if slot is not None:
            slot.release()
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        for fd in fds:
            os.close(fd)
    return Launch(proc, sandboxed, scratch, log_path, slot)


def _plain_argv(assets: Assets, scratch: Path, files: dict[str, bytes], command: list[str],
                mpl_writable: Path | None):
    """Without a sandbox: the same interpreter options, path and environment, in a scratch home."""
    home = scratch / "home"
    home.mkdir()
    for name, data in files.items():
        rel = Path(name)
        if not rel.is_absolute() and ".." not in rel.parts:
            (home / rel).parent.mkdir(parents=True, exist_ok=True)
            (home / rel).write_bytes(data)
    opt = scratch / "opt"
    opt.mkdir()
    (opt / "student_side").symlink_to(STUDENT_SIDE)
    (opt / "course").symlink_to(assets.root / "course")
    mpl = mpl_writable or scratch / "matplotlib"
    if mpl_writable is None:
        mpl.mkdir()
        for cache_file in (assets.mpl_cache.glob("fontlist-*.json") if assets.mpl_cache else []):
            shutil.copy(cache_file, mpl)
    env = _environment(str(mpl))
    env.update(HOME=str(home), TMPDIR=str(scratch), PYTHONPATH=f"{opt}:{assets.root / 'site'}",
               PATH=os.environ.get("PATH", "/usr/bin:/bin"))
    return _python_argv(command), env, str(home)
