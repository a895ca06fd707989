#!/bin/sh
# The layers' arrows point down only: a file under src/LAYER/ may include
# headers of its own folder and of the layers below it, never one above.
# Programs outside src/ (tools, examples) see only the public header.
# Usage: check-layers.sh [ROOT]   (ROOT: the source tree, default .)
# Prints each offending include as FILE:LINE: and exits 1 if there is any.
root=${1:-.}
status=0

# What each layer may include besides itself, bottom up.
below() {
    case $1 in
    base) echo "" ;;
    arch) echo "base" ;;
    os) echo "base" ;;
    region) echo "base arch os" ;;
    alloc) echo "base arch os region" ;;
    elf) echo "base arch os region alloc" ;;
    pe) echo "base arch os region alloc" ;;
    lib) echo "base arch os region alloc elf pe" ;;
    api) echo "base arch os region alloc elf pe lib" ;;
    *) echo "?" ;;
    esac
}

for dir in "$root"/src/*/; do
    layer=$(basename "$dir")
    allowed=$(below "$layer")
    if [ "$allowed" = "?" ]; then
        echo "$dir: folder is not a known layer (add it to scripts/check-layers.sh)"
        status=1
        continue
    fi
    for f in "$dir"*.c "$dir"*.h "$dir"*.S; do
        [ -f "$f" ] || continue
        # every quoted include: "layer/file.h" or a bare "file.h"
        grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | while IFS= read -r line; do
            n=${line%%:*}
            inc=$(printf '%s\n' "$line" | sed 's/.*include[[:space:]]*"\([^"]*\)".*/\1/')
            case $inc in
            vmcode.h) continue ;;
            */*) target=${inc%%/*} ;;
            *) echo "$f:$n: \"$inc\" does not name its layer (write \"$layer/$inc\")"; exit 1 ;;
            esac
            [ "$target" = "$layer" ] && continue
            ok=0
            for a in $allowed; do [ "$a" = "$target" ] && ok=1; done
            if [ $ok = 0 ]; then
                # the format layers (elf, pe) are of one rank: neither sees the other
                case "$layer:$target" in
                elf:pe | pe:elf) echo "$f:$n: $layer includes \"$inc\" from a layer of the same rank ($target)" ;;
                *) echo "$f:$n: $layer includes \"$inc\" from the layer above it ($target)" ;;
                esac
                exit 1
            fi
        done || status=1
    done
done

for f in "$root"/tools/*.c "$root"/examples/*.c "$root"/examples/*/*.c; do
    [ -f "$f" ] || continue
    if grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | grep -v '"vmcode.h"' | grep -q .; then
        grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | grep -v '"vmcode.h"' |
            sed "s|^\([0-9]*\):.*|$f:\1: programs use the public header only|"
        status=1
    fi
done
exit $status
