"""Generate the student release (exercises/) from the nbgrader sources (solutions/).

    python -m tools.release            regenerate exercises/ for every assignment
    python -m tools.release NAME ...   regenerate only these assignments
    python -m tools.release --check    exit 1 (and list files) when exercises/ is out of date

No gradebook is touched (--no-db); the output is byte-identical from run to run.
"""
from __future__ import annotations

import filecmp
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBGRADER = [sys.executable, "-m", "nbgrader"]


def generate(dest: Path, assignment: str = "*") -> None:
    """Run nbgrader's generate_assignment for one or all (``*``) assignments into ``dest``."""
    subprocess.run(
        NBGRADER + ["generate_assignment", assignment, "--force", "--no-db", "--log-level=WARN",
                    f"--CourseDirectory.release_directory={dest}"],
        cwd=ROOT, check=True,
    )


def differences(a: Path, b: Path) -> list[str]:
    """Relative paths that differ between two trees (missing on either side or changed)."""
    out = []
    cmp = filecmp.dircmp(a, b, ignore=[".ipynb_checkpoints", "__pycache__"])

    def walk(c, prefix=""):
        out.extend(prefix + n for n in c.left_only + c.right_only + c.diff_files + c.funny_files)
        for name, sub in c.subdirs.items():
            walk(sub, prefix + name + "/")

    walk(cmp)
    return sorted(out)


def main(argv: list[str]) -> int:
    if "--check" in argv:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            diff = differences(ROOT / "exercises", Path(tmp))
        for path in diff:
            print(f"exercises/{path} is not what nbgrader generates from solutions/")
        if diff:
            print("run `make exercises` to regenerate exercises/")
        return 1 if diff else 0
    for assignment in argv or ["*"]:
        generate(ROOT / "exercises", assignment)
    print("exercises/ regenerated from solutions/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
