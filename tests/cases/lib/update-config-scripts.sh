# A setup hook (test fixture) that adds a phase to preConfigurePhases at setup
# time, like nixpkgs' updateAutotoolsGnuConfigScriptsHook does.
appendToVar preConfigurePhases updateConfigScriptsPhase

updateConfigScriptsPhase() {
    local script
    for script in $(find . -type f -name config.guess | LC_ALL=C sort); do
        echo "refreshing $script"
        printf '# refreshed by updateConfigScriptsPhase\n' >>"$script"
    done
}
