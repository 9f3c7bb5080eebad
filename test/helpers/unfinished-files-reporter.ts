import type { Reporter, TestModule } from 'vitest/node';

/**
 * Names the test files that never finished. When a test process dies (a native crash, the OOM
 * killer, a stray process.exit), vitest reports only "Worker exited unexpectedly", without the
 * file it was running; CI keeps just the end of the output. This reporter prints, at the end of
 * the run, every file that started and did not end, with the state of each of its tests, so the
 * next such failure names its culprit.
 */
export default class UnfinishedFilesReporter implements Reporter {
  readonly #running = new Map<string, { module: TestModule; startedAt: number }>();

  onTestModuleStart(module: TestModule): void {
    this.#running.set(module.moduleId, { module, startedAt: Date.now() });
  }

  onTestModuleEnd(module: TestModule): void {
    this.#running.delete(module.moduleId);
  }

  onTestRunEnd(): void {
    if (this.#running.size === 0) return;
    const lines = ['', 'test files that started and never finished (their test process died?):'];
    for (const { module, startedAt } of this.#running.values()) {
      lines.push(
        `- ${module.project.name}: ${module.moduleId} (started ${new Date(startedAt).toISOString()})`,
      );
      for (const test of module.children.allTests()) {
        lines.push(`    ${test.result().state}: ${test.fullName}`);
      }
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
