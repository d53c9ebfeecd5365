#!/bin/sh
# Print the path of a working Python of the given version (e.g. 3.13), or nothing: on PATH,
# then under pyenv (whose shims refuse versions not selected), then the usual prefixes.
v="$1"
root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
for p in "$(command -v "python$v" 2>/dev/null)" "$root"/versions/"$v"*/bin/"python$v" \
         /usr/local/bin/"python$v" /usr/bin/"python$v"; do
  if [ -n "$p" ] && [ -x "$p" ] && "$p" -c "import sys; sys.exit(sys.version[:len('$v')] != '$v')" 2>/dev/null; then
    echo "$p"
    exit 0
  fi
done
