# shellcheck shell=bash
# Set up and activate the project's virtual environment.
#
#   source activate.sh                   # CPU: installs requirements.lock
#   ARTIFEX_CUDA=1 source activate.sh    # NVIDIA GPU: installs requirements-cuda.lock
#   source activate.sh --which-lock      # print the interpreter and lock it would use; no install
#
# Creates .venv with a Python 3.12+ interpreter (python3.12, python3.13 or python3 on PATH,
# then pyenv's installed versions), installs the pinned, hash-checked dependencies from the lock
# plus the package itself (editable), and activates .venv. The install is skipped when the lock,
# pyproject.toml and the interpreter are unchanged since the last successful install; a venv
# made with an older Python or for the other lock is made anew. Safe to source from scripts
# running with `set -euo pipefail` and from interactive shells (it never exits the shell).

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

# Whether "$1" runs and is Python 3.12 or newer (a pyenv shim for an inactive version fails).
_artifex_is_py312() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1
}

# The first Python 3.12+ found: on PATH, then among pyenv's installed versions (newest 3.12
# first, since the locks are resolved for 3.12).
_artifex_find_python() {
    local candidate
    for candidate in python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && _artifex_is_py312 "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    local version
    for version in 3.12 3.13; do
        for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$version".* 2>/dev/null |
            sort -V -r); do
            if [ -x "$candidate/bin/python3" ] && _artifex_is_py312 "$candidate/bin/python3"; then
                echo "$candidate/bin/python3"
                return 0
            fi
        done
    done
    return 1
}

_artifex_activate() {
    local root venv py stamp want have pyver log lock which_only=0
    [ "${1:-}" = "--which-lock" ] && which_only=1
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" || return 1
    venv="$root/.venv"
    stamp="$venv/.artifex-install-stamp"
    log="$venv/.artifex-pip.log"
    if [ -n "${ARTIFEX_CUDA:-}" ] && [ "${ARTIFEX_CUDA}" != "0" ]; then
        lock="requirements-cuda.lock"
    else
        lock="requirements.lock"
    fi

    if [ -x "$venv/bin/python" ] && ! _artifex_is_py312 "$venv/bin/python"; then
        echo "[activate] .venv has $("$venv/bin/python" -V 2>&1); artifex needs 3.12+: making it anew"
        rm -rf "$venv"
    fi
    if [ -x "$venv/bin/python" ]; then
        py="$venv/bin/python"
    elif ! py="$(_artifex_find_python)"; then
        echo "[activate] error: no Python 3.12 or 3.13 found on PATH or in pyenv" \
            "(${PYENV_ROOT:-$HOME/.pyenv}/versions)." >&2
        echo "[activate] Install one, e.g. 'pyenv install 3.12' or 'apt-get install python3.12" \
            "python3.12-venv', then source activate.sh again." >&2
        return 1
    fi
    if [ "$which_only" = 1 ]; then
        echo "python: $py ($("$py" -V 2>&1))"
        echo "lock: $lock"
        return 0
    fi

    if [ -f "$stamp" ] && [ "$(sed -n 2p "$stamp")" != "$lock" ]; then
        echo "[activate] .venv holds $(sed -n 2p "$stamp"); $lock asked for: making it anew"
        rm -rf "$venv"
        py="$(_artifex_find_python)" || return 1
    fi
    if [ ! -x "$venv/bin/python" ]; then
        echo "[activate] creating .venv with $py ($("$py" -V 2>&1))"
        "$py" -m venv "$venv" || {
            echo "[activate] error: venv creation failed (Debian/Ubuntu: apt-get install" \
                "python3.12-venv)" >&2
            return 1
        }
    fi

    pyver="$("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')" || {
        echo "[activate] error: $venv/bin/python does not run; delete .venv and retry" >&2
        return 1
    }
    want="$(cat "$root/$lock" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1) $pyver"
    want="$want"$'\n'"$lock"
    have=""
    if [ -f "$stamp" ]; then
        have="$(cat "$stamp")"
    fi

    if [ "$want" != "$have" ]; then
        echo "[activate] installing $lock into .venv (first run takes a few minutes)"
        if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
            "$venv/bin/python" -m ensurepip --upgrade >/dev/null || {
                echo "[activate] error: pip is missing in .venv" >&2
                return 1
            }
        fi
        rm -f "$stamp"
        if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            --require-hashes -r "$root/$lock" >"$log" 2>&1; then
            _artifex_show_log "$log"
            echo "[activate] error: installing $lock failed (log: $log)" >&2
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
        echo "[activate] install done: $lock"
    else
        echo "[activate] .venv up to date ($lock)"
    fi

    # shellcheck disable=SC1091
    . "$venv/bin/activate" || return 1
    echo "[activate] using Python $pyver from .venv with $lock"
}

_artifex_activate "$@"
_artifex_activate_rc=$?
unset -f _artifex_activate _artifex_show_log _artifex_find_python _artifex_is_py312
if [ "$_artifex_activate_rc" -ne 0 ]; then
    unset _artifex_activate_rc
    return 1
fi
unset _artifex_activate_rc
