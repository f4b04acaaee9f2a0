# The subset of nixpkgs `lib` that the repository's Nix code uses, written for these tests
# (same names and meaning, simpler bodies). A function the code starts using must be added
# here, or the evaluation checks fail with "attribute '...' missing".
let
  lib = rec {
    inherit (builtins)
      elem
      filter
      foldl'
      functionArgs
      head
      intersectAttrs
      isAttrs
      isFunction
      isList
      isString
      length
      listToAttrs
      mapAttrs
      attrNames
      ;

    id = x: x;
    flip = f: a: b: f b a;
    fix = f: let x = f x; in x;
    extends = overlay: f: final: let prev = f final; in prev // overlay final prev;

    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalAttrs = cond: as: if cond then as else { };
    optionalString = cond: s: if cond then s else "";

    assertMsg = pred: msg: pred || builtins.throw msg;

    concatStringsSep = builtins.concatStringsSep;
    concatMapStringsSep = sep: f: xs: builtins.concatStringsSep sep (map f xs);
    concatMapStrings = f: xs: builtins.concatStringsSep "" (map f xs);

    hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
    hasSuffix =
      suffix: s:
      let
        ls = builtins.stringLength s;
        lx = builtins.stringLength suffix;
      in
      ls >= lx && builtins.substring (ls - lx) lx s == suffix;
    removeSuffix =
      suffix: s:
      if hasSuffix suffix s then
        builtins.substring 0 (builtins.stringLength s - builtins.stringLength suffix) s
      else
        s;

    nameValuePair = name: value: { inherit name value; };
    genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
    mapAttrs' = f: set: listToAttrs (map (n: f n set.${n}) (attrNames set));
    filterAttrs =
      pred: set:
      listToAttrs (
        map (n: nameValuePair n set.${n}) (filter (n: pred n set.${n}) (attrNames set))
      );
    attrValues = set: map (n: set.${n}) (attrNames set);

    isDerivation = v: isAttrs v && (v.type or null) == "derivation";

    importTOML = path: builtins.fromTOML (builtins.readFile path);

    getExe = drv: "${drv}/bin/${drv.meta.mainProgram or drv.pname or drv.name}";
    makeBinPath = drvs: concatMapStringsSep ":" (d: "${d}/bin") drvs;

    # Module-system markers: the stub NixOS test only records them.
    mkForce = v: {
      _type = "override";
      priority = 50;
      content = v;
    };
    mkDefault = v: {
      _type = "override";
      priority = 1000;
      content = v;
    };

    licenses.mit = {
      spdxId = "MIT";
    };
    platforms.linux = [
      "x86_64-linux"
      "aarch64-linux"
    ];

    # A file set is a list of members here: paths, or { dir, pred } from fileFilter.
    # toSource copies what the members select (and the directories leading to them).
    fileset = {
      unions = sets: builtins.concatLists (map (s: if isList s then s else [ s ]) sets);
      fileFilter = pred: dir: [ { inherit pred dir; } ];
      toSource =
        { root, fileset }:
        let
          members = if isList fileset then fileset else [ fileset ];
          under = dir: path: hasPrefix (toString dir + "/") path;
          leadsTo = path: m: under path (toString (m.dir or m));
          selects =
            path: type: m:
            if m ? pred then
              under m.dir path && (type == "directory" || m.pred { name = baseNameOf path; inherit type; })
            else
              path == toString m || under m path;
          exists = m: assertMsg (builtins.pathExists (m.dir or m)) "stub lib.fileset: ${toString (m.dir or m)} does not exist";
        in
        assert builtins.all exists members;
        builtins.path {
          name = "source";
          path = root;
          filter = path: type: builtins.any (m: selects path type m || leadsTo path m) members;
        };
    };
  };
in
lib
