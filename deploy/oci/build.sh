#!/usr/bin/env bash
# Build the stopgate server image without pulling any image: a Debian bookworm root filesystem made from
# Debian's packages by mmdebstrap, and the server installed from wheels of this checkout.
#
#   deploy/oci/build.sh [--tag NAME] [-- PODMAN-BUILD-OPTION...]    (`make image`)
#
# The default tag is localhost/stopgate:VERSION (client/stopgate/_version.py). Run it as root, or wherever
# podman builds.
#
# Needs mmdebstrap and podman (Debian: apt-get install mmdebstrap podman), the network to reach a Debian
# mirror and the Python package index, and a Python with pip to fetch the wheels (PYTHON, default
# .venv/bin/python, else python3). Settings, all optional:
#   DEBIAN_MIRROR   mirror URL for bookworm (default: mmdebstrap's, deb.debian.org, with -updates and
#                   -security)
#   BUILD_DIR       where the root filesystem is cached and the build context made (default .build/oci)
#
# The root filesystem is cached in BUILD_DIR for a week (it only changes with Debian's updates): delete it
# to take the latest. Wheels are fetched for the image's Python (bookworm's 3.11, glibc 2.36), whatever the
# Python running this script, at the versions installed in PYTHON's environment when it has them (the
# versions `make test` tested), else the newest the project's requirements allow.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."

tag=""
while [ $# -gt 0 ]; do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--tag NAME] [-- PODMAN-BUILD-OPTION...]" >&2; exit 2 ;;
  esac
done

for tool in mmdebstrap podman; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found (Debian: apt-get install $tool)" >&2; exit 1; }
done
python=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
build_dir=${BUILD_DIR:-.build/oci}
# The one version source (client/stopgate/_version.py), read without importing the package.
version=$("$python" -c 'import runpy; print(runpy.run_path("client/stopgate/_version.py")["__version__"])')
tag=${tag:-localhost/stopgate:$version}
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then revision="$revision-modified"; fi
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# The image's Python: Debian bookworm's python3.
suite=bookworm
python_version=3.11
glibc_minor=36

# The root filesystem: Debian's essential packages, Python, the C++ runtime grpcio's wheel links to and CA
# certificates (for TLS to PostgreSQL); merged /usr set up as debootstrap does, without the usrmerge package
# (and the Perl it pulls in); no manual pages, documentation (but copyrights) or translations.
rootfs_options=(
  --variant=essential
  --include=python3,python3-venv,ca-certificates,libstdc++6
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
)
mirrors=()
if [ -n "${DEBIAN_MIRROR:-}" ]; then
  mirrors=(
    "deb $DEBIAN_MIRROR $suite main"
    "deb $DEBIAN_MIRROR $suite-updates main"
    "deb ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} $suite-security main"
  )
fi
key=$(printf '%s\n' "$suite" "${rootfs_options[@]}" "${mirrors[@]}" | sha256sum | cut -c1-12)
rootfs=$build_dir/rootfs-$suite-$key.tar
mkdir -p "$build_dir"
if [ -n "$(find "$rootfs" -mtime -7 2>/dev/null)" ]; then
  echo "== root filesystem: $rootfs (cached; delete it to take Debian's latest updates)"
else
  echo "== root filesystem: mmdebstrap $suite into $rootfs"
  rm -f "$build_dir"/rootfs-*.tar
  if ! mmdebstrap --format=tar "${rootfs_options[@]}" "$suite" "$rootfs.partial" "${mirrors[@]}" \
    >"$build_dir/mmdebstrap.log" 2>&1; then
    rm -rf "$rootfs.partial"
    tail -n 30 "$build_dir/mmdebstrap.log" >&2
    echo "$0: mmdebstrap failed (whole log: $build_dir/mmdebstrap.log)" >&2
    exit 1
  fi
  mv "$rootfs.partial" "$rootfs"
fi

context=$build_dir/context
rm -rf "$context"
mkdir -p "$context/wheels"
cp deploy/oci/Containerfile "$context/"
ln "$rootfs" "$context/rootfs.tar" 2>/dev/null || cp "$rootfs" "$context/rootfs.tar"

echo "== wheels for CPython $python_version, glibc 2.$glibc_minor"
pip=("$python" -m pip --disable-pip-version-check --no-input)
"${pip[@]}" wheel --quiet --no-deps . --wheel-dir "$context/wheels"
# Direct references (NAME @ URL) cannot be constraints: those packages resolve freely.
"${pip[@]}" freeze --exclude-editable | { grep -v ' @ ' || true; } >"$context/constraints.txt"
arch=$(uname -m)
platforms=(--platform "manylinux2014_$arch")
for minor in $(seq 17 "$glibc_minor"); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
"${pip[@]}" download --quiet --only-binary=:all: --dest "$context/wheels" \
  --implementation cp --python-version "$python_version" \
  --abi "cp${python_version/./}" --abi abi3 --abi none \
  "${platforms[@]}" --constraint "$context/constraints.txt" "$context"/wheels/stopgate-*.whl

# RUN steps with chroot isolation: they need no cgroup rights (which a build inside a container or CI job
# often lacks), and the Containerfile's steps run only the image's own python3 and pip, offline.
echo "== podman build $tag"
podman build --isolation=chroot --file "$context/Containerfile" --tag "$tag" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg CREATED="$created" \
  "$@" "$context"
echo "built $tag"
