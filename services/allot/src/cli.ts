const usage = `usage: allot <command>

commands:
  start     run every Allot service in one process (same as npm start)
  mcp       the MCP server over stdio, calling the API at ALLOT_URL with ALLOT_API_KEY
  migrate   apply every migration of a plane (data-plane, default, or control-plane) to DATABASE_URL
  help      show this message`;

const [command = 'start'] = process.argv.slice(2);

switch (command) {
  case 'start':
    await import('./main.ts');
    break;
  case 'mcp': {
    const { runStdio } = await import('@allot/mcp');
    await runStdio().catch((error: unknown) => {
      process.stderr.write(`allot mcp: ${(error as Error).message}\n`);
      process.exit(1);
    });
    break;
  }
  case 'migrate':
    process.argv.splice(2, 1);
    await import('./migrate-main.ts');
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
