# shellcheck shell=bash
# Set up and activate the project's virtual environment.
#
#   source activate.sh
#
# Creates .venv (python3.11, else python3) if missing, installs the pinned,
# hash-checked dependencies from requirements.lock plus the package itself
# (editable), and activates .venv. The install is skipped when
# requirements.lock, pyproject.toml and the interpreter are unchanged since
# the last successful install. Safe to source from scripts running with
# `set -euo pipefail` and from interactive shells (it never exits the shell).

if [ -z "${BASH_VERSION:-}" ]; then
    echo "[activate] activate.sh needs bash" >&2
    return 1 2>/dev/null || exit 1
fi
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    echo "[activate] source this file instead of running it: source activate.sh" >&2
    exit 1
fi

# Last lines of a pip log, without the noise that unreachable extra indexes
# configured on some machines produce.
_artifex_show_log() {
    grep -v -e 'is ignored: it is neither a file nor a directory' "$1" | tail -n 40 >&2 || true
}

_artifex_activate() {
    local root venv py stamp want have pyver log
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" || return 1
    venv="$root/.venv"
    stamp="$venv/.artifex-install-stamp"
    log="$venv/.artifex-pip.log"

    if [ ! -x "$venv/bin/python" ]; then
        if command -v python3.11 >/dev/null 2>&1; then
            py=python3.11
        elif command -v python3 >/dev/null 2>&1; then
            py=python3
        else
            echo "[activate] error: neither python3.11 nor python3 found" >&2
            return 1
        fi
        echo "[activate] creating .venv with $py ($("$py" -V 2>&1))"
        "$py" -m venv "$venv" || { echo "[activate] error: venv creation failed" >&2; return 1; }
    fi

    pyver="$("$venv/bin/python" -c 'import sys; print(sys.version)')" || {
        echo "[activate] error: $venv/bin/python does not run; delete .venv and retry" >&2
        return 1
    }
    want="$(cat "$root/requirements.lock" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1) $pyver"
    have=""
    if [ -f "$stamp" ]; then
        have="$(cat "$stamp")"
    fi

    if [ "$want" != "$have" ]; then
        echo "[activate] installing requirements.lock into .venv (first run takes a few minutes)"
        if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
            "$venv/bin/python" -m ensurepip --upgrade >/dev/null || {
                echo "[activate] error: pip is missing in .venv" >&2
                return 1
            }
        fi
        rm -f "$stamp"
        if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            --require-hashes -r "$root/requirements.lock" >"$log" 2>&1; then
            _artifex_show_log "$log"
            echo "[activate] error: installing requirements.lock failed (log: $log)" >&2
            return 1
        fi
        echo "[activate] installing artifex (editable)"
        if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            --no-deps -e "$root" >"$log" 2>&1; then
            _artifex_show_log "$log"
            echo "[activate] error: installing the package failed (log: $log)" >&2
            return 1
        fi
        printf '%s\n' "$want" >"$stamp" || return 1
        echo "[activate] install done"
    else
        echo "[activate] .venv up to date"
    fi

    # shellcheck disable=SC1091
    . "$venv/bin/activate" || return 1
    echo "[activate] using $(python -V 2>&1) from .venv"
}

_artifex_activate
_artifex_activate_rc=$?
unset -f _artifex_activate _artifex_show_log
if [ "$_artifex_activate_rc" -ne 0 ]; then
    unset _artifex_activate_rc
    return 1
fi
unset _artifex_activate_rc
