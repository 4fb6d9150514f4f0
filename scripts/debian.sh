# Sourced by scripts/services.sh and scripts/test.sh: the tools Freshet needs from Debian's packages.
#   debian_provide WHAT BINARY:PACKAGE...
# Each BINARY missing from PATH needs its PACKAGE. When some are missing: as root with apt-get (and
# FRESHET_NO_INSTALL unset), installs them; otherwise stops with the one command that does it.
# The caller defines say/die (its own prefix); FRESHET_APT_LOG is where apt's output goes. The
# command it stops with also names the missing packages of DEBIAN_ALSO (BINARY:PACKAGE words), so
# one command readies the machine for everything the caller will need.

debian_missing() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 && continue
    case " ${missing[*]-} " in *" ${pair#*:} "*) ;; *) missing+=("${pair#*:}") ;; esac
  done
  echo "${missing[*]-}"
}

debian_provide() {
  local what=$1
  shift
  local packages
  packages=$(debian_missing "$@")
  [ -n "$packages" ] || return 0
  if [ "${FRESHET_NO_INSTALL:-}" = 1 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    packages=$(debian_missing "$@" ${DEBIAN_ALSO-})
    die "$what is not installed: run  sudo apt-get update && sudo apt-get install -y $packages  (then run this again)"
  fi
  local log="${FRESHET_APT_LOG:-${TMPDIR:-/tmp}/freshet-apt.log}"
  mkdir -p "$(dirname "$log")"
  say "installing Debian's $packages for $what (output in $log)"
  # shellcheck disable=SC2086 # one word per package
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages; } >"$log" 2>&1 \
    || die "apt-get install -y $packages failed (see $log)"
  [ -z "$(debian_missing "$@")" ] || die "$what is still missing after apt-get install -y $packages (see $log)"
}
