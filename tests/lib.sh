# Shared by the shell tests (tests/*.sh): checks, running a command with its exit status kept,
# the shared test data, and the summary line "N passed, N failed" that CI reads.
#   source "$(dirname "$0")/lib.sh"
#   begin_test "$1"              # $vkft, a scratch folder $work (removed at exit), cwd = the repo
#   run "$vkft" train ...        # $out: stdout+stderr, $rc: the exit status (captured first)
#   check "what" test $rc -eq 0   # a check that can fail
#   finish                        # the summary; the script's exit status
passed=0
failed=0
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

begin_test() { # begin_test PATH-TO-VKFT
  vkft=$(realpath "$1")
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cd "$src" || exit 1
}

check() { # check "what" command...
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what"; fi
}

# run COMMAND...: $out gets stdout and stderr, $rc the exit status
run() {
  out=$("$@" 2>&1)
  rc=$?
}

# The exit statuses of src/cli/commands.h (README, "Exit codes").
EXIT_INPUT=1 EXIT_USAGE=2 EXIT_IO=3 EXIT_MEMORY=4 EXIT_DEVICE=5 EXIT_UNSUPPORTED=6
EXIT_DIVERGED=7 EXIT_BUSY=8 EXIT_INTERRUPTED=130

# The shared test data: $VKFT_TEST_DATA or ../shared/data next to the repository.
test_data=${VKFT_TEST_DATA:-$src/../shared/data}
# need_data WHAT: 0 when the data is there; else "SKIP WHAT: why" (a failure under CI=true)
need_data() {
  [ -d "$test_data" ] && return 0
  if [ "${CI:-}" = true ]; then
    failed=$((failed + 1))
    echo "FAIL: $1: the shared test data $test_data is missing (CI=true)"
  else
    echo "SKIP $1: the shared test data $test_data is missing (set VKFT_TEST_DATA)"
  fi
  return 1
}

# last_json_field FILE KEY: the value of "KEY" in the last line of FILE that has it
json_field() { grep -o "\"$2\": [^,}]*" "$1" | tail -1 | cut -d' ' -f2; }

finish() {
  echo "$passed passed, $failed failed"
  test $failed -eq 0
}

# Headless chromium for pages vkft writes (Debian's chromium, installed by scripts/setup.sh test).
# need_browser: 0 when it is there; else SKIP (a failed check under CI=true) and 1.
need_browser() {
  command -v chromium >/dev/null && return 0
  if [ "${CI:-}" = true ]; then check "chromium is installed (scripts/setup.sh test)" false; else
    echo "SKIP the browser checks: chromium is not installed (scripts/setup.sh test)"; fi
  return 1
}
browser() { # browser ARGS... URL: headless chromium with its own profile and no network
  local profile
  profile=$(mktemp -d)
  timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" "$@" 2>/dev/null
  rm -rf "$profile"
}
