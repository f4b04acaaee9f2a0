# Recording helpers for the conformance cases, given to a case as a plain-file
# native build input (so setup sources it like a setup hook).  Everything lands
# in $obsOut/observed ($obsOut defaults to $out; multi-output cases point it at
# an output nothing refers to, to avoid reference cycles), so the NAR comparison proves what the phases saw.  Nothing
# recorded may depend on process identity ($$, $!, times) or on the builder's
# own path (the `builder` variable is filtered out).

# obs LABEL CMD...: the command's stdout and stderr, and its status when not 0.
obs() {
    local label=$1 status=0
    shift
    local dir=${obsOut:-$out}
    mkdir -p "$dir"
    printf '== %s\n' "$label" >>"$dir/observed"
    "$@" >>"$dir/observed" 2>&1 || status=$?
    if ((status != 0)); then
        printf -- '-> status %s\n' "$status" >>"$dir/observed"
    fi
}

# _declaration NAME: `declare -p NAME`, or a fixed line when NAME is not
# declared (bash's own message names the file and line of the caller).
_declaration() {
    declare -p "$1" 2>/dev/null || echo "(not declared)"
}

# obsVars NAME...: `declare -p` of each variable (attributes and value).
obsVars() {
    local name
    for name in "$@"; do
        obs "var $name" _declaration "$name"
    done
}

# _exportsWithoutBuilder: `export` minus the builder path, which differs.
_exportsWithoutBuilder() {
    export | grep -v '^declare -x builder='
}

# obsExports: the shell's exported variables.
obsExports() {
    obs "exports ($curPhase)" _exportsWithoutBuilder
}

# _childEnv: the environment a child process receives, sorted.
_childEnv() {
    env | grep -v '^builder=' | LC_ALL=C sort
}

obsChildEnv() {
    obs "child env ($curPhase)" _childEnv
}

# obsShellState: options, cwd, umask and traps.
obsShellState() {
    obs "flags ($curPhase)" echo "$-"
    obs "set -o ($curPhase)" set -o
    obs "shopt ($curPhase)" shopt -p
    obs "cwd ($curPhase)" pwd
    obs "umask ($curPhase)" umask
    obs "traps ($curPhase)" trap -p
}

# obsFunctions: names of all defined functions.
obsFunctions() {
    obs "functions ($curPhase)" declare -F
}
