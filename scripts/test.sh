#!/usr/bin/env bash
# Install what the test suite needs and run all checks: ruff, ruff format, mypy, pytest.
# Made for a fresh Debian machine as root (that is what CI runs); idempotent and quick to re-run.
# Extra arguments go to pytest, e.g. scripts/test.sh -k sqlite -x
# SECRETSD_UPDATE_SCREENSHOTS=1 also rewrites the console screenshots in docs/console/ (without
# it the browser tests write them to a temporary directory).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() { printf '\n===== %s =====\n' "$*"; }

have_initdb() {
    local dir
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        [[ -n "$dir" && -x "$dir/initdb" ]] && return 0
    fi
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" ]] && return 0
    done
    command -v initdb >/dev/null 2>&1
}

python_ok() {
    command -v python3 >/dev/null 2>&1 &&
        python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

apt_updated=0
apt_install() {
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "error: need to install $*, but this is not root on a Debian-like system;" \
            "install them yourself and re-run" >&2
        exit 1
    fi
    if [[ "$apt_updated" == 0 ]]; then
        apt-get update -q
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

section "system packages"
if ! python_ok; then
    apt_install python3 python3-venv
fi
python_ok || { echo "error: python3 >= 3.11 with venv is required" >&2; exit 1; }
if [[ -n "${SECRETSD_TEST_DATABASE_URL:-}" ]]; then
    echo "PostgreSQL: using SECRETSD_TEST_DATABASE_URL"
elif have_initdb; then
    echo "PostgreSQL server binaries: present"
else
    # The tests start their own throw-away cluster; no system-wide cluster should be created or
    # started, so switch that off before the server package is installed (as the official
    # postgres Docker image does).
    apt_install postgresql-common
    sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' \
        /etc/postgresql-common/createcluster.conf
    apt_install postgresql
    have_initdb || { echo "error: initdb still not found after installing postgresql" >&2; exit 1; }
fi

# The database failover test runs a Patroni cluster (etcd as its DCS) on loopback ports.
# Debian's packages would enable system services; the tests start their own processes only.
if command -v patroni >/dev/null 2>&1 && command -v etcd >/dev/null 2>&1; then
    echo "patroni and etcd: present"
else
    apt_install patroni python3-etcd etcd-server
fi

# The built-in MySQL rotators are tested against a throw-away MariaDB server the tests start
# (tests/support/mariadb.py); the package's own service is not used.
if [[ -x /usr/sbin/mariadbd ]] && command -v mariadb-install-db >/dev/null 2>&1; then
    echo "mariadb: present"
else
    apt_install mariadb-server
fi

# The console's browser tests drive Debian's chromium (Playwright never downloads a browser).
if command -v chromium >/dev/null 2>&1; then
    echo "chromium: present"
else
    apt_install chromium
fi

section "python environment (.venv)"
if ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
    rm -rf .venv
    python3 -m venv .venv
fi
# Reinstall only when the dependency spec changed (the package itself is installed editable).
stamp=.venv/.secretsd-test-deps
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]] || ! .venv/bin/python -c 'import secretsd' 2>/dev/null; then
    .venv/bin/python -m pip install --disable-pip-version-check -q -e '.[test]'
    echo "$want" >"$stamp"
else
    echo "up to date"
fi

# Missing PostgreSQL must fail the run here, not silently skip half of the tests.
export SECRETSD_TEST_REQUIRE_POSTGRES=1

failed=()
step() {
    local name="$1"
    shift
    section "$name"
    if "$@"; then
        echo "-> $name: ok"
    else
        echo "-> $name: FAILED"
        failed+=("$name")
    fi
}

step "ruff check" .venv/bin/ruff check .
step "ruff format --check" .venv/bin/ruff format --check .
step "mypy" .venv/bin/mypy
if ((${#failed[@]})); then
    printf '\nFAILED before the tests: %s\n' "${failed[*]}"
fi

# pytest runs last so its summary line closes the output; the exit status covers every step.
section "pytest"
status=0
# Two processes, one file each at a time: most time goes to real servers, browsers and database
# clusters, and tests of one file share their server fixtures.
.venv/bin/pytest -n "${SECRETSD_TEST_PROCESSES:-2}" --dist loadfile "$@" || status=$?
if ((${#failed[@]})) && ((status == 0)); then
    status=1
fi
exit "$status"
