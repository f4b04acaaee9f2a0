# Lua 5.4 from Debian's orig tarball: a plain Makefile (no configure), the
# platform chosen by the build target, installed with INSTALL_TOP.
{ mkDrv, sources }:
mkDrv {
  name = "lua-5.4.4";
  src = import ./orig-tarball.nix sources "lua5.4";
  dontConfigure = true;
  # `linux` builds lua, luac and liblua.a without readline (no extra library).
  buildFlags = [ "linux" ];
  installFlags = [ "INSTALL_TOP=${placeholder "out"}" ];
}
