#!/usr/bin/env bash
# Fetches stock Debian kernels for the VM test lab and unpacks them (never
# installs them) into ${PLUGCTL_LAB_CACHE:-$HOME/.cache/plugctl-lab}/<kver>/.
#
#   kernels.sh [6.1|6.12|all]   fetch+unpack (skip if already there), print
#                               "<series> <path-to-vmlinuz>" for each
#   kernels.sh --path 6.1       print only the vmlinuz path (fetches if needed)
#   kernels.sh --refresh ...    re-resolve the newest package even if a kernel
#                               of that series is already unpacked
#
# 6.1  = Debian 12 (bookworm) kernel, resolved from the system's apt sources
#        via the linux-image-amd64 metapackage.
# 6.12 = Debian 13 (trixie) kernel, resolved through a PRIVATE apt sources list
#        kept under the cache folder (the system's apt files are never touched;
#        the mirror URL is copied from the system's bookworm entry).
# Only the two linux-image-*-amd64 packages are downloaded; the .deb is deleted
# after unpacking. Progress goes to stderr, results to stdout.
set -euo pipefail

CACHE=${PLUGCTL_LAB_CACHE:-$HOME/.cache/plugctl-lab}
REFRESH=0
QUIET=0

log() { echo "kernels: $*" >&2; }
die() {
    echo "kernels: error: $*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# apt helpers

# Mirror URL of the system's Debian (non-security) bookworm entry, from
# one-line *.list files and deb822 *.sources files. Falls back to deb.debian.org.
system_mirror() {
    local f url=""
    local files=()
    [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] && files+=("$f")
    done
    for f in "${files[@]}"; do
        if [[ $f == *.sources ]]; then
            url=$(awk '
                function flush() {
                    if (uris != "" && enabled && suites ~ /(^| )bookworm( |$)/ && uris !~ /security/) {
                        split(uris, u, " "); print u[1]; found = 1; exit
                    }
                    uris = ""; suites = ""; enabled = 1
                }
                BEGIN { enabled = 1 }
                /^[ \t]*$/ { flush(); next }
                /^[ \t]*#/ { next }
                tolower($1) == "uris:"    { $1 = ""; uris = $0; sub(/^ +/, "", uris) }
                tolower($1) == "suites:"  { $1 = ""; suites = $0; sub(/^ +/, "", suites) }
                tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
                END { if (!found) flush() }
            ' "$f")
        else
            url=$(awk '
                $1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == "bookworm" && $i !~ /security/) { print $i; exit }
                }
            ' "$f")
        fi
        [[ -n $url ]] && break
    done
    echo "${url:-http://deb.debian.org/debian}"
}

TRIXIE_DIR="$CACHE/apt/trixie"
# Options that point apt at the private trixie list, lists dir and caches.
trixie_apt_opts() {
    printf '%s\n' \
        -o "Dir::Etc::sourcelist=$TRIXIE_DIR/sources.list" \
        -o "Dir::Etc::sourceparts=$TRIXIE_DIR/empty.d" \
        -o "Dir::State::Lists=$TRIXIE_DIR/lists" \
        -o "Dir::Cache=$TRIXIE_DIR/cache" \
        -o "Dir::Etc::preferences=$TRIXIE_DIR/empty.d/preferences" \
        -o "Dir::Etc::preferencesparts=$TRIXIE_DIR/empty.d" \
        -o "APT::Architecture=amd64" \
        -o "APT::Architectures=amd64"
}

trixie_update() {
    mkdir -p "$TRIXIE_DIR/lists/partial" "$TRIXIE_DIR/cache/archives/partial" "$TRIXIE_DIR/empty.d"
    local mirror
    mirror=$(system_mirror)
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" \
        >"$TRIXIE_DIR/sources.list.new"
    mv "$TRIXIE_DIR/sources.list.new" "$TRIXIE_DIR/sources.list"
    log "apt-get update (private trixie list, mirror $mirror)"
    local opts
    mapfile -t opts < <(trixie_apt_opts)
    apt-get "${opts[@]}" -o APT::Sandbox::User=root -qq update >&2 ||
        die "apt-get update of the private trixie list failed"
    touch "$TRIXIE_DIR/updated"
}

# Versioned package the metapackage linux-image-amd64 depends on.
# $1 = "system" or "trixie".
resolve_pkg() {
    local which=$1 opts=() name
    if [[ $which == trixie ]]; then
        mapfile -t opts < <(trixie_apt_opts)
    fi
    name=$(apt-cache "${opts[@]}" depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }') || true
    echo "$name"
}

apt_download() {
    local which=$1 pkg=$2 dir=$3 opts=()
    if [[ $which == trixie ]]; then
        mapfile -t opts < <(trixie_apt_opts)
    fi
    (cd "$dir" && apt-get "${opts[@]}" -o APT::Sandbox::User=root -qq download "$pkg" >&2)
}

# ---------------------------------------------------------------------------

# Series -> glob of the kernel release dirs in the cache.
series_glob() {
    case $1 in
        6.1) echo '6.1.0-*-amd64' ;;
        6.12) echo '6.12.*-amd64' ;;
        *) die "unknown kernel series '$1' (want 6.1 or 6.12)" ;;
    esac
}

