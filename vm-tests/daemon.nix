# Checkpoints through a binary cache, with the multi-user daemon and the sandbox.
#
# `producer` builds GNU hello with withCheckpoint (as an unprivileged user, so through the
# daemon), signs its out and checkpoint while `nix copy`ing them to a file:// binary
# cache, and serves that cache over HTTP. `consumer` trusts the cache's key, and its user
# builds the changed hello: Nix substitutes the base checkpoint from the cache, and the
# build recompiles only hello.o. Both machines then hold the same changed out.
{ pkgs }:
let
  common = import ./lib/common.nix { inherit pkgs; };
  inherit (common) hello;

  base = pkgs.withCheckpoint hello.stock null;
  changed = pkgs.withCheckpoint hello.changedStock base;

  port = 8080;
  cacheDir = "/srv/cache";
  keyName = "checkpoint-test-cache-1";

  # Both machines get the .drv files and the build inputs; neither gets a build of `base`
  # from the host: the producer builds it and the consumer substitutes it.
  machine = {
    imports = [ common.node ];
    system.extraDependencies = common.offlineDeps {
      build = [
        base
        changed
      ];
      inputsOf = [ base ];
    };
    users.users.alice.isNormalUser = true;
  };
in
pkgs.testers.runNixOSTest {
  name = "checkpoint-builder-daemon";

  nodes.producer =
    { ... }:
    {
      imports = [ machine ];
      networking.firewall.allowedTCPPorts = [ port ];
      systemd.tmpfiles.rules = [ "d ${cacheDir} 0755 root root -" ];
      systemd.services.binary-cache = {
        wantedBy = [ "multi-user.target" ];
        after = [ "network.target" ];
        serviceConfig.ExecStart = "${pkgs.python3}/bin/python3 -m http.server ${toString port} --directory ${cacheDir}";
      };
    };

  nodes.consumer =
    { lib, ... }:
    {
      imports = [ machine ];
      nix.settings.substituters = lib.mkForce [ "http://producer:${toString port}" ];
      # The cache's public key is only known once the producer made it (at run time).
      nix.extraOptions = ''
        !include /etc/nix/test-cache-key.conf
      '';
    };

  testScript = ''
    ${common.helpers}

    base = ${common.pyPaths base}
    changed = ${common.pyPaths changed}
    cache = "file://${cacheDir}?compression=none&secret-key=/root/cache-secret"

    start_all()
    producer.wait_for_unit("binary-cache.service")
    producer.wait_for_open_port(${toString port})
    consumer.wait_for_unit("multi-user.target")

    with subtest("producer: daemon build with a checkpoint, copied to a signed binary cache"):
        realise(producer, base["drv"], user="alice")
        producer.succeed("nix-store --generate-binary-cache-key ${keyName} /root/cache-secret /root/cache-public")
        producer.succeed(f"nix copy --to '{cache}' {base['out']} {base['checkpoint']}")
        producer.succeed(f"test -f ${cacheDir}/{store_hash(base['checkpoint'])}.narinfo")
        public_key = producer.succeed("cat /root/cache-public").strip()

    with subtest("producer: the same incremental build, for comparison"):
        realise(producer, changed["drv"], user="alice")

    with subtest("consumer: substitutes the checkpoint and builds incrementally"):
        consumer.succeed(f"echo 'extra-trusted-public-keys = {public_key}' > /etc/nix/test-cache-key.conf")
        consumer.succeed("systemctl restart nix-daemon.service")
        consumer.fail(f"nix-store --check-validity {base['checkpoint']}")
        output = realise(consumer, changed["drv"], user="alice")
        print(output)
        assert f"copying path '{base['checkpoint']}'" in output, \
            "the base checkpoint was not substituted"
        signatures = consumer.succeed(f"nix path-info --sigs {base['checkpoint']}")
        assert "${keyName}:" in signatures, f"expected the cache's signature, got {signatures}"
        log = build_log(consumer, changed["drv"])
        print("\n".join(builder_report(log)))
        recompiled = compiled_objects(log)
        assert recompiled == {"hello.o"}, f"expected only hello.o to be recompiled, got {sorted(recompiled)}"

    with subtest("both machines built the same out"):
        on_producer = producer.succeed(f"nix-store --query --hash {changed['out']}").strip()
        on_consumer = consumer.succeed(f"nix-store --query --hash {changed['out']}").strip()
        assert on_producer == on_consumer, f"{changed['out']}: {on_producer} on the producer, {on_consumer} on the consumer"
  '';
}
