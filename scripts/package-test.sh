#!/usr/bin/env bash
# Packaging test: what a user of the packages gets, checked from outside the repository.
#   1. packs Naani, Naani.Vision, Naani.Onnx, Naani.Keras, Naani.Serving, Naani.Distributed and the Naani.Cli tool into a temporary folder feed;
#   2. creates a fresh console app that takes Naani* from that feed only (package source mapping) and everything
#      else from the machine's own NuGet sources, adds Naani and Naani.Vision, trains a tiny CNN, saves, loads and
#      predicts with it, and writes a PNG of its kernels with Naani.Vision;
#   3. installs the naani tool from the feed into a temporary folder and runs `naani summary -m mnist-baseline` and
#      `naani kernels` (which draws with SkiaSharp's native library).
# The app and the tool restore into a fresh packages folder (so no Naani of the same version cached by an earlier
# run can stand in for the one just packed); the machine's packages folder is a fallback for the rest, read only.
# Usage: scripts/package-test.sh [--keep]     (--keep leaves the temporary folder and prints its path)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
keep=false; [ "${1:-}" = "--keep" ] && keep=true
work="$(mktemp -d -t naani-package-test.XXXXXX)"
if $keep; then echo "working in $work"; else trap 'rm -rf "$work"' EXIT; fi
start=$SECONDS
fail() { echo "package test: FAIL: $*" >&2; exit 1; }
step() { echo "[$((SECONDS - start))s] $*"; }
# run LOG COMMAND...: runs the command with its output in $work/LOG, shown only when it fails.
run() { local log="$work/$1" rc=0; shift; "$@" >"$log" 2>&1 || rc=$?; [ "$rc" -eq 0 ] || { tail -40 "$log" >&2; fail "$* (exit $rc, log above)"; }; }

version="$(dotnet msbuild "$repo/src/Naani/Naani.csproj" -getProperty:Version -nologo)"
[ -n "$version" ] || fail "could not read the version from src/Naani/Naani.csproj"
feed="$work/feed"

step "packing version $version into $feed"
for project in Naani Naani.Vision Naani.Onnx Naani.Keras Naani.Serving Naani.Distributed Naani.Cli; do
    run pack-$project.log dotnet pack "$repo/src/$project/$project.csproj" -c Release -o "$feed" -nologo
done
echo "  package                         nupkg       snupkg"
for project in Naani Naani.Vision Naani.Onnx Naani.Keras Naani.Serving Naani.Distributed Naani.Cli; do
    nupkg="$feed/$project.$version.nupkg"; snupkg="$feed/$project.$version.snupkg"
    [ -f "$nupkg" ] || fail "$nupkg was not made"
    [ -f "$snupkg" ] || fail "$snupkg (symbols) was not made"
    printf "  %-28s %10s %10s\n" "$project.$version" "$(numfmt --to=iec --suffix=B "$(stat -c %s "$nupkg")")" \
        "$(numfmt --to=iec --suffix=B "$(stat -c %s "$snupkg")")"
done
for project in Naani Naani.Vision Naani.Onnx Naani.Keras Naani.Serving Naani.Distributed; do
    listing="$(unzip -l "$feed/$project.$version.nupkg")"
    for f in "lib/net10.0/$project.dll" "lib/net10.0/$project.xml" PACKAGE.md; do
        grep -q " $f\$" <<<"$listing" || fail "$project.$version.nupkg lacks $f"
    done
    nuspec="$(unzip -p "$feed/$project.$version.nupkg" "$project.nuspec")"
    for tag in '<license type="expression">MIT</license>' '<readme>PACKAGE.md</readme>' '<authors>Naani contributors</authors>' '<description>'; do
        grep -qF "$tag" <<<"$nuspec" || fail "$project.nuspec lacks $tag"
    done
done

# The machine's enabled NuGet sources serve everything but Naani*.
mapfile -t upstream < <(dotnet nuget list source --format short | awk '$1 ~ /^E/ {print $2}')
[ "${#upstream[@]}" -gt 0 ] || fail "no enabled NuGet source on this machine (dotnet nuget list source)"
fallback="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
app="$work/app"
mkdir -p "$app"
{
    echo '<?xml version="1.0" encoding="utf-8"?>'
    echo '<configuration>'
    echo "  <config><add key=\"globalPackagesFolder\" value=\"$work/packages\" /></config>"
    [ -d "$fallback" ] && echo "  <fallbackPackageFolders><clear /><add key=\"machine\" value=\"$fallback\" /></fallbackPackageFolders>"
    echo '  <packageSources>'
    echo '    <clear />'
    echo "    <add key=\"naani-local\" value=\"$feed\" />"
    for i in "${!upstream[@]}"; do echo "    <add key=\"upstream$i\" value=\"${upstream[$i]}\" />"; done
    echo '  </packageSources>'
    echo '  <packageSourceMapping>'
    echo '    <packageSource key="naani-local"><package pattern="Naani" /><package pattern="Naani.*" /></packageSource>'
    for i in "${!upstream[@]}"; do echo "    <packageSource key=\"upstream$i\"><package pattern=\"*\" /></packageSource>"; done
    echo '  </packageSourceMapping>'
    echo '</configuration>'
} >"$work/nuget.config"
# No Naani of this version may come from the fallback folder: it would not be the one just packed.
for id in naani naani.vision naani.cli; do
    [ ! -d "$fallback/$id/$version" ] || fail "$fallback/$id/$version exists (a cached Naani $version); remove it so the test uses the packages just made"
