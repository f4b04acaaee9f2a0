# Lua 5.4 from Debian's orig tarball: a plain Makefile (no configure), the
# platform chosen by the build target, installed with INSTALL_TOP.
# `variant` (see variant.nix): "oneline" appends "(one-line change)" to the
# copyright line `lua -v` prints (src/lua.c, print_version); "header" changes
# that line where src/lua.h defines it (the Makefile lists lua.h among each
# object's prerequisites).
{ mkDrv, sources, variant ? "base" }:
let name = "lua-5.4.4"; in
mkDrv ({
  inherit name;
  src = import ./orig-tarball.nix sources "lua";
  dontConfigure = true;
  # `linux` builds lua, luac and liblua.a without readline (no extra library).
  buildFlags = [ "linux" ];
  installFlags = [ "INSTALL_TOP=${placeholder "out"}" ];
} // import ./variant.nix {
  inherit variant name;
  file = "src/lua.c";
  expression = ''/lua_writestring(LUA_COPYRIGHT/s/LUA_COPYRIGHT/LUA_COPYRIGHT " (one-line change)"/g'';
  header = "src/lua.h";
  headerExpression = ''/^#define LUA_COPYRIGHT/s/PUC-Rio"/PUC-Rio (one-line change)"/'';
})
