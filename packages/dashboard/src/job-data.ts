import type { AdminJobQueue, JobDetails } from '@shardwork/jobs';
import { InvalidJobError, UnsupportedFeatureError } from '@shardwork/jobs';
import type { BackendProblem } from './views.js';

/**
 * Why the job page cannot show a job at all, whatever the store holds:
 * `unsupported` when the job backend cannot look jobs up by id (amqp://:
 * `UnsupportedFeatureError`), `invalid-id` for text that cannot be a job id.
 */
export interface JobLookupRefusal {
  readonly kind: 'unsupported' | 'invalid-id';
  /** The job layer's message, shown as it is. */
  readonly message: string;
}

/** What the job page shows: one job looked up by id. */
export interface JobView {
  /** Whether a job queue is configured. */
  readonly configured: boolean;
  /** The id asked for. */
  readonly id: string;
  /** The job; `undefined` when the store does not know the id, or it was never read. */
  readonly job: JobDetails | undefined;
  /** Set when the lookup cannot be made at all (then `job` is `undefined`). */
  readonly refused: JobLookupRefusal | undefined;
  /** When the data shown was read, ms since the epoch (`undefined`: never). */
  readonly readAt: number | undefined;
  /** Set while the job backend fails: the data shown is the last read (greyed). */
  readonly problem: BackendProblem | undefined;
}

/**
 * Whether `error` says the job backend cannot do this at all (amqp:// has no
 * admin reads, lookups or cancel), as opposed to a backend that is down.
 */
export function isUnsupported(error: unknown): error is UnsupportedFeatureError {
  return error instanceof UnsupportedFeatureError;
}

/** HTTP status of a job page: 404 for an id the store does not know, 400 for text that is no job id. */
export function jobPageStatus(view: JobView): 200 | 400 | 404 {
  if (view.refused?.kind === 'invalid-id') return 400;
  // Only a live answer proves the job unknown; while the backend is down the page is the last data, greyed.
  if (view.configured && view.refused === undefined && view.job === undefined && view.readAt !== undefined) {
    return view.problem === undefined ? 404 : 200;
  }
  return 200;
}

/** Pages of the job page kept for an outage, like the list pages'. */
const KEPT = 100;

/**
 * Looks jobs up by id for the job page, through the dashboard's deadline-bound
 * reader, and keeps the last answer per id so that the page still renders
 * (greyed, with a banner) while the job backend is down.
 */
export class JobLookups {
  readonly #jobs: AdminJobQueue | undefined;
  readonly #backend: string;
  readonly #read: <T>(key: string, start: () => Promise<T>) => Promise<T>;
  readonly #last = new Map<string, JobView>();

  /**
   * @param jobs - the queue, `undefined` when none is configured.
   * @param backend - how banners name the job backend (no credentials).
   * @param read - runs a read under the backend deadline, sharing a pending one with the same key.
   */
  constructor(
    jobs: AdminJobQueue | undefined,
    backend: string,
    read: <T>(key: string, start: () => Promise<T>) => Promise<T>,
  ) {
    this.#jobs = jobs;
    this.#backend = backend;
    this.#read = read;
  }

  /** Job `id` as the page shows it; never rejects. */
  async read(id: string): Promise<JobView> {
    const jobs = this.#jobs;
    const empty: JobView = {
      configured: jobs !== undefined,
      id,
      job: undefined,
      refused: undefined,
      readAt: undefined,
      problem: undefined,
    };
    if (jobs === undefined) return empty;
    try {
      const job = await this.#read(`job:${id}`, () => jobs.getJob(id));
      const view: JobView = { ...empty, job, readAt: Date.now() };
      this.#last.delete(id);
      this.#last.set(id, view);
      if (this.#last.size > KEPT) this.#last.delete(this.#last.keys().next().value as string);
      return view;
    } catch (error) {
      if (isUnsupported(error)) return { ...empty, refused: { kind: 'unsupported', message: error.message } };
      if (error instanceof InvalidJobError)
        return { ...empty, refused: { kind: 'invalid-id', message: error.message } };
      const last = this.#last.get(id) ?? empty;
      const reason = error instanceof Error ? error.message : String(error);
      return { ...last, problem: { backend: this.#backend, reason, dataFrom: last.readAt } };
    }
  }
}
