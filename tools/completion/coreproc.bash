# bash completion for coreproc (installed by `meson install` into
# $datadir/bash-completion/completions/coreproc). Kept beside tools/coreproc/main.cpp, which
# defines the flags; test/cli checks that every flag of every `--help` is listed here.

_coreproc() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion || return
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
        prev="${COMP_WORDS[COMP_CWORD-1]}"
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local subcommands="run pipeline supervise daemons demo"
    local global_flags="-h --help -v --verbose --version"

    # The subcommand is the first word that is not a flag.
    local sub="" i
    for ((i = 1; i < cword; i++)); do
        case "${words[i]}" in
            -*) ;;
            *) sub="${words[i]}"; break ;;
        esac
    done

    if [[ -z "$sub" ]]; then
        COMPREPLY=($(compgen -W "$subcommands $global_flags" -- "$cur"))
        return
    fi

    local flags=""
    case "$sub" in
        run)
            # After `--` the words are the command and its arguments.
            for ((i = 1; i < cword; i++)); do
                if [[ "${words[i]}" == "--" ]]; then
                    COMPREPLY=($(compgen -c -- "$cur"))
                    return
                fi
            done
            case "$prev" in
                --dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
                --env|--timeout|--grace|--memory-max|--pids-max|--cpu-max|--umask|--rlimit|--nice) return ;;
                --stdin) COMPREPLY=($(compgen -W "inherit null" -- "$cur")); return ;;
                --user) COMPREPLY=($(compgen -u -- "$cur")); return ;;
                --group) COMPREPLY=($(compgen -g -- "$cur")); return ;;
            esac
            flags="--dir --env --timeout --grace --kill-group --json --stdin --cgroup --memory-max
                   --pids-max --cpu-max --user --group --umask --rlimit --nice"
            ;;
        pipeline)
            case "$prev" in
                -j|--jobs) return ;;
            esac
            flags="-j --jobs --sequential --fail-fast --dry-run -q --quiet --plain --json"
            if [[ "$cur" != -* ]]; then
                # The file first; after it, the names of its steps.
                local file="" w
                for ((i = i + 1; i < cword; i++)); do
                    w="${words[i]}"
                    case "$w" in
                        -j|--jobs) ((i++)) ;;
                        -*) ;;
                        *) file="$w"; break ;;
                    esac
                done
                if [[ -z "$file" ]]; then
                    COMPREPLY=($(compgen -f -- "$cur"))
                    return
                fi
                if [[ -r "$file" ]]; then
                    local names
                    names=$(coreproc pipeline "$file" --dry-run --json 2>/dev/null |
                        sed -n 's/^      "name": "\(.*\)",$/\1/p')
                    COMPREPLY=($(compgen -W "$names" -- "$cur"))
                fi
                return
            fi
            ;;
        supervise)
            case "$prev" in
                --registry) COMPREPLY=($(compgen -d -- "$cur")); return ;;
                --log-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
                --socket|--token-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --listen|--code|--name|--control-listen) return ;;
            esac
            flags="--listen --registry --code --json --log-dir --socket --name --control-listen
                   --allow-remote --token-file --init --subreaper"
            if [[ "$cur" != -* ]]; then
                COMPREPLY=($(compgen -f -- "$cur"))
                return
            fi
            ;;
        ctl)
            case "$prev" in
                --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --name|-n) return ;;
                add) COMPREPLY=($(compgen -f -- "$cur")); return ;;
            esac
            flags="--name --socket --json -f --follow -n --lines --stderr status start stop restart
                   add remove reload logs events"
            ;;
        daemons)
            case "$prev" in
                --registry) COMPREPLY=($(compgen -d -- "$cur")); return ;;
            esac
            flags="--registry --json"
            ;;
        demo)
            case "$prev" in
                --registry) COMPREPLY=($(compgen -d -- "$cur")); return ;;
            esac
            flags="--registry --json"
            ;;
    esac
    COMPREPLY=($(compgen -W "$flags -h --help -v --verbose" -- "$cur"))
}

complete -F _coreproc coreproc
