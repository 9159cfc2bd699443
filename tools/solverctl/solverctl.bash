# bash completion for solverctl(1)                             -*- shell-script -*-

# The mount solverctl would use: -m on the line, $SOLVERFS_MOUNT, else the one
# fuse.solverfs entry of /proc/self/mounts (as solverctl finds it).
_solverctl_mount()
{
	local i
	for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
		if [[ ${COMP_WORDS[i]} == -m ]]; then
			printf '%s\n' "${COMP_WORDS[i + 1]}"
			return
		fi
	done
	if [[ -n ${SOLVERFS_MOUNT:-} ]]; then
		printf '%s\n' "$SOLVERFS_MOUNT"
		return
	fi
	awk '$3 == "fuse.solverfs" { n++; m = $2 } END { if (n == 1) print m }' /proc/self/mounts 2>/dev/null
}

_solverctl_jobs()
{
	local m
	m=$(_solverctl_mount)
	[[ -n $m && -d $m/jobs ]] || return
	find "$m/jobs" -mindepth 1 -maxdepth 1 -name '[0-9]*' -printf '%f\n' 2>/dev/null | sort -n
}

_solverctl()
{
	local cur prev words cword
	_init_completion -n = || return

	local cmds="build ls status logs why cancel graph export du"
	local i cmd="" ci=0
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-m) ((i++)) ;;
		-*) ;;
		*) cmd=${words[i]}; ci=$i; break ;;
		esac
	done

	if [[ -z $cmd ]]; then
		case $prev in
		-m) _filedir -d; return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-m --help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
		fi
		return
	fi

	local argn=$((cword - ci))
	case $cmd in
	build)
		case $cur in
		--progress=*)
			COMPREPLY=($(compgen -W "auto tty plain rawjson" -- "${cur#--progress=}"))
			return ;;
		esac
		case $prev in
		--export) _filedir -d; return ;;
		-o) COMPREPLY=($(compgen -S = -W "ignore_cache export.mode export.form cache_from" -- "$cur"))
			compopt -o nospace; return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--progress= --no-cache --export -o" -- "$cur"))
			[[ ${COMPREPLY-} == *= ]] && compopt -o nospace
		else
			_filedir json
		fi
		;;
	status | why | cancel | graph)
		((argn == 1)) && COMPREPLY=($(compgen -W "$(_solverctl_jobs)" -- "$cur"))
		;;
	logs)
		if ((argn == 1)); then
			COMPREPLY=($(compgen -W "$(_solverctl_jobs)" -- "$cur"))
		elif ((argn == 2)); then
			local m names
			m=$(_solverctl_mount)
			names=$(cat "$m/jobs/${words[ci + 1]}"/vertices/*/name 2>/dev/null)
			local IFS=$'\n'
			COMPREPLY=($(compgen -W "$names" -- "$cur"))
		fi
		;;
	export)
		if ((argn == 1)); then
			COMPREPLY=($(compgen -W "$(_solverctl_jobs)" -- "$cur"))
		elif ((argn == 2)); then
			_filedir -d
		fi
		;;
	du)
		COMPREPLY=($(compgen -W "-v" -- "$cur"))
		;;
	esac
} &&
	complete -F _solverctl solverctl