done

step "creating a console app that uses Naani and Naani.Vision $version from the feed"
cp "$work/nuget.config" "$app/nuget.config"
run new.log dotnet new console -o "$app" -n PackageTestApp --framework net10.0 --force
run add-naani.log dotnet add "$app/PackageTestApp.csproj" package Naani --version "$version"
run add-vision.log dotnet add "$app/PackageTestApp.csproj" package Naani.Vision --version "$version"
cat >"$app/Program.cs" <<'EOF'
using Naani;
using Naani.Layers;
using Naani.Models;
using Naani.Vision;

// Two classes of 8x8 images: a bright top half, or a bright bottom half (with noise).
var random = new Random(1);
int n = 256;
var x = new Tensor(n, 8, 8, 1);
var y = new Tensor(n);
for (int s = 0; s < n; s++)
{
    y[s] = s % 2;
    for (int i = 0; i < 64; i++)
        x.Data[s * 64 + i] = ((i < 32) == (s % 2 == 0) ? 0.8f : 0.1f) + 0.2f * random.NextSingle();
}

var model = new Sequential(seed: 7)
    .Add(new Input(8, 8, 1))
    .Add(new Conv2D(4, 3, activation: Activation.Relu))
    .Add(new MaxPooling2D(2))
    .Add(new Flatten())
    .Add(new Dense(2, Activation.Softmax));
model.Compile("adam", "sparse_categorical_crossentropy", "accuracy");
model.Fit(x, y, batchSize: 16, epochs: 5);
double accuracy = model.Evaluate(x, y)["accuracy"];
model.Save("tiny.naani");

var predictor = Model.Load("tiny.naani").CreatePredictor();
var top = predictor.Predict(x.Sample(0), top: 2);       // the first image: class 0
using var kernels = InspectionImages.Kernels(model.Layers.OfType<Conv2D>().First());
ImageFile.SavePng(kernels, "kernels.png");
Console.WriteLine($"accuracy {accuracy:0.000}; first image: class {top.Class} ({top.Probability:0.000}); kernels.png {new FileInfo("kernels.png").Length} bytes");
return accuracy >= 0.95 && top.Class == "0" && top.Probability > 0.5 ? 0 : 1;
EOF
run restore.log dotnet restore "$app/PackageTestApp.csproj"
assets="$app/obj/project.assets.json"
for id in Naani Naani.Vision; do
    grep -q "\"$id/$version\"" "$assets" || fail "the app did not resolve $id $version"
done
lower_id() { tr '[:upper:]' '[:lower:]' <<<"$1"; }
for id in Naani Naani.Vision; do
    cached="$work/packages/$(lower_id "$id")/$version/$(lower_id "$id").$version.nupkg"
    [ -f "$cached" ] || fail "$id $version was not restored from the feed into $work/packages"
    cmp -s "$cached" "$feed/$id.$version.nupkg" || fail "the $id $version the app restored differs from the one just packed"
done
step "building and running the app"
run build.log dotnet build "$app/PackageTestApp.csproj" -c Release --no-restore -nologo
output="$(cd "$app" && dotnet bin/Release/net10.0/PackageTestApp.dll 2>&1)" || { echo "$output" >&2; fail "the app failed"; }
echo "  app: $output"
[ -s "$app/tiny.naani" ] || fail "the app wrote no model file"
[ "$(head -c 8 "$app/kernels.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "kernels.png is not a PNG"

step "installing the naani tool $version from the feed"
tools="$work/tools"
# Through the same configuration as the app rather than --add-source (which NuGet refuses next to source mapping):
# with --add-source, a Naani.Cli of this version on another source could be taken instead of the feed's.
run tool-install.log dotnet tool install --tool-path "$tools" Naani.Cli --version "$version" --configfile "$work/nuget.config"
cmp -s "$tools/.store/naani.cli/$version/naani.cli/$version/naani.cli.$version.nupkg" "$feed/Naani.Cli.$version.nupkg" \
    || fail "the Naani.Cli $version installed is not the one just packed"
summary="$("$tools/naani" summary -m mnist-baseline 2>&1)" || { echo "$summary" >&2; fail "naani summary failed"; }
grep -q "Total params: 592,074" <<<"$summary" || { echo "$summary" >&2; fail "naani summary did not print 'Total params: 592,074'"; }
echo "  naani summary -m mnist-baseline: $(grep "Total params" <<<"$summary" | tr -s ' ')"
# A command that draws, so the tool's SkiaSharp native library for this platform is known to be in the package.
run tool-kernels.log "$tools/naani" kernels -m mnist-baseline -o "$work/tool-kernels.png" -q
[ "$(head -c 8 "$work/tool-kernels.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "naani kernels wrote no PNG"
echo "  naani kernels -m mnist-baseline: $(stat -c %s "$work/tool-kernels.png") bytes of PNG"

step "done"
echo "package test: PASS (version $version, $((SECONDS - start)) s)"
