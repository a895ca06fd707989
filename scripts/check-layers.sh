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

# Every include of a layer's header, quoted or in angle brackets (-Isrc makes
# <lib/loader.h> work as well as "lib/loader.h"); an angle include whose first
# part is not a layer is a system header. Prints LINE<TAB>NAME<TAB>FORM.
tab=$(printf '\t')
layer_includes() {
    grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]' "$1" |
        sed -n "s/^\([0-9]*\):[[:space:]]*#[[:space:]]*include[[:space:]]*\"\([^\"]*\)\".*/\1$tab\2${tab}q/p
                s/^\([0-9]*\):[[:space:]]*#[[:space:]]*include[[:space:]]*<\([^>]*\)>.*/\1$tab\2${tab}a/p" |
        while IFS="$tab" read -r n inc form; do
            if [ "$form" = a ]; then
                case $inc in */*) ;; *) continue ;; esac
                [ "$(below "${inc%%/*}")" = "?" ] && continue
            fi
            printf '%s\t%s\t%s\n' "$n" "$inc" "$form"
        done
}

for dir in "$root"/src/*/; do
    layer=$(basename "$dir")
    allowed=$(below "$layer")
    if [ "$allowed" = "?" ]; then
        echo "$dir: folder is not a known layer (add it to scripts/check-layers.sh)"
        status=1
        continue
    fi
    # the files of the folder and of any folder inside it: all are of this layer
    for f in $(find "$dir" -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' \) | sort); do
        layer_includes "$f" | while IFS="$tab" read -r n inc form; do
            if [ "$form" = q ]; then shown="\"$inc\""; else shown="<$inc>"; fi
            case $inc in
            vmcode.h) continue ;;
            */*) target=${inc%%/*} ;;
            *)
                rel=${f#"$root"/src/}
                echo "$f:$n: $shown does not name its layer (write \"${rel%/*}/$inc\")"
                exit 1
                ;;
            esac
            [ "$target" = "$layer" ] && continue
            ok=0
            for a in $allowed; do [ "$a" = "$target" ] && ok=1; done
            if [ $ok = 0 ]; then
                # the format layers (elf, pe) are of one rank: neither sees the other
                case "$layer:$target" in
                elf:pe | pe:elf) echo "$f:$n: $layer includes $shown from a layer of the same rank ($target)" ;;
                *) echo "$f:$n: $layer includes $shown from the layer above it ($target)" ;;
                esac
                exit 1
            fi
        done || status=1
    done
done

for f in "$root"/tools/*.c "$root"/examples/*.c "$root"/examples/*/*.c; do
    [ -f "$f" ] || continue
    layer_includes "$f" | {
        bad=0
        while IFS="$tab" read -r n inc form; do
            [ "$inc" = vmcode.h ] && continue
            echo "$f:$n: programs use the public header only"
            bad=1
        done
        exit $bad
    } || status=1
done
exit $status
