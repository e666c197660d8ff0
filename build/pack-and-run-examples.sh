#!/usr/bin/env bash
# Packs the solution into artifacts/packages, then uses the packages as a consumer would:
#   1. builds and runs every examples/*/*.csproj against the packed Ddvi (examples/nuget.config), restoring into
#      artifacts/examples-packages, whose copies of our own packages are removed first, so a re-pack of the same version
#      is always the one used (never a stale copy from a NuGet cache);
#   2. installs the `ddvi` tool from the packed folder into a temporary --tool-path and runs `ddvi --help`,
#      `ddvi train --help` and one short training run (which loads libtorch).
# Any failure exits non-zero. Run from anywhere: bash build/pack-and-run-examples.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

packages=$root/artifacts/packages
consumer_cache=$root/artifacts/examples-packages
start=$SECONDS
step() { echo "== pack-and-run-examples [$((SECONDS - start)) s]: $*"; }

version=$(dotnet msbuild src/Ddvi/Ddvi.csproj -getProperty:Version)
step "packing version $version into artifacts/packages"
rm -rf "$packages"
dotnet pack Ddvi.slnx -c Release -o "$packages" -v quiet -nologo
for id in Ddvi Ddvi.Experiments Ddvi.Cli Ddvi.Cli.linux-x64; do
  [ -f "$packages/$id.$version.nupkg" ] || { echo "missing package $id.$version.nupkg" >&2; exit 1; }
done
if ls "$packages" | grep -qi tests; then echo "the test project was packed" >&2; exit 1; fi
ls -l "$packages"

# Our own packages only: everything else in the consumers' packages folder is kept between runs.
mkdir -p "$consumer_cache"
rm -rf "$consumer_cache"/ddvi "$consumer_cache"/ddvi.*
export NUGET_PACKAGES=$consumer_cache

# True when the ELF library $1 has its GLIBCXX_3.4.32 version need marked weak (needs binutils' readelf).
marked_weak() { [[ "$(readelf -V "$1")" =~ GLIBCXX_3\.4\.32\ +Flags:\ WEAK ]]; }

shopt -s nullglob
examples=(examples/*/*.csproj)
[ "${#examples[@]}" -gt 0 ] || { echo "no example projects under examples/" >&2; exit 1; }
for project in "${examples[@]}"; do
  step "building $project"
  dotnet build "$project" -c Release -v quiet -nologo --property:DdviVersion="$version"
  step "running $project"
  dotnet run --project "$project" -c Release --no-build
done

# The step patches the consumer's output folder, never the NuGet cache (checked where binutils is installed).
if command -v readelf >/dev/null; then
  cached=$consumer_cache/torchsharp/0.107.0/runtimes/linux-x64/native/libLibTorchSharp.so
  if [ -f "$cached" ] && marked_weak "$cached"; then
    echo "the NuGet cache's libLibTorchSharp.so was modified: $cached" >&2; exit 1
  fi
fi

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
step "installing the tool Ddvi.Cli $version into a temporary --tool-path"
dotnet tool install Ddvi.Cli --version "$version" --tool-path "$tools" --add-source "$packages"
# The library inside the tool package must be the patched copy: it runs where no build step does.
if command -v readelf >/dev/null; then
  installed=$(find "$tools/.store" -name libLibTorchSharp.so | head -n 1)
  [ -n "$installed" ] || { echo "libLibTorchSharp.so not found in the installed tool" >&2; exit 1; }
  marked_weak "$installed" || { echo "the tool's libLibTorchSharp.so does not have GLIBCXX_3.4.32 marked weak: $installed" >&2; exit 1; }
fi
step "ddvi --help"
"$tools/ddvi" --help >/dev/null
step "ddvi train --help"
"$tools/ddvi" train --help >/dev/null
step "ddvi train (a short VAE run, to load libtorch from the installed tool)"
"$tools/ddvi" train --model vae --epochs 1 --threads 1 --out "$tools/run" >/dev/null
[ -f "$tools/run/metrics.json" ] || { echo "ddvi train wrote no metrics.json" >&2; exit 1; }
step "done"
