// Placeholder until the registry CLI lands (issue 3).
export async function runScorers(_argv: string[]): Promise<number> {
  process.stderr.write('scorecar scorers: not available yet\n');
  return 2;
}