# Newest already-unpacked vmlinuz of a series, or nothing.
cached_vmlinuz() {
    local glob d best=""
    glob=$(series_glob "$1")
    for d in "$CACHE"/$glob; do
        [[ -f $d/.unpacked ]] || continue
        best=$(printf '%s\n%s\n' "$best" "$d" | sed '/^$/d' | sort -V | tail -n1)
    done
    [[ -n $best ]] || return 0
    local k
    k=$(find "$best/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n1)
    [[ -n $k ]] && echo "$k"
    return 0
}

# Ensure the kernel of a series is unpacked; print its vmlinuz path.
ensure_kernel() {
    local series=$1 which pkg kver dest tmp deb k
    if ((!REFRESH)); then
        k=$(cached_vmlinuz "$series")
        if [[ -n $k ]]; then
            ((QUIET)) || log "$series: already unpacked"
            echo "$k"
            return 0
        fi
    fi
    case $series in
        6.1) which=system ;;
        6.12) which=trixie ;;
        *) die "unknown kernel series '$series'" ;;
    esac

    # One fetch at a time (parallel run.sh calls on an empty cache).
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    flock 9
    if ((!REFRESH)); then
        k=$(cached_vmlinuz "$series")
        if [[ -n $k ]]; then
            echo "$k"
            return 0
        fi
    fi

    if [[ $which == trixie ]]; then
        if [[ ! -f $TRIXIE_DIR/updated ]] || ((REFRESH)); then
            trixie_update
        fi
    fi
    pkg=$(resolve_pkg "$which")
    if [[ -z $pkg ]]; then
        log "$series: linux-image-amd64 unknown to apt, running apt-get update"
        if [[ $which == trixie ]]; then trixie_update; else apt-get -qq update >&2; fi
        pkg=$(resolve_pkg "$which")
    fi
    [[ -n $pkg ]] || die "$series: cannot resolve linux-image-amd64 to a versioned package"
    kver=${pkg#linux-image-}
    case $series in
        6.1) [[ $kver == 6.1.0-*-amd64 ]] || die "6.1: metapackage points at $pkg (not a 6.1 kernel)" ;;
        6.12) [[ $kver == 6.12.*-amd64 ]] || die "6.12: metapackage points at $pkg (not a 6.12 kernel)" ;;
    esac

    dest="$CACHE/$kver"
    if [[ ! -f $dest/.unpacked ]]; then
        mkdir -p "$CACHE"
        tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
        log "$series: downloading $pkg"
        if ! apt_download "$which" "$pkg" "$tmp"; then
            # Stale lists can name a version the mirror no longer has.
            log "$series: download failed, refreshing apt lists and retrying"
            if [[ $which == trixie ]]; then trixie_update; else apt-get -qq update >&2; fi
            pkg=$(resolve_pkg "$which")
            kver=${pkg#linux-image-}
            dest="$CACHE/$kver"
            apt_download "$which" "$pkg" "$tmp" || {
                rm -rf "$tmp"
                die "$series: apt-get download $pkg failed"
            }
        fi
        deb=$(find "$tmp" -maxdepth 1 -name '*.deb' | head -n1)
        [[ -n $deb ]] || die "$series: no .deb downloaded"
        log "$series: unpacking $(basename "$deb") into $dest"
        rm -rf "$dest"
        mkdir -p "$tmp/root"
        dpkg-deb -x "$deb" "$tmp/root"
        rm -f "$deb"
        mv "$tmp/root" "$dest"
        rm -rf "$tmp"
        touch "$dest/.unpacked"
    fi
    k="$dest/boot/vmlinuz-$kver"
    [[ -f $k ]] || die "$series: $k missing after unpack"
    echo "$k"
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

main() {
    local path_only=0 args=()
    while (($#)); do
        case $1 in
            --path) path_only=1 QUIET=1 ;;
            --refresh) REFRESH=1 ;;
            -h | --help) usage 0 ;;
            -*) usage ;;
            *) args+=("$1") ;;
        esac
        shift
    done
    if ((path_only)); then
        ((${#args[@]} == 1)) || die "--path takes exactly one series (6.1 or 6.12)"
        [[ ${args[0]} != all ]] || die "--path takes one series, not 'all'"
        ensure_kernel "${args[0]}"
        return
    fi
    ((${#args[@]})) || args=(all)
    local series list=()
    for series in "${args[@]}"; do
        case $series in
            all) list+=(6.1 6.12) ;;
            6.1 | 6.12) list+=("$series") ;;
            *) die "unknown kernel series '$series' (want 6.1, 6.12 or all)" ;;
        esac
    done
    local k
    for series in "${list[@]}"; do
        k=$(ensure_kernel "$series")
        echo "$series $k"
    done
}

main "$@"
