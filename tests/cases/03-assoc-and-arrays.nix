# A `declare -gA` map set in configurePhase and read in installPhase; an indexed
# array whose elements hold spaces, `*`, newlines, backslashes and empty strings.
{ mkDrv, ... }:
mkDrv {
  name = "case-03";
  dontUnpack = true;
  nativeBuildInputs = [ ./lib/observe.sh ];
  configurePhase = ''
    declare -gA table=([one]=1 ["key with spaces"]="value with spaces" ["*"]=star [empty]="")
    table[$'new\nline']=newline
    list=("a b" "*" $'multi\nline' "" 'back\slash' '$dollar' "'quote'")
    sparse=([3]=three [10]=ten)
  '';
  buildPhase = ''
    table[added]="in build"
    list+=("appended in build")
  '';
  installPhase = ''
    obsVars table list sparse
    for key in "''${!table[@]}"; do
      printf '[%s]=[%s]\n' "$key" "''${table[$key]}"
    done | LC_ALL=C sort >"$out/table-sorted"
    printf '<%s>\n' "''${list[@]}" >"$out/list"
    echo "count ''${#list[@]} sparse-indices ''${!sparse[*]}" >>"$out/list"
  '';
}
