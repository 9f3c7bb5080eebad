# Node 22 LTS for CI, sourced by .ci/run (or alone: `source .ci/node.sh`).
#
# When the machine's node is not a Node 22 >= NODE_MIN (Debian bookworm ships 18; Node 20
# reached end of life in April 2026; a newer major such as 24 is not what the image ships),
# install the official Node binary from the npm registry, put it first on PATH and point native
# addon builds at the headers that ship in the same package. Only the npm registry is used:
# nodejs.org is not assumed reachable. The package holds node alone: npm stays the machine's
# (hence `npm ci --ignore-scripts` in .ci/run).
#
# Trust: the tarball is accepted only when its sha512 equals the integrity pinned below (the
# registry's own integrity check runs too, but the pin is what this repository vouches for);
# the hash is taken of the very file that is unpacked.
# Idempotent: the unpacked tree is cached under $TOKENWATCH_CI_CACHE (default /opt/tokenwatch-ci)
# and reused when its `node --version` matches; a second run costs one `node --version`.

NODE_MIN=22.15.0
# The tested major: the Docker image's (node:22-bookworm-slim).
NODE_MAJOR=22
NODE_VERSION=22.23.5
declare -A NODE_INTEGRITY=(
  [x64]='sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw=='
  [arm64]='sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg=='
)

# True when $1 is a version >= $2 (both x.y.z).
ci_version_ge() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

# True when the node on PATH is Node $NODE_MAJOR at or above $NODE_MIN.
ci_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  local v
  v="$(node -p 'process.versions.node' 2>/dev/null)" || return 1
  [ "${v%%.*}" = "$NODE_MAJOR" ] && ci_version_ge "$v" "$NODE_MIN"
}

ci_install_node() {
  if ci_node_ok; then
    echo "ci: node $(node --version) is Node $NODE_MAJOR >= $NODE_MIN"
    return 0
  fi
  if command -v node >/dev/null 2>&1; then
    echo "ci: the machine's node $(node --version 2>/dev/null) is not Node $NODE_MAJOR >= $NODE_MIN"
  fi
  local arch
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *)
      echo "ci: no Node $NODE_VERSION package for $(uname -m)" >&2
      return 1
      ;;
  esac
  local cache="${TOKENWATCH_CI_CACHE:-/opt/tokenwatch-ci}"
  local dir="$cache/node-v$NODE_VERSION-linux-$arch"
  if [ ! -x "$dir/bin/node" ] || [ "$("$dir/bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
    # npm is needed only to fetch the package; Debian's npm (on its Node 18) is enough for that.
    if ! command -v npm >/dev/null 2>&1; then
      echo "ci: installing npm to fetch Node $NODE_VERSION"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm
    fi
    echo "ci: installing Node $NODE_VERSION ($arch) from the npm registry into $dir"
    mkdir -p "$cache"
    local tmp
    tmp="$(mktemp -d "$cache/.node-XXXXXX")"
    (cd "$tmp" && npm pack "node-linux-$arch@$NODE_VERSION" --ignore-scripts --silent >/dev/null)
    local file="$tmp/node-linux-$arch-$NODE_VERSION.tgz" got
    got="sha512-$(openssl dgst -sha512 -binary "$file" | openssl base64 -A)"
    if [ "$got" != "${NODE_INTEGRITY[$arch]}" ]; then
      echo "ci: node-linux-$arch@$NODE_VERSION has integrity $got, not the pinned one" >&2
      rm -rf "$tmp"
      return 1
    fi
    tar -xzf "$file" -C "$tmp"
    rm -rf "$dir"
    # The rename makes the cache entry appear whole or not at all (a killed run leaves a tmp dir).
    mv "$tmp/package" "$dir"
    rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH"
  hash -r
  # The package carries include/node (node.h, common.gypi, ...): node-gyp builds native addons
  # against it instead of downloading headers from nodejs.org.
  export npm_config_nodedir="$dir"
  echo "ci: using node $(node --version) from $dir"
}
