// `berth completion bash|zsh`: completion scripts generated from the command tree itself, so
// a new command or flag completes without anyone editing a script.
import type { Command } from 'commander';
import { usageError } from './errors.ts';
import { FORMATS } from './output.ts';

interface Node {
  path: string;
  words: string[];
}

/** Every command path ("", "get", "keys rotate") with the words that may follow it. */
function nodes(program: Command): Node[] {
  const out: Node[] = [];
  const globals = program.options.flatMap((o) => [o.short, o.long].filter(Boolean) as string[]);
  const walk = (c: Command, path: string) => {
    const subs = c.commands.map((x) => x.name());
    const flags = c.options.flatMap((o) => [o.short, o.long].filter(Boolean) as string[]);
    const extra =
      path === 'get' || path === 'describe'
        ? path === 'get'
          ? ['instances', 'bindings', 'offerings', 'plans']
          : ['instance', 'binding']
        : path === 'completion'
          ? ['bash', 'zsh']
          : path === 'admin list'
            ? ['instances', 'bindings', 'operations']
            : [];
    out.push({ path, words: [...subs, ...extra, ...flags, ...(path ? globals : []), '--help'] });
    for (const sub of c.commands) walk(sub, path ? `${path} ${sub.name()}` : sub.name());
  };
  walk(program, '');
  return out;
}

export function completionScript(program: Command, shell: string): string {
  const tree = nodes(program);
  const formats = FORMATS.join(' ');
  const commandNames = new Set(tree.flatMap((n) => n.path.split(' ')).filter(Boolean));
  if (shell === 'bash') {
    const cases = tree.map((n) => `    "${n.path}") words="${n.words.join(' ')}" ;;`).join('\n');
    return `# berth bash completion: source <(berth completion bash)
_berth() {
  local cur prev cmdpath="" w
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
    -o|--output) COMPREPLY=($(compgen -W "${formats}" -- "$cur")); return ;;
    -c|--config|--credentials-file|--ca-file|--kubeconfig) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case " ${[...commandNames].join(' ')} " in *" $w "*) cmdpath="\${cmdpath:+$cmdpath }$w" ;; esac
  done
  local words
  case "$cmdpath" in
${cases}
    *) words="--help" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _berth berth
`;
  }
  if (shell === 'zsh') {
    const cases = tree.map((n) => `    "${n.path}") words=(${n.words.map((w) => `'${w}'`).join(' ')}) ;;`).join('\n');
    return `#compdef berth
# berth zsh completion: berth completion zsh > "\${fpath[1]}/_berth" (or: source <(berth completion zsh))
_berth() {
  local cmdpath="" w
  case "\${words[CURRENT-1]}" in
    -o|--output) compadd -- ${formats}; return ;;
    -c|--config|--credentials-file|--ca-file|--kubeconfig) _files; return ;;
  esac
  for w in "\${(@)words[2,CURRENT-1]}"; do
    case " ${[...commandNames].join(' ')} " in *" $w "*) cmdpath="\${cmdpath:+$cmdpath }$w" ;; esac
  done
  local -a candidates
  case "$cmdpath" in
${cases.replaceAll('words=(', 'candidates=(')}
    *) candidates=('--help') ;;
  esac
  compadd -- "\${candidates[@]}"
}
if [[ "\${zsh_eval_context[-1]}" == loadautofunc ]]; then _berth "$@"; else compdef _berth berth; fi
`;
  }
  throw usageError(`berth completion ${shell}: use bash or zsh`);
}
