#!/usr/bin/env bash
# Create or refresh everything the course needs, quickly when it is already there.
#   tools/setup.sh           the Python environment (.venv), the offline JS bundles and Debian's
#                            r-cran-janeaustenr (Jane Austen's novels, chapter 11; needs root or sudo)
#   tools/setup.sh test      also Debian's Chromium (browser tests) and bubblewrap (grading sandbox; needs root)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

# 1. The virtual environment; re-installed only when requirements.txt or pyproject.toml change.
stamp=.venv/.installed
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python packages (first time: a few minutes)"
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  touch "$stamp"
fi

# 2. The JavaScript the rendered pages serve themselves (widgets, MathJax): no CDN at read time.
tools/fetch_static.sh

# 3. Jane Austen's novels, the running text of chapter 11 and exercise 11: the data of the R package
#    janeaustenr (MIT licence; the texts are in the public domain), as Debian packages it;
#    rnnkit.data.austen_novels() reads it without R.
austen=/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb
if [ ! -f "$austen" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || { sudo -n true 2>/dev/null && sudo="sudo -n"; }
  if { [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; } && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's r-cran-janeaustenr (Jane Austen's novels, for chapter 11)"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends r-cran-janeaustenr >/dev/null
  fi
  if [ ! -f "$austen" ]; then
    echo "setup: Jane Austen's novels are missing: expected $austen from Debian's package" >&2
    echo "       r-cran-janeaustenr, and this user can neither apt-get install it nor use sudo." >&2
    echo "       As root: apt-get install --no-install-recommends r-cran-janeaustenr" >&2
    exit 1
  fi
fi

# 4. For the tests: Debian's Chromium (browser tests) and bubblewrap (the grading sandbox).
if [ "${1:-}" = "test" ]; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v bwrap >/dev/null || missing+=(bubblewrap)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "setup: installing Debian's ${missing[*]} for the tests"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "setup: ${missing[*]} missing and this user cannot apt-get install them;"
      echo "       browser tests are skipped without chromium; grading tests FAIL without bubblewrap"
      echo "       (as root: apt-get install ${missing[*]})"
    fi
  fi
fi
