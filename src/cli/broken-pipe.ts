/**
 * `tokenwatch audit list ... | head` closes the pipe after a few lines. Node ignores SIGPIPE, so
 * the next write fails with EPIPE, emitted as an 'error' event that nothing handles: an
 * unhandled-error crash with a stack trace. A command-line tool whose reader went away should end
 * quietly, as `cat` does. Only for the one-shot commands: `serve` logs through pino and must not
 * exit because a log pipe closed.
 */
export function endQuietlyOnBrokenPipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    // Whatever the command decided so far stands (a verify that found damage still exits 1).
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
}
