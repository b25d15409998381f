#!/usr/bin/env bash
# Run the whole test suite on the newest dependency versions pyproject.toml allows, in a throwaway virtual
# environment, and say what broke. Raising a cap (pyproject's "<N" bounds) is one command:
#
#   tools/check_deps.sh            newest versions within the caps (what a fresh install gets today)
#   tools/check_deps.sh --lift     the caps lifted: the newest releases of every dependency, even a new major
#   tools/check_deps.sh --lift -- tests/test_ui_app.py      extra arguments go to pytest
#
# It prints the versions it resolved (marking any beyond a cap), the suite's summary line and, on failures,
# the failing tests. Exit status: pytest's. PYTHON=/path/to/python3 picks the interpreter (default: Debian's
# /usr/bin/python3 when present, else python3 on PATH). KEEP=1 keeps the venv and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
lift=0
if [ "${1:-}" = "--lift" ]; then lift=1; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x /usr/bin/python3 ]; then py=/usr/bin/python3; else py=python3; fi
fi
venv="$(mktemp -d "${TMPDIR:-/tmp}/liqmap-deps.XXXXXX")"
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "venv kept: $venv"; else rm -rf "$venv"; fi; }
trap cleanup EXIT
"$py" -m venv "$venv"
vpy="$venv/bin/python"
echo "== interpreter: $("$vpy" -c 'import sys; print(sys.version.split()[0], sys.base_prefix)')"
"$vpy" -m pip install -q --upgrade pip >/dev/null 2>&1 || true  # a newer pip resolves better; optional

# The requirements, as pyproject.toml states them or with the "<N" caps removed (--lift).
reqs="$("$vpy" - "$lift" <<'EOF'
import sys, tomllib
lift = sys.argv[1] == "1"
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
for r in p["dependencies"] + p["optional-dependencies"]["test"]:
    if lift:  # "textual>=0.80,<9" -> "textual>=0.80" (an exact pin such as cryptofeed==2.4.1 stays)
        r = ",".join(c for c in r.split(",") if not c.strip().startswith("<"))
    print(r)
EOF
)"
if [ "$lift" = 1 ]; then
  echo "== caps lifted: the newest release of every dependency"
  # The project without its own requirements, then the uncapped list, upgraded to the newest.
  printf '%s\n' "$reqs" > "$venv/requirements.txt"
  install=(bash -c "'$vpy' -m pip install --no-deps -e . && '$vpy' -m pip install --upgrade -r '$venv/requirements.txt'")
else
  echo "== newest versions within pyproject's caps"
  install=("$vpy" -m pip install --upgrade -e ".[test]")
fi
if ! "${install[@]}" > "$venv/pip.log" 2>&1; then  # pip's output only when it failed
  tail -n 30 "$venv/pip.log"
  echo "== the install failed"
  exit 3
fi

# What was resolved, against the caps in pyproject.toml.
"$vpy" - <<'EOF'
import tomllib
from importlib.metadata import version
from packaging.requirements import Requirement
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
beyond = []
for r in p["dependencies"] + p["optional-dependencies"]["test"]:
    req = Requirement(r.split("#")[0])
    v = version(req.name)
    ok = req.specifier.contains(v, prereleases=True)
    if not ok:
        beyond.append(req.name)
    print(f"   {req.name:16} {v:12} {'' if ok else 'BEYOND pyproject: ' + str(req.specifier)}")
if beyond:
    print(f"== beyond the caps: {', '.join(beyond)} (raise them in pyproject.toml if the suite passes)")
EOF

echo "== test suite"
set +e
"$vpy" -m pytest -q -p no:cacheprovider "$@" > "$venv/pytest.log" 2>&1
rc=$?
set -e
grep -E '^(FAILED|ERROR) ' "$venv/pytest.log" || true
tail -n 1 "$venv/pytest.log"
if [ "$rc" != 0 ]; then
  echo "== broken (exit $rc): the first error in full"
  sed -n '/^=* FAILURES =*$/,$p' "$venv/pytest.log" | head -n 60
fi
exit "$rc"
