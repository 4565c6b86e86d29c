const usage = `usage: allot <command>

commands:
  start     run every Allot service in one process (same as npm start)
  help      show this message`;

const [command = 'start'] = process.argv.slice(2);

switch (command) {
  case 'start':
    await import('./main.ts');
    break;
  case 'help':
  case '--help':
  case '-h':
    process.stdout.write(`${usage}\n`);
    break;
  default:
    process.stderr.write(`allot: unknown command '${command}'\n${usage}\n`);
    process.exit(2);
}
