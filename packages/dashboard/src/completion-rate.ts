import type { AdminJobQueue } from '@shardwork/jobs';

const THROUGHPUT_WINDOW_MS = 10_000;

/**
 * Completions per second of the jobs that run in this process, over a short
 * window. Only observable where the jobs run: counts by state say nothing
 * about them.
 */
export class CompletionRate {
  readonly #completions: { at: number; queue: string; handler: string }[] = [];
  readonly #unsubscribe: () => void;

  /** Start listening to `job:completed` of `jobs`. */
  constructor(jobs: AdminJobQueue) {
    this.#unsubscribe = jobs.on('job:completed', ({ job }) => {
      this.#completions.push({ at: Date.now(), queue: job.queue, handler: job.handler });
      this.#trim();
    });
  }

  /** Completions per second of the queue or handler `name` over the window. */
  perSecond(field: 'queue' | 'handler', name: string): number {
    this.#trim();
    return this.#completions.filter((c) => c[field] === name).length / (THROUGHPUT_WINDOW_MS / 1000);
  }

  /** Stop listening. */
  dispose(): void {
    this.#unsubscribe();
  }

  #trim(): void {
    const horizon = Date.now() - THROUGHPUT_WINDOW_MS;
    while (this.#completions.length > 0 && (this.#completions[0]?.at ?? 0) < horizon) this.#completions.shift();
  }
}
