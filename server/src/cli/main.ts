/**
 * `dnp` command dispatcher. Each sub-command lives in its own module under server/src/cli/ and exports
 * `run(argv: string[]): Promise<number>` (the exit code) and `help: string`.
 */
interface Command {
  summary: string;
  load: () => Promise<{ run: (argv: string[]) => Promise<number>; help: string }>;
}

const COMMANDS: Record<string, Command> = {
  serve: { summary: 'serve the web page and live avatars over WebRTC', load: () => import('./serve.js') },
  token: { summary: 'print a signed, expiring join token (and page link) for a server with --token-secret', load: () => import('./token.js') },
  prepare: { summary: 'turn a video of a person into a training dataset', load: () => import('./prepare.js') },
  train: { summary: 'train an avatar from a dataset (runs the Python package in train/)', load: () => import('./train.js') },
  bench: { summary: 'measure latency, render/encode time and bandwidth', load: () => import('./bench.js') },
  eval: { summary: 'score an avatar on its dataset\'s test frames (metrics, baselines, re-tracking)', load: () => import('./eval.js') },
  synth: { summary: 'generate a training dataset of a synthetic (not real) presenter', load: () => import('./synth.js') },
  'idle-motion': { summary: "store an avatar's idle head/eye motion (for microphone-only callers) from its dataset", load: () => import('./idle-motion.js') },
  'speech-features': { summary: 'write the speech feature frames (10 ms) of a WAV or a video as .npy', load: () => import('./speech-features.js') },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `Usage: dnp <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'dnp <command> --help' for a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 1 : 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`dnp: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  const mod = await cmd.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(mod.help);
    return 0;
  }
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`dnp: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
