# The same xtrace depth inside a buildCommand, which genericBuild evals in the
# setup step: one `source` and the genericBuild frame above it, as in stock.
{ mkDrv, ... }:
mkDrv {
  name = "case-38b";
  buildCommand = ''
    helper() { echo "helper $1"; }
    exec 9>>"$NIX_BUILD_TOP/trace"
    BASH_XTRACEFD=9
    set -x
    helper text
    x=$(echo sub)
    set +x
    unset BASH_XTRACEFD
    mkdir -p $out
    cp "$NIX_BUILD_TOP/trace" $out/trace
    echo "''${FUNCNAME[*]}" >$out/funcname
  '';
}
