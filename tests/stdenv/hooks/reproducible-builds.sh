# Test-stdenv hook: seed the compiler's randomness (`-frandom-seed`) from the
# first ten characters of the output path's base name, or of
# NIX_OUTPATH_USED_AS_RANDOM_SEED when set.  Sourced inside a function, so the
# `local` below vanishes after sourcing, as it would in the real stdenv.
local seedFrom=${NIX_OUTPATH_USED_AS_RANDOM_SEED:-$out}
seedFrom=${seedFrom##*/}
export NIX_CFLAGS_COMPILE="${NIX_CFLAGS_COMPILE:+$NIX_CFLAGS_COMPILE }-frandom-seed=${seedFrom:0:10}"
